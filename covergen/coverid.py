"""Cover check: is this audio a cover of that song?

Two methods on beat-synchronous chroma (12 x beats: tempo drops out with the beat grid):

* "2dftm" (Bertin-Mahieux & Ellis 2012): the 2D Fourier transform magnitude of every
  75-beat chroma patch, compressed, median over patches, L2-normalised. The magnitude
  ignores circular shifts, so a transposed cover (chroma rolled) gives the same vector and a
  song becomes one fixed-length vector: cheap to index and to rank with nearest neighbours.
* "qmax" (Serra, Serra & Andrzejak 2009): transpose by the optimal transposition index,
  cross-recurrence plot of delay-embedded chroma, length of the best locally aligned path.
  Slower (a quadratic plot per pair) but keeps the order of events, so it is stronger.

A raw similarity means little on its own, so `check` turns it into a z-score against the
candidate's similarities to a background library of unrelated songs and compares z with a
threshold calibrated on labelled covers (both shipped as the `coverid-background` model).
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np

from .audio import SILENCE_DBFS, atomic_path, beat_track, check_output_not_input, find_audio, onset_strength
from .beattrack import beat_frames
from .errors import CovergenError, CoverCheckError, ModelError

__all__ = ["features", "beat_chroma", "beat_chroma_and_tempo", "features_from_chroma", "similarity",
           "similarity_strong", "check", "compare", "build_index", "load_index", "rank", "Index", "Background",
           "load_background", "save_background", "METHODS", "PATCH_BEATS", "SAMPLE_RATE", "INDEX_NAME"]

log = logging.getLogger(__name__)

SAMPLE_RATE = 22050
HOP_SAMPLES = 512
PATCH_BEATS = 75
PATCH_HOP_BEATS = 1
CHROMA_POWER = 1.0  # on beat chroma before the 2D FFT
MAGNITUDE_POWER = 0.5  # on the 2D FFT magnitude: keeps loud low-frequency bins from dominating
# Qmax settings, chosen with benchmarks/dev_coverid.py: the best mean of MAP on the real cover groups
# (full recordings and 10/20 s excerpts) and on the rendered calibration works, each weighing half.
QMAX_EMBED_BEATS = 12  # delay embedding (m) for the cross-recurrence plot, tau = 1 beat
QMAX_NEIGHBOURS = 0.1  # kappa: fraction of mutual nearest neighbours counted as recurrent
QMAX_GAP_OPEN = 2.0  # gamma_o
QMAX_GAP_EXTEND = 0.5  # gamma_e
QMAX_TRANSPOSITIONS = 1  # how many of the best OTIs to try (2 did worse)
QMAX_TEMPO_OCTAVES = False  # also compare each song on a half-tempo grid (helped the real set, hurt the renders)
QMAX_NORM = "sqrt_shorter"  # Qmax over sqrt(beats of the shorter song): a clip is not punished for being short
# 95th percentile of the onset envelope (dB flux of the peak-normalised signal) below which
# there is no pulse to track: steady tones give ~0.05, music 2-8, speech ~7, whale song ~1.5.
MIN_ONSET_STRENGTH = 0.5
METHODS = ("2dftm", "qmax")
# Beats each method needs. Qmax needs an embedding plus two beats of path; a clip shorter than
# QMAX_EMBED_BEATS + 2 is compared with a shorter embedding (m = beats - 2, at least 6: the setting
# that did best on 10 s excerpts), so 8 beats (10 s at 48 BPM) get an answer. 2DFTM needs one 75-beat patch.
QMAX_MIN_BEATS = 8
MIN_BEATS = {"qmax": QMAX_MIN_BEATS, "2dftm": PATCH_BEATS}
INDEX_NAME = ".coverid-index.npz"
# What a stored feature depends on: an index made with other settings is refused. (The 2DFTM settings
# were chosen on the rendered calibration works; the rendered test works were not used for any choice.)
FEATURE_CONFIG = json.dumps({"version": 2, "sample_rate": SAMPLE_RATE, "hop_samples": HOP_SAMPLES, "chroma": "cqt",
                             "beat_aggregate": "median", "patch_beats": PATCH_BEATS, "patch_hop_beats": PATCH_HOP_BEATS,
                             "chroma_power": CHROMA_POWER, "magnitude_power": MAGNITUDE_POWER, "dc": "dropped",
                             "min_beats": MIN_BEATS["qmax"]}, sort_keys=True)
# The background's thresholds also depend on the Qmax settings: a background made with others is refused.
CONFIG = json.dumps({"features": FEATURE_CONFIG, "qmax": [QMAX_EMBED_BEATS, QMAX_NEIGHBOURS, QMAX_GAP_OPEN,
                     QMAX_GAP_EXTEND, QMAX_TRANSPOSITIONS, QMAX_TEMPO_OCTAVES, QMAX_NORM]}, sort_keys=True)


# ---------------------------------------------------------------- features

def beat_chroma(y: np.ndarray, *, sample_rate: int, method: str = "qmax", min_beats: int | None = None) -> np.ndarray:
    """Beat-synchronous chroma [shape=(12, beats)], each beat max-normalised.

    y: float [shape=(channels, samples)] or [shape=(samples,)]. Raises CoverCheckError for
    silence, no detectable beat, or fewer beats than `method` needs (`MIN_BEATS`; `min_beats`
    overrides it).
    """
    return beat_chroma_and_tempo(y, sample_rate=sample_rate, method=method, min_beats=min_beats)[0]


def beat_chroma_and_tempo(y: np.ndarray, *, sample_rate: int, method: str = "qmax", min_beats: int | None = None,
                          tempo_bpm: float | None = None) -> tuple[np.ndarray, float]:
    """`beat_chroma` and the tempo its beats were tracked at. With `tempo_bpm` the beats are tracked at that
    tempo instead of an estimated one: `make` knows the cover's tempo (the original's times the preset's
    change), and a syncopated band (bossa nova's, lo-fi's swung sixteenths) otherwise reads at double time,
    whose beat chroma does not line up with the original's at all (z near 0 for a band playing its chords)."""
    import librosa

    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 2:
        y = y.mean(axis=0)
    if y.ndim != 1:
        raise ValueError(f"y must be (channels, samples) or (samples,), got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        raise CoverCheckError("the audio contains NaN or infinite samples; cannot compare it")
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak <= 10 ** (SILENCE_DBFS / 20):
        raise CoverCheckError(f"the audio is silent (peak below {SILENCE_DBFS:g} dBFS); nothing to compare")
    if sample_rate != SAMPLE_RATE:
        y = librosa.resample(y, orig_sr=sample_rate, target_sr=SAMPLE_RATE, res_type="soxr_hq")
    y = y / max(float(np.max(np.abs(y))), 1e-9)
    onset_env = onset_strength(y, sample_rate=SAMPLE_RATE, hop_samples=HOP_SAMPLES)  # in chunks: flat memory
    if float(np.percentile(onset_env, 95)) < MIN_ONSET_STRENGTH:  # the tracker finds "beats" in a steady tone
        beats = np.zeros(0, dtype=int)
        tempo_bpm = 0.0
    elif tempo_bpm:
        beats = beat_frames(onset_env, bpm=tempo_bpm, frame_rate=SAMPLE_RATE / HOP_SAMPLES)
    else:
        tempo_bpm, beats = beat_track(onset_env, sample_rate=SAMPLE_RATE, hop_samples=HOP_SAMPLES)
    if len(beats) < 2:
        raise CoverCheckError("no beats detected; the cover check needs music with a pulse, "
                              "not speech, noise or a sustained tone")
    n_beats = len(beats) - 1
    min_beats = MIN_BEATS[method] if min_beats is None else min_beats
    if n_beats < min_beats:
        raise CoverCheckError(_too_short(n_beats, min_beats, method, tempo_bpm))
    chroma = librosa.feature.chroma_cqt(y=y, sr=SAMPLE_RATE, hop_length=HOP_SAMPLES, tuning=_estimate_tuning(y))
    sync = librosa.util.sync(chroma, beats, aggregate=np.median, pad=False)
    sync = sync[:, :n_beats]
    return (sync / np.maximum(sync.max(axis=0, keepdims=True), 1e-9)).astype(np.float32), float(tempo_bpm)


def _too_short(n_beats: int, min_beats: int, method: str, tempo_bpm: float | None = None) -> str:
    """The one-line refusal: which method needs how many beats, and what the other one needs."""
    at = (f": give at least {min_beats * 60.0 / tempo_bpm:.0f} s of music at this tempo ({tempo_bpm:.0f} BPM)"
          if tempo_bpm else "")
    other = (f"; qmax needs only {MIN_BEATS['qmax']} (--method qmax)" if method == "2dftm" else "")
    return f"only {n_beats} beats, {method} needs {min_beats}{at}{other}"


def _estimate_tuning(y: np.ndarray, *, n_fft: int = 2048, chunk_frames: int = 4096) -> float:
    """`librosa.estimate_tuning(y=y, sr=SAMPLE_RATE)` (what chroma_cqt does when not given a tuning),
    with the pitch tracking done `chunk_frames` STFT frames at a time: librosa's whole-song
    piptrack holds 0.8 GB for 10 minutes. piptrack is frame-local, so only the (pitch, magnitude)
    pairs it finds are kept; the median threshold and the tuning are librosa's."""
    import librosa

    hop = n_fft // 4
    pad = n_fft // 2
    n_frames = 1 + (len(y) + 2 * pad - n_fft) // hop
    pitches, mags = [], []
    for first in range(0, n_frames, chunk_frames):
        last = min(n_frames, first + chunk_frames)
        lo, hi = first * hop - pad, (last - 1) * hop + n_fft - pad
        segment = np.pad(y[max(lo, 0):min(hi, len(y))], (max(0, -lo), max(0, hi - len(y))))
        spectrum = np.abs(librosa.stft(segment, n_fft=n_fft, hop_length=hop, center=False))
        pitch, mag = librosa.piptrack(S=spectrum, sr=SAMPLE_RATE, n_fft=n_fft, hop_length=hop)
        found = pitch > 0
        pitches.append(pitch[found])
        mags.append(mag[found])
    pitch, mag = np.concatenate(pitches), np.concatenate(mags)
    threshold = np.median(mag) if mag.size else 0.0
    return float(librosa.pitch_tuning(pitch[mag >= threshold], resolution=0.01, bins_per_octave=12))


def features_from_chroma(chroma: np.ndarray) -> np.ndarray:
    """2D Fourier transform magnitude feature [shape=(12 * (PATCH_BEATS // 2 + 1),)] of beat chroma.

    Magnitudes of the 2D FFT of each 12 x 75 patch are invariant to circular shifts in pitch
    (transposition) and time (where in the patch a phrase starts); the median over patches
    keeps what most of the song does. The DC bin (total chroma energy, about the same for
    every song) is dropped: it pushed all cosine similarities towards 1.
    """
    chroma = np.asarray(chroma, dtype=np.float64)
    if chroma.ndim != 2 or chroma.shape[0] != 12:
        raise ValueError(f"chroma must be (12, beats), got shape {chroma.shape}")
    if chroma.shape[1] < PATCH_BEATS:
        raise CoverCheckError(_too_short(chroma.shape[1], PATCH_BEATS, "2dftm"))
    patches = np.lib.stride_tricks.sliding_window_view(chroma ** CHROMA_POWER, PATCH_BEATS, axis=1)
    patches = patches[:, ::PATCH_HOP_BEATS].transpose(1, 0, 2)  # (n_patches, 12, PATCH_BEATS)
    magnitude = np.abs(np.fft.rfft2(patches)) ** MAGNITUDE_POWER
    magnitude[:, 0, 0] = 0.0
    vec = np.median(magnitude, axis=0).ravel()
    return (vec / max(float(np.linalg.norm(vec)), 1e-12)).astype(np.float32)


def features(y: np.ndarray, *, sample_rate: int) -> np.ndarray:
    """The 2DFTM vector of a song (1-D, L2-normalised). Needs at least 75 beats of music."""
    return features_from_chroma(beat_chroma(y, sample_rate=sample_rate, method="2dftm"))


# ---------------------------------------------------------------- similarities

def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two 2DFTM vectors, in [-1, 1] (in practice [0, 1])."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"expected two 1-D feature vectors of one length, got {a.shape} and {b.shape}")
    return float(a @ b / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))


def _oti_candidates(a: np.ndarray, b: np.ndarray, n: int) -> list[int]:
    """The `n` best transpositions (semitones to roll b) by global chroma match, best first."""
    ga, gb = a.mean(axis=1), b.mean(axis=1)
    ga, gb = ga / max(ga.max(), 1e-9), gb / max(gb.max(), 1e-9)
    match = np.array([ga @ np.roll(gb, k) for k in range(12)])
    return [int(k) for k in np.argsort(-match, kind="stable")[:n]]


def _oti(a: np.ndarray, b: np.ndarray) -> int:
    """Optimal transposition index: semitones to roll b so its global chroma best matches a's."""
    return _oti_candidates(a, b, 1)[0]


def half_tempo(chroma: np.ndarray) -> np.ndarray:
    """Beat chroma on a grid of every other beat (pairs of beats averaged, max-normalised):
    what the beat tracker gives when it locks to half the tempo."""
    n = chroma.shape[1] // 2 * 2
    pooled = chroma[:, 0:n:2] + chroma[:, 1:n:2]
    return pooled / np.maximum(pooled.max(axis=0, keepdims=True), 1e-9)


def _embedded_distance(a: np.ndarray, b: np.ndarray, m: int) -> np.ndarray:
    """Euclidean distances [shape=(beats_a - m + 1, beats_b - m + 1)] between the unit-norm delay
    embeddings (m beats, tau = 1) of two beat chromas."""
    return _embedded_distance_kernel(np.ascontiguousarray(a, dtype=np.float64),
                                     np.ascontiguousarray(b, dtype=np.float64), int(m))


@numba.njit(cache=True)
def _embedded_distance_kernel(a, b, m):  # pragma: no cover - compiled
    # Loops, not `x_a @ x_b.T`: on a busy machine OpenBLAS's threads spin against each other on these
    # small products (50 ms instead of 1 ms for 200 x 90 x 36). The embedded dot product is a sum of
    # m beat-level dot products along a diagonal.
    na, nb = a.shape[1], b.shape[1]
    dots = np.zeros((na, nb))
    for i in range(na):
        for j in range(nb):
            s = 0.0
            for c in range(a.shape[0]):
                s += a[c, i] * b[c, j]
            dots[i, j] = s
    sq_a, sq_b = (a * a).sum(axis=0), (b * b).sum(axis=0)
    ea, eb = na - m + 1, nb - m + 1
    norm_a, norm_b = np.empty(ea), np.empty(eb)
    for i in range(ea):
        norm_a[i] = max(np.sqrt(sq_a[i:i + m].sum()), 1e-9)
    for j in range(eb):
        norm_b[j] = max(np.sqrt(sq_b[j:j + m].sum()), 1e-9)
    dist = np.empty((ea, eb))
    for i in range(ea):
        for j in range(eb):
            s = 0.0
            for k in range(m):
                s += dots[i + k, j + k]
            dist[i, j] = np.sqrt(max(2.0 - 2.0 * s / (norm_a[i] * norm_b[j]), 0.0))
    return dist


def _qmax(recurrence: np.ndarray, gap_open: float, gap_extend: float) -> float:
    """Length of the best local alignment path in a binary cross-recurrence plot (Serra 2009, eq. 4)."""
    return float(_qmax_kernel(np.ascontiguousarray(recurrence, dtype=np.bool_), float(gap_open), float(gap_extend)))


@numba.njit(cache=True)
def _qmax_kernel(r, gap_open, gap_extend):  # pragma: no cover - compiled
    # numba: the recurrence is cell by cell; numpy row vectors were 90x slower (119 vs 1.4 ms, 300 x 300)
    n, m = r.shape
    q = np.zeros((n + 2, m + 2))
    best = 0.0
    for i in range(2, n + 2):
        for j in range(2, m + 2):
            a, b, c = q[i - 1, j - 1], q[i - 2, j - 1], q[i - 1, j - 2]
            if r[i - 2, j - 2]:
                v = max(a, b, c) + 1.0
            else:  # the penalty depends on whether the cell the path came from was recurrent
                ga = gap_open if i >= 3 and j >= 3 and r[i - 3, j - 3] else gap_extend
                gb = gap_open if i >= 4 and j >= 3 and r[i - 4, j - 3] else gap_extend
                gc = gap_open if i >= 3 and j >= 4 and r[i - 3, j - 4] else gap_extend
                v = max(0.0, a - ga, b - gb, c - gc)
            q[i, j] = v
            best = max(best, v)
    return best


def _qmax_pair(a: np.ndarray, b: np.ndarray, m: int, kappa: float, gap_open: float, gap_extend: float,
               shifts: list[int]) -> float:
    """Best Qmax over b rolled by each of `shifts` semitones, in beats of path (not normalised)."""
    best = 0.0
    for shift in shifts:
        dist = _embedded_distance(a, np.roll(b, shift, axis=0), m)
        k_rows = max(1, int(round(kappa * dist.shape[1])))
        k_cols = max(1, int(round(kappa * dist.shape[0])))
        eps_rows = np.partition(dist, k_rows - 1, axis=1)[:, k_rows - 1:k_rows]
        eps_cols = np.partition(dist, k_cols - 1, axis=0)[k_cols - 1:k_cols, :]
        best = max(best, _qmax((dist <= eps_rows) & (dist <= eps_cols), gap_open, gap_extend))
    return best


def similarity_strong(chroma_a: np.ndarray, chroma_b: np.ndarray, *, m: int = QMAX_EMBED_BEATS,
                      kappa: float = QMAX_NEIGHBOURS, gap_open: float = QMAX_GAP_OPEN,
                      gap_extend: float = QMAX_GAP_EXTEND, transpositions: int = QMAX_TRANSPOSITIONS,
                      tempo_octaves: bool = QMAX_TEMPO_OCTAVES, norm: str = QMAX_NORM) -> float:
    """Qmax similarity of two beat chromas [shape=(12, beats)]: symmetric, >= 0.

    Qmax (beats on the best aligned path) divided by `norm` of the two lengths: "product"
    (square root of their product), "shorter" (the shorter one), "sqrt_shorter" (its square
    root). With `tempo_octaves`, also each song on a half-tempo grid against the other as
    tracked (a beat tracker's octave error), best of the three. Keyword settings are for
    benchmarks/dev_coverid.py; the defaults are what was chosen there.
    """
    a, b = np.asarray(chroma_a, dtype=np.float64), np.asarray(chroma_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != 12 or b.shape[0] != 12:
        raise ValueError(f"expected two (12, beats) chromas, got {a.shape} and {b.shape}")
    shortest = min(a.shape[1], b.shape[1])
    if shortest < min(m, QMAX_MIN_BEATS - 2) + 2:
        raise CoverCheckError(_too_short(shortest, min(m, QMAX_MIN_BEATS - 2) + 2, "qmax"))
    m = min(m, shortest - 2)  # a short clip: a shorter embedding
    grids = [(a, b)]
    if tempo_octaves:
        grids += [(g, h) for g, h in ((half_tempo(a), b), (a, half_tempo(b))) if min(g.shape[1], h.shape[1]) >= m + 2]
    best = 0.0
    for g, h in grids:
        q = _qmax_pair(g, h, m, kappa, gap_open, gap_extend, _oti_candidates(g, h, transpositions))
        na, nb = g.shape[1] - m + 1, h.shape[1] - m + 1
        denom = {"product": np.sqrt(na * nb), "shorter": min(na, nb), "sqrt_shorter": np.sqrt(min(na, nb))}[norm]
        best = max(best, q / float(denom))
    return best


def _pair_score(original, candidate, method: str) -> float:
    if method == "2dftm":
        return similarity(original, candidate)
    if method == "qmax":
        return similarity_strong(original, candidate)
    raise ValueError(f"unknown method {method!r}; use one of {METHODS}")


# ---------------------------------------------------------------- background and verdict

@dataclass(frozen=True)
class Background:
    """Songs unrelated to anything being checked, and the verdict threshold (in z) per method."""

    names: list[str]
    features: np.ndarray  # (songs, dims) 2DFTM vectors
    chromas: list[np.ndarray]  # (12, beats) per song, for qmax
    thresholds: dict[str, float] = field(default_factory=dict)
    config: str = CONFIG


def save_background(background: Background, path: Path) -> Path:
    lengths = np.array([c.shape[1] for c in background.chromas], dtype=np.int64)
    with atomic_path(Path(path)) as tmp:
        np.savez_compressed(
            tmp, names=np.array(background.names, dtype=str), features=background.features.astype(np.float32),
            chroma=np.concatenate(background.chromas, axis=1).astype(np.float16), chroma_lengths=lengths,
            thresholds=np.array(json.dumps(background.thresholds)), config=np.array(background.config))
    return Path(path)


def load_background(path: Path | None = None) -> Background:
    """The background from `path`, or the shipped `coverid-background` model (sha256-checked, read once per
    process: registry.load)."""
    if path is None:
        from . import registry

        return registry.load("coverid-background", _read_background)
    return _read_background(Path(path))


def _read_background(path: Path) -> Background:
    try:
        with np.load(path, allow_pickle=False) as z:
            config = str(z["config"])
            names = [str(n) for n in z["names"]]
            feats = z["features"].astype(np.float32)
            chroma = z["chroma"].astype(np.float32)
            lengths = z["chroma_lengths"]
            thresholds = json.loads(str(z["thresholds"]))
    except (OSError, KeyError, ValueError, EOFError):
        raise ModelError(f"{path}: not a cover-check background (unreadable or incomplete); "
                         "rebuild it with `make models`") from None
    if config != CONFIG:
        raise ModelError(f"{path}: made with other feature settings than this covergen; rebuild it with `make models`")
    chromas = np.split(chroma, np.cumsum(lengths)[:-1], axis=1)
    return Background(names=names, features=feats, chromas=chromas, thresholds=thresholds, config=config)


def _background_scores(candidate, background: Background, method: str) -> np.ndarray:
    if method == "2dftm":
        cand = np.asarray(candidate, dtype=np.float32)
        return background.features @ (cand / max(float(np.linalg.norm(cand)), 1e-12))
    return np.array([similarity_strong(c, candidate) for c in background.chromas])


def check(original_features: np.ndarray, candidate_features: np.ndarray,
          background: Background | None = None, *, method: str = "2dftm") -> dict:
    """Verdict on whether the candidate is a cover of the original.

    Features are 2DFTM vectors (`features`) for method "2dftm", beat chromas (`beat_chroma`)
    for "qmax". Returns {method, score, z, threshold, verdict, background_size}; z is the
    pair's similarity in standard deviations above the candidate's similarity to the
    background songs, verdict is "cover" when z >= threshold.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {METHODS}")
    background = background if background is not None else load_background()
    if method not in background.thresholds:
        raise ModelError(f"the cover-check background has no threshold for {method!r}; rebuild it with `make models`")
    score = _pair_score(original_features, candidate_features, method)
    bg = _background_scores(candidate_features, background, method)
    z = (score - float(np.mean(bg))) / max(float(np.std(bg)), 1e-9)
    threshold = float(background.thresholds[method])
    return {"method": method, "score": score, "z": float(z), "threshold": threshold,
            "verdict": "cover" if z >= threshold else "not a cover", "background_size": len(bg)}


def compare(original: np.ndarray, candidate: np.ndarray, *, sample_rate: int, method: str = "qmax",
            background: Background | None = None) -> dict:
    """`check` on two signals [shape=(channels, samples)] at `sample_rate`: what `covergen check` runs.

    Default "qmax": stronger than "2dftm" on the benchmark, and one pair is cheap (~0.3 s).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; use one of {METHODS}")
    a, b = beat_chroma(original, sample_rate=sample_rate), beat_chroma(candidate, sample_rate=sample_rate)
    if method == "2dftm":
        a, b = features_from_chroma(a), features_from_chroma(b)
    return check(a, b, background, method=method)


# ---------------------------------------------------------------- index of a folder

@dataclass(frozen=True)
class Index:
    """Features of the readable songs of a folder, and why the others were skipped."""

    root: Path
    paths: list[Path]
    features: np.ndarray  # (songs, dims); a zero row: too short for 2dftm (under 75 beats)
    chromas: list[np.ndarray]
    errors: dict[Path, str]

    def entry(self, i: int, method: str):
        return self.features[i] if method == "2dftm" else self.chromas[i]


def _index_file(path: Path) -> Path:
    path = Path(path)
    return path / INDEX_NAME if path.is_dir() else path


def _read_records(index_path: Path) -> tuple[Path, dict[str, dict]]:
    """(scanned folder, {relative path: record}) of an index file. Raises CoverCheckError."""
    try:
        with np.load(index_path, allow_pickle=False) as z:
            if str(z["config"]) != FEATURE_CONFIG:
                raise CoverCheckError(f"{index_path}: made by another covergen version; "
                                      "rebuild it with `covergen index DIR`")
            root = (index_path.parent / str(z["root"])).resolve()
            rel, mtime, size, err = z["rel"], z["mtime_ns"], z["size"], z["error"]
            feats, chroma, lengths = z["features"], z["chroma"], z["chroma_lengths"]
    except CovergenError:
        raise
    except (OSError, KeyError, ValueError, EOFError):  # numpy's messages here talk about pickles; not useful
        raise CoverCheckError(f"{index_path}: not a covergen index file (unreadable or incomplete); "
                              "rebuild it with `covergen index DIR`") from None
    chromas = np.split(chroma.astype(np.float32), np.cumsum(lengths)[:-1], axis=1) if len(rel) else []
    records = {}
    for i, r in enumerate(rel):
        records[str(r)] = {"mtime_ns": int(mtime[i]), "size": int(size[i]), "error": str(err[i]),
                           "features": feats[i], "chroma": chromas[i]}
    return root, records


def _write_records(index_path: Path, root: Path, records: dict[str, dict], dims: int) -> None:
    rels = sorted(records)
    feats = np.zeros((len(rels), dims), dtype=np.float32)
    chromas = []
    for i, r in enumerate(rels):
        if records[r]["features"] is not None:
            feats[i] = records[r]["features"]
        chromas.append(records[r]["chroma"] if records[r]["chroma"] is not None else np.zeros((12, 0), np.float32))
    with atomic_path(index_path) as tmp:
        np.savez_compressed(
            tmp, config=np.array(FEATURE_CONFIG), root=np.array(os.path.relpath(root, index_path.parent)),
            rel=np.array(rels, dtype=str), mtime_ns=np.array([records[r]["mtime_ns"] for r in rels], dtype=np.int64),
            size=np.array([records[r]["size"] for r in rels], dtype=np.int64),
            error=np.array([records[r]["error"] for r in rels], dtype=str), features=feats,
            chroma=(np.concatenate(chromas, axis=1) if chromas else np.zeros((12, 0))).astype(np.float16),
            chroma_lengths=np.array([c.shape[1] for c in chromas], dtype=np.int64))


def build_index(folder: Path, index_path: Path | None = None, *,
                on_progress: Callable[[float], None] | None = None) -> Path:
    """Index the audio files under `folder` (recursively); returns the index file's path.

    Incremental: a file whose mtime and size match the index is not read again. A file that
    cannot be compared (unreadable, too short for qmax, silent) is recorded with its error and
    skipped by `rank`; one under 75 beats is ranked by qmax only. Default index: `folder/.coverid-index.npz`.
    """
    from .audio import load

    folder = Path(folder)
    if not folder.is_dir():
        raise CoverCheckError(f"{folder}: not a folder; give a folder of songs to index")
    index_path = Path(index_path) if index_path is not None else folder / INDEX_NAME
    files = find_audio(folder)
    check_output_not_input([index_path], files)  # `index DIR -o DIR/song.wav` must not replace the song
    records: dict[str, dict] = {}
    if index_path.is_file():
        try:
            old_root, records = _read_records(index_path)
            if old_root != folder.resolve():
                records = {}
        except CoverCheckError as err:
            log.warning("rebuilding the index: %s", err)
            records = {}
    fresh: dict[str, dict] = {}
    dims = 12 * (PATCH_BEATS // 2 + 1)
    changed = 0
    for i, file in enumerate(files):
        rel = str(file.relative_to(folder))
        stat = file.stat()
        old = records.get(rel)
        if old is not None and old["mtime_ns"] == stat.st_mtime_ns and old["size"] == stat.st_size:
            fresh[rel] = old
        else:
            rec = {"mtime_ns": stat.st_mtime_ns, "size": stat.st_size, "error": "", "features": None, "chroma": None}
            try:
                y, sr = load(file, sample_rate=SAMPLE_RATE)
                rec["chroma"] = beat_chroma(y, sample_rate=sr)
                if rec["chroma"].shape[1] >= PATCH_BEATS:  # shorter songs are ranked by qmax only
                    rec["features"] = features_from_chroma(rec["chroma"])
            except CovergenError as err:
                rec["error"] = str(err).replace(f"{file}: ", "")
                log.info("index: skipping %s: %s", rel, rec["error"])
            fresh[rel] = rec
            changed += 1
            if changed % 25 == 0:  # keep the work of a long first run if it is interrupted
                _write_records(index_path, folder.resolve(), fresh | {r: v for r, v in records.items()
                                                                     if r not in fresh and (folder / r).is_file()},
                               dims)
        if on_progress:
            on_progress((i + 1) / len(files))
    if changed or set(fresh) != set(records) or not index_path.is_file():
        _write_records(index_path, folder.resolve(), fresh, dims)
    return index_path


def load_index(path: Path) -> Index:
    """Load an index file, or the default index inside a folder. Raises CoverCheckError."""
    index_path = _index_file(Path(path))
    if not index_path.is_file():
        where = Path(path)
        raise CoverCheckError(f"{where}: no cover index here; run `covergen index {where}` first")
    root, records = _read_records(index_path)
    ok = [r for r in sorted(records) if not records[r]["error"]]
    feats = np.stack([records[r]["features"] for r in ok]).astype(np.float32) if ok else np.zeros((0, 0), np.float32)
    return Index(root=root, paths=[root / r for r in ok], features=feats,
                 chromas=[records[r]["chroma"] for r in ok],
                 errors={root / r: records[r]["error"] for r in sorted(records) if records[r]["error"]})


def rank(candidate_features: np.ndarray, index: Index | Path, *, k: int | None = None,
         method: str = "2dftm") -> list[tuple[Path, float]]:
    """Songs of `index` most similar to the candidate, best first: [(path, similarity)].

    "2dftm" uses scikit-learn NearestNeighbors (cosine) on the 2DFTM vectors; "qmax" takes
    the candidate's beat chroma and scores every indexed song.
    """
    if not isinstance(index, Index):
        index = load_index(Path(index))
    n = len(index.paths)
    if n == 0:
        raise CoverCheckError(f"{index.root}: the index holds no comparable songs "
                              f"({len(index.errors)} skipped); add songs and run `covergen index` again")
    k = n if k is None else max(1, min(k, n))
    if method == "2dftm":
        from sklearn.neighbors import NearestNeighbors

        usable = np.flatnonzero(np.linalg.norm(index.features, axis=1) > 0)  # the others are under 75 beats
        if len(usable) == 0:
            raise CoverCheckError(f"{index.root}: every indexed song is under {PATCH_BEATS} beats, too short for "
                                  "2dftm; use --method qmax")
        k = min(k, len(usable))
        nn = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute").fit(index.features[usable])
        dist, idx = nn.kneighbors(np.asarray(candidate_features, dtype=np.float32)[None, :])
        return [(index.paths[usable[j]], float(1.0 - d)) for d, j in zip(dist[0], idx[0])]
    if method == "qmax":
        scores = np.array([similarity_strong(c, candidate_features) for c in index.chromas])
        order = np.argsort(-scores, kind="stable")[:k]
        return [(index.paths[j], float(scores[j])) for j in order]
    raise ValueError(f"unknown method {method!r}; use one of {METHODS}")

