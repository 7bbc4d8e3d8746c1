"""Genre classification: GTZAN's 10 genres from the registry's model, over a song's 30 s segments.

`predict` averages the model's probabilities over 30 s segments (the length of a GTZAN clip).
"""
from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import audio, registry
from ..errors import GenreError, ModelError
from .features import FEATURE_SETS, MIN_DURATION_S, SAMPLE_RATE, gtzan_columns, model_inputs, mono_22k

__all__ = ["GENRES", "SEGMENT_S", "MODEL_NAME", "load_model", "predict", "predict_file", "top"]

log = logging.getLogger(__name__)

GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
SEGMENT_S = 30.0
MODEL_NAME = "genre-gtzan"


_SILENT_RMS = 1e-4  # -80 dBFS: a segment this quiet has no genre (and its log-variances are -inf)
_BUNDLE_KEYS = ("model", "feature_set", "genres", "sample_rate", "segment_s")


def load_model(name: str = MODEL_NAME) -> dict:
    """The model bundle from the registry: {"model": sklearn estimator, "feature_set", "genres", ...}.

    Read once per process (registry.load). ModelError if it is missing, corrupt or from an incompatible scikit-learn.
    """
    return registry.load(name, lambda file: _read_bundle(name, file))


def _read_bundle(name: str, file: Path) -> dict:
    import joblib

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            bundle = joblib.load(file)
    except Exception as err:  # unpickling errors vary with the scikit-learn version
        raise ModelError(f"model {name!r}: {file} cannot be loaded ({type(err).__name__}: {err}); "
                         "retrain it with `python -m covergen.training.train_genre`") from None
    if any("version" in str(w.message).lower() for w in caught):  # sklearn's InconsistentVersionWarning
        log.warning("model %r was saved by another scikit-learn version (%s); if its answers look wrong, "
                    "retrain it with `python -m covergen.training.train_genre`", name,
                    bundle.get("versions", {}).get("scikit-learn", "unknown") if isinstance(bundle, dict) else "?")
    missing = [k for k in _BUNDLE_KEYS if k not in bundle] if isinstance(bundle, dict) else list(_BUNDLE_KEYS)
    if missing:
        raise ModelError(f"model {name!r}: {file} lacks {', '.join(missing)}; "
                         "retrain it with `python -m covergen.training.train_genre`")
    if tuple(bundle["genres"]) != GENRES or bundle["feature_set"] not in FEATURE_SETS:
        raise ModelError(f"model {name!r}: unexpected genres or feature set in {file}; retrain it")
    return bundle


def _segments(n_samples: int, *, segment_samples: int) -> list[tuple[int, int]]:
    """Evenly spaced windows of `segment_samples` covering all samples (overlapping where needed).
    Audio up to 10% longer than one segment stays one window: a GTZAN-like clip, whole."""
    count = max(1, math.ceil(n_samples / segment_samples - 0.1))
    if count == 1:
        return [(0, n_samples)]
    starts = np.linspace(0, n_samples - segment_samples, count).round().astype(int)
    return [(int(s), int(s) + segment_samples) for s in starts]


def predict(
    y: np.ndarray,
    *,
    sample_rate: int,
    on_progress: Callable[[float], None] | None = None,
    model_name: str = MODEL_NAME,
) -> dict[str, float]:
    """Probabilities over `GENRES`, averaged over the 30 s segments of y.

    y: float [shape=(channels, samples)] or [shape=(samples,)]. Audio shorter than 30 s is
    one segment; shorter than MIN_DURATION_S raises GenreError, as does silence.
    """
    bundle = load_model(model_name)
    mono = mono_22k(y, sample_rate=sample_rate)
    if mono.size < MIN_DURATION_S * SAMPLE_RATE:
        raise GenreError(f"only {mono.size / SAMPLE_RATE:.1f} s of audio; genre needs at least "
                         f"{MIN_DURATION_S:g} s")
    windows = _segments(mono.size, segment_samples=round(float(bundle["segment_s"]) * SAMPLE_RATE))
    rows = []
    for i, (start, stop) in enumerate(windows):
        row = gtzan_columns(mono[start:stop])
        if row["rms_mean"] >= _SILENT_RMS:
            rows.append(row)
        if on_progress is not None:
            on_progress((i + 1) / len(windows))
    if not rows:
        raise GenreError("the audio is silent (below -80 dBFS RMS in every segment); no genre to find")
    model = bundle["model"]
    probs = model.predict_proba(model_inputs(rows, feature_set=bundle["feature_set"])).mean(axis=0)
    by_class = dict(zip((str(c) for c in model.classes_), probs))
    return {genre: float(by_class.get(genre, 0.0)) for genre in GENRES}


def predict_file(
    path: Path,
    *,
    excerpt_s: float | None = None,
    on_progress: Callable[[float], None] | None = None,
    model_name: str = MODEL_NAME,
) -> dict[str, float]:
    """`predict` on a file; with `excerpt_s`, only its middle `excerpt_s` seconds (faster on long songs)."""
    y, sr = audio.load(Path(path), min_duration_s=MIN_DURATION_S)
    if excerpt_s is not None and y.shape[1] > excerpt_s * sr:
        length = int(excerpt_s * sr)
        start = (y.shape[1] - length) // 2
        y = y[:, start:start + length]
    try:
        return predict(y, sample_rate=sr, on_progress=on_progress, model_name=model_name)
    except GenreError as err:
        raise GenreError(f"{path}: {err}") from None


def top(probs: dict[str, float], k: int = 3) -> list[tuple[str, float]]:
    """The k most probable genres, best first: [(genre, probability), ...]."""
    return sorted(probs.items(), key=lambda item: (-item[1], item[0]))[:k]
