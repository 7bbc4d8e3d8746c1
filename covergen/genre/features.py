"""Genre features: the columns of the public GTZAN feature table (`features_30_sec.csv`) from audio.

A classifier trained on that table can so be applied to any song. The table was made with an older
librosa; the conventions that make today's librosa (0.11) match it are kept in `gtzan_columns` and
listed in the README of ../shared: reflect padding for the STFT and RMS, the HPSS inverse STFT taken
without `length=` and then zero-padded, `np.var` over frames. `model_inputs` turns rows into a feature
set's model inputs ("level56": gain-free).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Iterable

import numpy as np

from .. import audio
from ..errors import GenreError

__all__ = ["FEATURES", "FEATURE_SETS", "SAMPLE_RATE", "MIN_DURATION_S", "features", "mono_22k", "gtzan_columns",
           "model_inputs"]

SAMPLE_RATE = 22050
MIN_DURATION_S = 5.0  # beat tracking and the variances need a few bars; below this the answer is noise

_N_FFT = 2048
_HOP_SAMPLES = 512
_N_MFCC = 20

# Column order of features_30_sec.csv (without filename, length, label).
FEATURES: tuple[str, ...] = (
    "chroma_stft_mean", "chroma_stft_var", "rms_mean", "rms_var",
    "spectral_centroid_mean", "spectral_centroid_var", "spectral_bandwidth_mean", "spectral_bandwidth_var",
    "rolloff_mean", "rolloff_var", "zero_crossing_rate_mean", "zero_crossing_rate_var",
    "harmony_mean", "harmony_var", "perceptr_mean", "perceptr_var", "tempo",
    *(f"mfcc{i}_{stat}" for i in range(1, _N_MFCC + 1) for stat in ("mean", "var")),
)


def features(y: np.ndarray, *, sample_rate: int) -> dict[str, float]:
    """The 57 GTZAN feature columns of one segment (meant for 30 s).

    y: float [shape=(channels, samples)] or [shape=(samples,)], any rate; it is mixed to mono
    and resampled to 22,050 Hz as GTZAN was. Returns {column name: value} in `FEATURES` order.
    """
    y = mono_22k(y, sample_rate=sample_rate)
    if y.size < _N_FFT:
        raise GenreError(f"only {1000 * y.size / SAMPLE_RATE:.0f} ms of audio; genre features need at least "
                         f"{MIN_DURATION_S:g} s")
    return gtzan_columns(y)


def mono_22k(y: np.ndarray, *, sample_rate: int) -> np.ndarray:
    """y [shape=(channels, samples)] or [shape=(samples,)] at any rate -> float32 mono at 22,050 Hz, as GTZAN was."""
    y = np.asarray(y)
    if y.ndim not in (1, 2):
        raise ValueError(f"expected audio of shape (channels, samples) or (samples,), got {y.shape}")
    y = audio.to_mono(y).astype(np.float32, copy=False)
    if sample_rate != SAMPLE_RATE:
        y = audio.resample(y, orig_sr=int(sample_rate), target_sr=SAMPLE_RATE)
    return np.ascontiguousarray(y, dtype=np.float32)


def gtzan_columns(y: np.ndarray) -> dict[str, float]:
    """y: float32 mono at 22,050 Hz. One reflect-padded STFT is shared by every spectral feature:
    the old librosa computed the same STFT once per feature, so the values are identical."""
    import librosa

    sr = SAMPLE_RATE
    stft = librosa.stft(y, n_fft=_N_FFT, hop_length=_HOP_SAMPLES, pad_mode="reflect")
    magnitude = np.abs(stft)
    power = magnitude ** 2

    with warnings.catch_warnings():  # near-silent or unpitched audio: tuning falls back to 0, as it did
        warnings.filterwarnings("ignore", message="Trying to estimate tuning from empty frequency set")
        chroma = librosa.feature.chroma_stft(S=power, sr=sr, n_fft=_N_FFT, hop_length=_HOP_SAMPLES)  # max-normed
    rms = librosa.feature.rms(y=y, frame_length=_N_FFT, hop_length=_HOP_SAMPLES, pad_mode="reflect")
    centroid = librosa.feature.spectral_centroid(S=magnitude, sr=sr, n_fft=_N_FFT, hop_length=_HOP_SAMPLES)
    bandwidth = librosa.feature.spectral_bandwidth(S=magnitude, sr=sr, n_fft=_N_FFT, hop_length=_HOP_SAMPLES)
    rolloff = librosa.feature.spectral_rolloff(S=magnitude, sr=sr, n_fft=_N_FFT, hop_length=_HOP_SAMPLES)
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=_N_FFT, hop_length=_HOP_SAMPLES)  # edge padding

    # Old librosa.effects.hpss: inverse STFT without `length=`, then zero-padded to len(y).
    from ..hpss import hpss

    stft_harm, stft_perc = hpss(stft)
    harmony = librosa.util.fix_length(librosa.istft(stft_harm, hop_length=_HOP_SAMPLES, dtype=y.dtype), size=y.size)
    perceptr = librosa.util.fix_length(librosa.istft(stft_perc, hop_length=_HOP_SAMPLES, dtype=y.dtype), size=y.size)

    log_mel = librosa.power_to_db(librosa.feature.melspectrogram(S=power, sr=sr))
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=_N_MFCC)
    # beat_track's tempo: onset envelope with a median over mel bands, then the tempogram estimate.
    onset_env = librosa.onset.onset_strength(S=librosa.power_to_db(
        librosa.feature.melspectrogram(S=power, sr=sr, fmax=0.5 * sr)), sr=sr, aggregate=np.median)
    tempo_bpm = float(librosa.feature.tempo(onset_envelope=onset_env, sr=sr, hop_length=_HOP_SAMPLES)[0]) \
        if onset_env.any() else 0.0

    out: dict[str, float] = {}
    for name, values in (("chroma_stft", chroma), ("rms", rms), ("spectral_centroid", centroid),
                         ("spectral_bandwidth", bandwidth), ("rolloff", rolloff), ("zero_crossing_rate", zcr),
                         ("harmony", harmony), ("perceptr", perceptr)):
        out[f"{name}_mean"] = float(np.mean(values))
        out[f"{name}_var"] = float(np.var(values))
    out["tempo"] = tempo_bpm
    for i in range(_N_MFCC):
        out[f"mfcc{i + 1}_mean"] = float(np.mean(mfcc[i]))
        out[f"mfcc{i + 1}_var"] = float(np.var(mfcc[i]))
    return {name: out[name] for name in FEATURES}


# Model inputs. "gtzan57" is the table as it is. "level56" removes playback gain, which a volume
# knob or a louder master changes without changing the genre: five columns scale with the gain g
# and mfcc1_mean shifts by sqrt(128) * 20 log10(g) (the DCT-ortho of a constant dB shift over 128
# mel bands); every other column is a ratio and does not move. Dividing by rms_mean (and dropping
# it) makes all 56 inputs exactly gain-free, short of clipping and power_to_db's floor. Variances
# are heavy-tailed over four decades, so level56 takes their log (trees don't care; SVMs do).
_LEVEL56 = (
    "chroma_stft_mean", "log(chroma_stft_var)", "log(rms_var/rms_mean^2)",
    "spectral_centroid_mean", "log(spectral_centroid_var)", "spectral_bandwidth_mean",
    "log(spectral_bandwidth_var)", "rolloff_mean", "log(rolloff_var)",
    "zero_crossing_rate_mean", "log(zero_crossing_rate_var)",
    "harmony_mean/rms_mean", "log(harmony_var/rms_mean^2)", "perceptr_mean/rms_mean", "log(perceptr_var/rms_mean^2)",
    "tempo", "mfcc1_mean-sqrt(128)*20*log10(rms_mean)", "log(mfcc1_var)",
    *(f"mfcc{i}_mean" if stat == "mean" else f"log(mfcc{i}_var)" for i in range(2, _N_MFCC + 1)
      for stat in ("mean", "var")),
)
FEATURE_SETS: dict[str, tuple[str, ...]] = {"gtzan57": FEATURES, "level56": _LEVEL56}
_TINY = 1e-12


def model_inputs(rows: Iterable[dict[str, float]] | np.ndarray, *, feature_set: str) -> np.ndarray:
    """Matrix the classifier sees [shape=(n, len(FEATURE_SETS[feature_set]))].

    rows: feature dicts from `features`, or an array [shape=(n, 57)] in `FEATURES` order.
    """
    if isinstance(rows, np.ndarray):
        x = np.asarray(rows, dtype=np.float64)
    else:
        x = np.array([[row[name] for name in FEATURES] for row in rows], dtype=np.float64).reshape(-1, len(FEATURES))
    if x.ndim != 2 or x.shape[1] != len(FEATURES):
        raise ValueError(f"expected (n, {len(FEATURES)}) features, got {x.shape}")
    if feature_set == "gtzan57":
        return x
    if feature_set == "level56":
        return _level_free(x)
    raise ValueError(f"unknown feature_set {feature_set!r}; expected one of {tuple(FEATURE_SETS)}")


def _level_free(x: np.ndarray) -> np.ndarray:
    col = {name: i for i, name in enumerate(FEATURES)}
    rms = np.maximum(x[:, col["rms_mean"]], _TINY)
    columns = []
    for name in _LEVEL56:
        if name == "mfcc1_mean-sqrt(128)*20*log10(rms_mean)":
            columns.append(x[:, col["mfcc1_mean"]] - math.sqrt(128) * 20 * np.log10(rms))
            continue
        logged = name.startswith("log(")
        inner = name[4:-1] if logged else name
        base, _, divisor = inner.partition("/")
        value = x[:, col[base]]
        if divisor:
            value = value / (rms ** 2 if divisor.endswith("^2") else rms)
        columns.append(np.log(np.maximum(value, _TINY)) if logged else value)
    return np.stack(columns, axis=1)
