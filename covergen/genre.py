"""Genre classification (GTZAN's 10 genres) and a listener's taste profile.

`features` reproduces the columns of the public GTZAN feature table
(`features_30_sec.csv`) from audio, so a classifier trained on that table can be
applied to any song. The table was made with an older librosa; the conventions
that make today's librosa (0.11) match it are kept in `_gtzan_columns` and listed
in the README of ../shared: reflect padding for the STFT and RMS, the HPSS inverse
STFT taken without `length=` and then zero-padded, `np.var` over frames.

`predict` averages the model's probabilities over 30 s segments (the length of a
GTZAN clip). `profile` walks a music folder and combines genre tags with the
classifier; `favourite` turns a profile into the name of a cover preset.
"""
from __future__ import annotations

import json
import logging
import math
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from . import audio, registry
from .errors import CovergenError, GenreError, ModelError

__all__ = [
    "GENRES", "FEATURES", "FEATURE_SETS", "SAMPLE_RATE", "SEGMENT_S", "MIN_DURATION_S", "MODEL_NAME",
    "AUDIO_SUFFIXES", "PROFILE_VERSION", "PRESET_FOR_GENRE", "features", "model_inputs", "load_model",
    "predict", "predict_file", "top", "tag_genre", "profile", "save_profile", "load_profile", "favourite",
]

log = logging.getLogger(__name__)

GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
SAMPLE_RATE = 22050
SEGMENT_S = 30.0
MIN_DURATION_S = 5.0  # beat tracking and the variances need a few bars; below this the answer is noise
MODEL_NAME = "genre-gtzan"
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aiff", ".aif")
PROFILE_VERSION = 1

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

# Genre name (GTZAN or tag slug) -> cover preset. A genre maps to a preset only when the
# preset's style contains it (metal is a kind of rock), not when they are merely neighbours:
# a blues fan is not assumed to want jazz. A genre whose name is itself a preset needs no entry.
# Pass `mapping=` to `favourite` to add neighbours such as {"blues": "jazz"}.
PRESET_FOR_GENRE: dict[str, str] = {
    "jazz": "jazz", "rock": "rock", "metal": "rock", "classical": "classical",
    "bossa_nova": "bossa_nova", "lofi": "lofi",
}


# ---------------------------------------------------------------------------------------------
# Features


def features(y: np.ndarray, *, sample_rate: int) -> dict[str, float]:
    """The 57 GTZAN feature columns of one segment (meant for 30 s).

    y: float [shape=(channels, samples)] or [shape=(samples,)], any rate; it is mixed to mono
    and resampled to 22,050 Hz as GTZAN was. Returns {column name: value} in `FEATURES` order.
    """
    y = _mono_22k(y, sample_rate=sample_rate)
    if y.size < _N_FFT:
        raise GenreError(f"only {1000 * y.size / SAMPLE_RATE:.0f} ms of audio; genre features need at least "
                         f"{MIN_DURATION_S:g} s")
    return _gtzan_columns(y)


def _mono_22k(y: np.ndarray, *, sample_rate: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim not in (1, 2):
        raise ValueError(f"expected audio of shape (channels, samples) or (samples,), got {y.shape}")
    y = audio.to_mono(y).astype(np.float32, copy=False)
    if sample_rate != SAMPLE_RATE:
        y = audio.resample(y, orig_sr=int(sample_rate), target_sr=SAMPLE_RATE)
    return np.ascontiguousarray(y, dtype=np.float32)


def _gtzan_columns(y: np.ndarray) -> dict[str, float]:
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
    stft_harm, stft_perc = librosa.decompose.hpss(stft)
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


# ---------------------------------------------------------------------------------------------
# Classifier

_SILENT_RMS = 1e-4  # -80 dBFS: a segment this quiet has no genre (and its log-variances are -inf)
_BUNDLE_KEYS = ("model", "feature_set", "genres", "sample_rate", "segment_s")
_loaded: dict[tuple[Path, str], dict] = {}


def load_model(name: str = MODEL_NAME) -> dict:
    """The model bundle from the registry: {"model": sklearn estimator, "feature_set", "genres", ...}.

    Cached per verified file. ModelError if it is missing, corrupt or from an incompatible scikit-learn.
    """
    file = registry.path(name)
    key = (file, registry.get(name).sha256)
    if key not in _loaded:
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
        _loaded[key] = bundle
    return _loaded[key]


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
    mono = _mono_22k(y, sample_rate=sample_rate)
    if mono.size < MIN_DURATION_S * SAMPLE_RATE:
        raise GenreError(f"only {mono.size / SAMPLE_RATE:.1f} s of audio; genre needs at least "
                         f"{MIN_DURATION_S:g} s")
    windows = _segments(mono.size, segment_samples=round(float(bundle["segment_s"]) * SAMPLE_RATE))
    rows = []
    for i, (start, stop) in enumerate(windows):
        row = _gtzan_columns(mono[start:stop])
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


# ---------------------------------------------------------------------------------------------
# Genre tags

# Tag words -> genre, checked in order (first match wins) on the words of a normalised tag.
# "lo-fi hip hop" is lofi before it is hiphop; "pop rock" is rock; R&B is not blues.
_TAG_RULES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("bossa",), "bossa_nova"),
    (("lofi", "lo_fi", "chillhop"), "lofi"),
    (("rnb", "r_b", "rhythm_and_blues", "rhythm_blues", "soul"), "rnb"),
    (("metal", "metalcore", "grindcore"), "metal"),
    (("hiphop", "hip_hop", "rap", "trap"), "hiphop"),
    (("jazz", "swing", "bebop", "bop"), "jazz"),
    (("blues",), "blues"),
    (("classical", "baroque", "opera", "orchestral", "symphony", "chamber_music"), "classical"),
    (("country", "bluegrass"), "country"),
    (("reggae", "dub", "dancehall", "ska", "rocksteady"), "reggae"),
    (("disco",), "disco"),
    (("rock", "punk", "grunge", "rock_n_roll"), "rock"),
    (("pop",), "pop"),
)


def tag_genre(raw: str) -> str | None:
    """Normalise a genre tag: a GTZAN genre (or bossa_nova / lofi / rnb) where one fits,
    else the tag as a lowercase slug ("Synthwave" -> "synthwave"); None if empty."""
    first = re.split(r"[;/,|]", raw.strip(), maxsplit=1)[0]
    first = re.sub(r"^\(\d+\)", "", first)  # ID3v1 "(17)Rock"
    slug = re.sub(r"[^a-z0-9]+", "_", first.lower().replace("&", "_")).strip("_")
    if not slug:
        return None
    words = slug.split("_")
    phrases = set(words) | {"_".join(words[i:i + n]) for n in (2, 3) for i in range(len(words) - n + 1)}
    phrases.add(slug.replace("_", ""))  # "hip_hop" -> "hiphop", "lo_fi" -> "lofi"
    for keys, genre in _TAG_RULES:
        if phrases.intersection(keys):
            return genre
    return slug


def _read_tag(path: Path) -> str | None:
    """The first genre tag of the file (ID3 TCON, Vorbis/FLAC GENRE, MP4 ©gen), or None."""
    import mutagen

    try:
        tagged = mutagen.File(str(path), easy=True)
    except Exception as err:  # mutagen raises many types on damaged headers; tags are optional
        log.debug("%s: no readable tags (%s)", path, err)
        return None
    tags = getattr(tagged, "tags", None)
    if not tags:
        return None
    values: list[str] = []
    try:
        if "genre" in tags:  # EasyID3, EasyMP4, Vorbis comments
            values = list(tags["genre"])
        elif "TCON" in tags:  # ID3 in WAV/AIFF (no easy interface)
            values = list(tags["TCON"].genres)
    except (KeyError, ValueError, TypeError):
        return None
    values = [str(v).strip() for v in values if str(v).strip()]
    return values[0] if values else None


# ---------------------------------------------------------------------------------------------
# Taste profile


def _audio_files(folder: Path, *, recursive: bool) -> list[Path]:
    pattern = folder.rglob("*") if recursive else folder.glob("*")
    return sorted(p for p in pattern
                  if p.suffix.lower() in AUDIO_SUFFIXES and not p.name.startswith(".") and p.is_file())


def _distribution(genres: list[str]) -> dict:
    counts = Counter(genres)
    total = sum(counts.values())
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return {"files": total, "counts": dict(ordered),
            "shares": {g: round(c / total, 4) for g, c in ordered} if total else {}}


def profile(
    folder: Path,
    *,
    on_progress: Callable[[float], None] | None = None,
    recursive: bool = True,
    excerpt_s: float = 60.0,
    model_name: str = MODEL_NAME,
    out_path: Path | None = None,
) -> dict:
    """A listener's taste from a music folder: per-file genres, distributions, ranked favourites.

    Each file is classified on its middle `excerpt_s` seconds and its genre tag is read. A file's
    genre is its tag where it has one (a person chose it) and the classifier's top genre otherwise;
    `source` says which. Unreadable files are listed under "errors", never fatal. JSON-able.
    `out_path` (where the caller will save it) must not be one of the songs: OutputIsInputError.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise GenreError(f"{folder}: not a folder; give the folder of your music")
    files = _audio_files(folder, recursive=recursive)
    audio.check_output_not_input([out_path], files)  # where the profile will be saved: never over a song
    if not files:
        raise GenreError(f"{folder}: no audio files ({', '.join(s.lstrip('.') for s in AUDIO_SUFFIXES)}) found"
                         + ("" if recursive else "; try recursive=True"))
    bundle = load_model(model_name)
    results, errors = [], []
    mean_probs = np.zeros(len(GENRES))
    for i, file in enumerate(files):
        rel = file.relative_to(folder).as_posix()
        raw_tag = _read_tag(file)
        tag = tag_genre(raw_tag) if raw_tag else None
        entry: dict = {"path": rel, "tag": {"raw": raw_tag, "genre": tag} if tag else None,
                       "classifier": None, "error": None}

        def step(fraction: float, i: int = i) -> None:
            if on_progress is not None:
                on_progress((i + fraction) / len(files))

        try:
            probs = predict_file(file, excerpt_s=excerpt_s, on_progress=step, model_name=model_name)
        except CovergenError as err:  # AudioLoadError, AudioContentError, GenreError: this file only
            message = str(err) if str(file) in str(err) else f"{file}: {err}"
            entry["error"] = message
            errors.append({"path": rel, "error": message})
            log.info("skipping %s", message)
        else:
            best = top(probs, 1)[0][0]
            entry["classifier"] = {"genre": best, "probs": {g: round(p, 4) for g, p in probs.items()}}
            mean_probs += [probs[g] for g in GENRES]
        if tag:
            entry["genre"], entry["source"] = tag, "tag"
        elif entry["classifier"]:
            entry["genre"], entry["source"] = entry["classifier"]["genre"], "classifier"
        else:
            entry["genre"], entry["source"] = None, None
        results.append(entry)
        step(1.0)

    classified = [r for r in results if r["classifier"]]
    tagged = [r for r in results if r["tag"]]
    combined = [r for r in results if r["genre"]]
    both = [r for r in classified if r["tag"] and r["tag"]["genre"] in GENRES]
    soft = mean_probs / max(len(classified), 1)
    distribution = {
        "tag": _distribution([r["tag"]["genre"] for r in tagged]),
        "classifier": {**_distribution([r["classifier"]["genre"] for r in classified]),
                       "mean_probs": {g: round(float(p), 4) for g, p in zip(GENRES, soft)}},
        "combined": {**_distribution([r["genre"] for r in combined]),
                     "sources": dict(Counter(r["source"] for r in combined))},
    }
    favourites = []
    for genre, count in distribution["combined"]["counts"].items():
        sources = Counter(r["source"] for r in combined if r["genre"] == genre)
        favourites.append({"genre": genre, "count": count, "share": distribution["combined"]["shares"][genre],
                           "from_tag": sources["tag"], "from_classifier": sources["classifier"],
                           "mean_prob": round(float(soft[GENRES.index(genre)]), 4) if genre in GENRES else 0.0})
    favourites.sort(key=lambda f: (-f["count"], -f["mean_prob"], f["genre"]))
    for rank, fav in enumerate(favourites, 1):
        fav["rank"] = rank
    return {
        "version": PROFILE_VERSION,
        "folder": str(folder.resolve()),
        "model": {"name": model_name, "sha256": registry.get(model_name).sha256,
                  "feature_set": bundle["feature_set"]},
        "excerpt_s": excerpt_s,
        "files": results,
        "errors": errors,
        "distribution": distribution,
        # Files with a GTZAN-genre tag and a classifier answer: how often the classifier agrees.
        "agreement": {"files": len(both),
                      "top1": round(sum(r["classifier"]["genre"] == r["tag"]["genre"] for r in both) / len(both), 4)
                      if both else None},
        "favourites": favourites,
    }


def save_profile(profile: dict, path: Path) -> Path:
    """Write a profile as JSON, atomically (a failed write leaves no partial file)."""
    path = Path(path)
    text = json.dumps(profile, indent=2, ensure_ascii=False) + "\n"
    with audio.atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def load_profile(path: Path) -> dict:
    """Read a profile written by `save_profile`. GenreError if it is missing or not a profile."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GenreError(f"{path}: no such profile; make one with `covergen profile DIR -o {path.name}`") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise GenreError(f"{path}: not a readable profile JSON ({err}); make it again with `covergen profile`") \
            from None
    if not isinstance(data, dict) or not isinstance(data.get("favourites"), list) \
            or data.get("version") != PROFILE_VERSION:
        raise GenreError(f"{path}: not a covergen profile (version {PROFILE_VERSION}); "
                         "make it again with `covergen profile`")
    return data


def favourite(profile: dict, available: list[str], *, mapping: dict[str, str | None] | None = None) -> str:
    """The preset for the listener's most-liked genre that has one.

    Walks the ranked favourites; a genre whose name is an available preset wins as itself,
    otherwise through `PRESET_FOR_GENRE` updated with `mapping` (e.g. {"blues": "jazz"} to let a
    blues fan get jazz, {"metal": None} to stop metal counting as rock). GenreError if none maps.
    """
    table = {**PRESET_FOR_GENRE, **(mapping or {})}
    names = [f["genre"] for f in profile.get("favourites", []) if f.get("genre")]
    for genre in names:
        preset = genre if genre in available else table.get(genre)
        if preset in available:
            return preset
    liked = ", ".join(names[:5]) or "none"
    raise GenreError(f"none of the profile's genres ({liked}) has a preset among {', '.join(available) or 'none'}; "
                     "pick one with --to")
