"""librosa 0.11's dynamic-programming beat tracker (Ellis 2007) at a given tempo, compiled once.

librosa compiles the tracker's local-score kernel with `cache=False`, so every process that imports
`librosa.beat` spends 3.3 s compiling it (here: 5% of a 3-minute `make`). This is the same algorithm with
the same loops and dtypes, in numba functions that are cached: the beats are librosa's
(tests/test_beattrack.py compares them on real and random envelopes). librosa is ISC-licensed.
"""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["beat_frames"]


@numba.njit(cache=True)
def _local_score(onset_envelope, frames_per_beat, localscore):
    """A same-mode convolution with a Gaussian window a beat wide: librosa's loop as it is, its range end
    included (it leaves the envelope's first frame out of the first half-window of scores), so the beats
    stay librosa's."""
    n = len(onset_envelope)
    window = np.exp(-0.5 * (np.arange(-frames_per_beat[0], frames_per_beat[0] + 1) * 32.0
                            / frames_per_beat[0]) ** 2)
    k_len = len(window)
    for i in range(n):
        localscore[i] = 0.
        for k in range(max(0, i + k_len // 2 - n + 1), min(i + k_len // 2, k_len)):
            localscore[i] += window[k] * onset_envelope[i + k_len // 2 - k]


@numba.njit(cache=True)
def _dp(localscore, frames_per_beat, tightness, backlink, cumscore):
    """For every frame, the best previous beat half a beat to two beats back, by cumulative score
    minus the squared log deviation from the beat period."""
    score_thresh = 0.01 * localscore.max()
    first_beat = True
    backlink[0] = -1
    cumscore[0] = localscore[0]
    fpb = frames_per_beat[0]
    for i in range(len(localscore)):
        score_i = localscore[i]
        best_score = -np.inf
        beat_location = -1
        for loc in range(i - np.round(fpb / 2), i - 2 * fpb - 1, -1):
            if loc < 0:
                break
            score = cumscore[loc] - tightness * (np.log(i - loc) - np.log(fpb)) ** 2
            if score > best_score:
                best_score = score
                beat_location = loc
        cumscore[i] = score_i + best_score if beat_location >= 0 else score_i
        if first_beat and score_i < score_thresh:
            backlink[i] = -1
        else:
            backlink[i] = beat_location
            first_beat = False


def _last_beat(cumscore: np.ndarray) -> int:
    """The last local maximum of the cumulative score that reaches half their median."""
    import librosa

    peaks = librosa.util.localmax(cumscore)
    threshold = cumscore.dtype.type(0.5 * np.median(cumscore[peaks]))
    for n in range(len(cumscore) - 1, -1, -1):
        if peaks[n] and cumscore[n] >= threshold:
            return n
    return len(cumscore) - 1


def _trim(localscore: np.ndarray, beats: np.ndarray, trim: bool) -> np.ndarray:
    """Drop leading and trailing beats whose local score is under half the RMS of the beats' smoothed
    scores (with trim; else only those at zero)."""
    window = np.hanning(5)
    smooth = np.convolve(localscore[beats], window)[len(window) // 2:len(localscore) + len(window) // 2]
    threshold = 0.5 * np.sqrt((smooth ** 2).mean()) if trim else 0.0
    beats = beats.copy()
    n = 0
    while n < len(localscore) and localscore[n] <= threshold:
        beats[n] = False
        n += 1
    n = len(localscore) - 1
    while n >= 0 and localscore[n] <= threshold:
        beats[n] = False
        n -= 1
    return beats


def beat_frames(onset_envelope: np.ndarray, *, bpm: float, frame_rate: float, tightness: float = 100.0,
                trim: bool = True) -> np.ndarray:
    """Beat frame indices of a mono onset envelope at `bpm`: what
    `librosa.beat.beat_track(onset_envelope=..., bpm=bpm, sr=..., hop_length=..., tightness=..., trim=...)`
    returns, with frame_rate = sr / hop_length."""
    env = np.asarray(onset_envelope)
    if env.ndim != 1:
        raise ValueError(f"onset_envelope must be 1-D, got shape {env.shape}")
    if not env.any():
        return np.zeros(0, dtype=int)
    if bpm <= 0 or tightness <= 0:
        raise ValueError(f"bpm={bpm} and tightness={tightness} must be positive")
    if env.dtype != np.float32:
        env = env.astype(np.float64)
    # as in librosa: normalised in the envelope's precision, scored in float64 (the tempo's)
    normalised = (env / (env.std(ddof=1) + np.finfo(env.dtype).tiny)).astype(np.float64)
    frames_per_beat = np.round(frame_rate * 60.0 / np.atleast_1d(np.float64(bpm)))
    localscore = np.empty_like(normalised)
    _local_score(normalised, frames_per_beat, localscore)
    backlink, cumscore = np.empty(len(env), dtype=np.int32), np.empty_like(localscore)
    _dp(localscore, frames_per_beat, np.float32(tightness), backlink, cumscore)
    beats = np.zeros(len(env), dtype=bool)
    n = _last_beat(cumscore)
    while n >= 0:
        beats[n] = True
        n = backlink[n]
    return np.flatnonzero(_trim(localscore, beats, trim))
