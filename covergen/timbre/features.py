"""Control features for DDSP: f0 + periodicity (swift-f0) and A-weighted loudness, on one frame grid.

Frame k is centred on sample k * hop_samples of 16 kHz mono audio. We use 100 frames/s
(hop 160) instead of DDSP's 250: the decoder's GRU cost is linear in frames and this
2-core CPU has to train five instruments in minutes; 10 ms still resolves note onsets
and vibrato (5-7 Hz) comfortably.
"""
from __future__ import annotations

import functools
import hashlib
import logging

import numpy as np

__all__ = ["SAMPLE_RATE", "HOP_SAMPLES", "FRAME_RATE_HZ", "Features", "extract", "f0_periodicity",
           "a_weighted_loudness_db", "n_frames", "sounding", "harmonicity", "harmonicity_frames", "sub_f0_share", "SILENT_DB"]

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
HOP_SAMPLES = 160
FRAME_RATE_HZ = SAMPLE_RATE / HOP_SAMPLES
LOUDNESS_N_FFT = 1024
SILENT_DB = -80.0  # floor of the loudness feature; anything below counts as silence


class Features:
    """f0_hz, periodicity (0-1, swift-f0 confidence) and loudness_db, each [shape=(frames,)]."""

    __slots__ = ("f0_hz", "periodicity", "loudness_db")

    def __init__(self, f0_hz: np.ndarray, periodicity: np.ndarray, loudness_db: np.ndarray):
        self.f0_hz, self.periodicity, self.loudness_db = f0_hz, periodicity, loudness_db

    def __len__(self) -> int:
        return len(self.f0_hz)


def n_frames(n_samples: int, *, hop_samples: int = HOP_SAMPLES) -> int:
    """Frames covering n_samples: the synth renders hop_samples per frame."""
    return int(n_samples) // hop_samples


@functools.lru_cache(maxsize=1)
def _detector():
    from swift_f0 import SwiftF0

    # spin=False: the CPU is shared with the rest of the pipeline; busy-waiting threads would steal it.
    return SwiftF0(threads=2, spin=False)


def f0_periodicity(y: np.ndarray, *, sample_rate: int = SAMPLE_RATE,
                   hop_samples: int = HOP_SAMPLES) -> tuple[np.ndarray, np.ndarray]:
    """swift-f0 pitch (Hz) and confidence on our frame grid. y: mono float32 [shape=(samples,)] at 16 kHz.

    swift-f0 hops 256 samples; we interpolate f0 in log-frequency through voiced frames
    only (so unvoiced gaps hold a plausible pitch, as DDSP's training with CREPE expects)
    and confidence linearly.
    """
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"f0_periodicity expects {SAMPLE_RATE} Hz audio, got {sample_rate}")
    frames = n_frames(len(y), hop_samples=hop_samples)
    if frames == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    res = _detector().detect(np.asarray(y, np.float32), SAMPLE_RATE)
    t_src = res.timestamps
    t_dst = np.arange(frames) * hop_samples / sample_rate
    conf = np.interp(t_dst, t_src, res.confidence)
    voiced = res.confidence >= 0.5
    if voiced.sum() >= 2:
        log_f0 = np.interp(t_dst, t_src[voiced], np.log2(res.pitch_hz[voiced]))
    elif voiced.sum() == 1:
        log_f0 = np.full(frames, np.log2(res.pitch_hz[voiced][0]))
    else:
        log_f0 = np.interp(t_dst, t_src, np.log2(np.maximum(res.pitch_hz, 1.0)))
    return (2.0 ** log_f0).astype(np.float32), np.clip(conf, 0, 1).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _a_weights(n_fft: int, sample_rate: int) -> np.ndarray:
    import librosa

    freqs = librosa.fft_frequencies(sr=sample_rate, n_fft=n_fft)
    with np.errstate(divide="ignore"):
        weights_db = librosa.A_weighting(freqs, min_db=-100.0)
    return (10.0 ** (weights_db / 10.0)).astype(np.float64)


def a_weighted_loudness_db(y: np.ndarray, *, sample_rate: int = SAMPLE_RATE,
                           hop_samples: int = HOP_SAMPLES, n_fft: int = LOUDNESS_N_FFT) -> np.ndarray:
    """A-weighted power per frame in dB (a full-scale 1 kHz sine reads about -3 dB), floored at SILENT_DB.

    Perceptual weighting keeps a bass's rumble from reading as loud as a trumpet's bite.
    """
    frames = n_frames(len(y), hop_samples=hop_samples)
    y = np.asarray(y, np.float64)
    pad = n_fft // 2
    yp = np.pad(y, (pad, pad + n_fft))
    win = np.hanning(n_fft + 1)[:-1]
    weights = _a_weights(n_fft, sample_rate)
    power = np.empty(frames)
    for s in range(0, frames, 2048):  # blocks keep memory flat on long stems
        idx = np.arange(s, min(frames, s + 2048))[:, None] * hop_samples + np.arange(n_fft)[None, :]
        power[s:s + 2048] = (np.abs(np.fft.rfft(yp[idx] * win, axis=1)) ** 2 * weights).sum(axis=1)
    # Parseval: a sine of amplitude A then has power A^2 / 2 (one-sided spectrum, window energy removed).
    power = power / (n_fft / 2 * np.sum(win ** 2))
    db = 10.0 * np.log10(np.maximum(power, 1e-12))
    return np.maximum(db, SILENT_DB).astype(np.float32)


# `make` extracts one stem's features twice: `melody_notes` for the lead sheet (in the analysis) and
# `transfer_stem` when the melody stage re-plays it. The last result is kept, keyed by the audio's content,
# so the second is a lookup (2.5-3 s of a 3-minute song's make); the tracking rules still run each time.
_last_extract: tuple[str, Features] | None = None


def extract(y: np.ndarray, *, sample_rate: int = SAMPLE_RATE, hop_samples: int = HOP_SAMPLES) -> Features:
    """All control features of mono 16 kHz audio [shape=(samples,)]. The result may be shared with the next
    call on the same audio: read it, do not write into it."""
    global _last_extract
    y = np.ascontiguousarray(y)
    key = f"{hashlib.blake2b(y.tobytes(), digest_size=16).hexdigest()}-{y.dtype}-{sample_rate}-{hop_samples}"
    last = _last_extract
    if last is not None and last[0] == key:
        return last[1]
    f0_hz, periodicity = f0_periodicity(y, sample_rate=sample_rate, hop_samples=hop_samples)
    loudness_db = a_weighted_loudness_db(y, sample_rate=sample_rate, hop_samples=hop_samples)
    features = Features(f0_hz, periodicity, loudness_db)
    _last_extract = (key, features)
    return features


def sounding(loudness_db: np.ndarray, *, range_db: float = 35.0) -> np.ndarray:
    """Frames within range_db of the loud (95th percentile) frames and above -70 dB: not silence or bleed.

    Separated stems hold gaps and faint bleed; voicing is judged on sounding frames only.
    """
    if len(loudness_db) == 0:
        return np.zeros(0, bool)
    return loudness_db > max(float(np.percentile(loudness_db, 95)) - range_db, -70.0)


def _frame_power(y: np.ndarray, f0_hz: np.ndarray, frames: np.ndarray, *, sample_rate: int, hop_samples: int,
                 n_fft: int, max_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Power spectra of up to `max_frames` of `frames` (evenly picked), their bin frequencies and the
    frames' f0 as a column; None for no frames."""
    frames = np.asarray(frames)
    if len(frames) == 0:
        return None
    frames = frames[np.linspace(0, len(frames) - 1, min(len(frames), max_frames)).astype(int)]
    yp = np.pad(np.asarray(y, np.float32), (n_fft // 2, n_fft))
    idx = frames[:, None] * hop_samples + np.arange(n_fft)[None, :]
    power = np.abs(np.fft.rfft(yp[idx] * np.hanning(n_fft), axis=1)) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1 / sample_rate)[None, :]
    return power, freqs, np.asarray(f0_hz)[frames][:, None]


def harmonicity(y: np.ndarray, f0_hz: np.ndarray, frames: np.ndarray, *, sample_rate: int = SAMPLE_RATE,
                hop_samples: int = HOP_SAMPLES, n_fft: int = 2048, max_frames: int = 400) -> float:
    """Median share of 0.8*f0-5 kHz energy lying on the harmonics of f0, over the given frames.

    A single voice puts ~0.9 of its energy on its harmonics; in a full mix the accompaniment
    sits between them (~0.6) even where the pitch tracker happily follows the lead vocal.
    """
    spectra = _frame_power(y, f0_hz, frames, sample_rate=sample_rate, hop_samples=hop_samples, n_fft=n_fft,
                           max_frames=max_frames)
    if spectra is None:
        return 0.0
    power, freqs, f0 = spectra
    h = freqs / f0
    tol_hz = np.maximum(1.5 * sample_rate / n_fft, 0.03 * f0)
    band = (freqs >= 0.8 * f0) & (freqs < 5000.0)
    near = (np.abs(h - np.round(h)) * f0 < tol_hz) & band
    ratio = (power * near).sum(1) / np.maximum((power * band).sum(1), 1e-20)
    return float(np.median(ratio))


def harmonicity_frames(y: np.ndarray, f0_hz: np.ndarray, *, sample_rate: int = SAMPLE_RATE,
                       hop_samples: int = HOP_SAMPLES, n_fft: int = 1024) -> np.ndarray:
    """Per frame, the share of 0.8*f0-5 kHz energy lying on the harmonics of f0_hz [shape=(frames,)], 0-1.

    The frame-wise form of `harmonicity` with a 64 ms window (vibrato and glides smear the upper
    harmonics of a longer one). One voice reads ~0.9; a chord, a full mix or a consonant, whose
    energy lies between the harmonics of the tracked pitch, read far lower.
    """
    f0_hz = np.asarray(f0_hz, np.float64)
    frames = len(f0_hz)
    out = np.zeros(frames, np.float32)
    if frames == 0:
        return out
    yp = np.pad(np.asarray(y, np.float32), (n_fft // 2, n_fft))
    win = np.hanning(n_fft).astype(np.float32)
    freqs = np.fft.rfftfreq(n_fft, 1 / sample_rate)[None, :]
    for s in range(0, frames, 1024):  # blocks keep memory flat on long stems
        rows = np.arange(s, min(frames, s + 1024))
        idx = rows[:, None] * hop_samples + np.arange(n_fft)[None, :]
        idx = np.minimum(idx, len(yp) - 1)
        power = np.abs(np.fft.rfft(yp[idx] * win, axis=1)) ** 2
        f0 = np.maximum(f0_hz[rows], 20.0)[:, None]
        h = freqs / f0
        tol_hz = np.maximum(1.5 * sample_rate / n_fft, 0.03 * f0)
        band = (freqs >= 0.8 * f0) & (freqs < 5000.0)
        near = (np.abs(h - np.round(h)) * f0 < tol_hz) & band
        out[rows] = (power * near).sum(1) / np.maximum((power * band).sum(1), 1e-20)
    return out


def sub_f0_share(y: np.ndarray, f0_hz: np.ndarray, frames: np.ndarray, *, sample_rate: int = SAMPLE_RATE,
                 hop_samples: int = HOP_SAMPLES, n_fft: int = 2048, max_frames: int = 400) -> float:
    """Share of the 40 Hz-5 kHz energy lying below 0.7*f0, summed over the given frames.

    A voice or a solo instrument puts next to nothing under its own fundamental (stems, separated
    ones included, read <= 0.04); a full mix's bass and kick drum sit there under the melody.
    """
    spectra = _frame_power(y, f0_hz, frames, sample_rate=sample_rate, hop_samples=hop_samples, n_fft=n_fft,
                           max_frames=max_frames)
    if spectra is None:
        return 0.0
    power, freqs, f0 = spectra
    band = (freqs >= 40.0) & (freqs < 5000.0)
    return float((power * (band & (freqs < 0.7 * f0))).sum() / max((power * band).sum(), 1e-20))
