"""A listener's taste profile: genre tags and the classifier over a music folder, and the favourite preset.

`profile` walks a music folder and combines genre tags with the classifier; `favourite` turns a
profile into the name of a cover preset.
"""
from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import audio, registry
from ..errors import CovergenError, GenreError
from .classifier import GENRES, MODEL_NAME, load_model, predict_file, top

__all__ = ["PROFILE_VERSION", "PRESET_FOR_GENRE", "tag_genre", "profile", "save_profile", "load_profile",
           "favourite"]

log = logging.getLogger(__name__)

PROFILE_VERSION = 1

# Genre name (GTZAN or tag slug) -> cover preset. A genre maps to a preset only when the
# preset's style contains it (metal is a kind of rock), not when they are merely neighbours:
# a blues fan is not assumed to want jazz. A genre whose name is itself a preset needs no entry.
# Pass `mapping=` to `favourite` to add neighbours such as {"blues": "jazz"}.
PRESET_FOR_GENRE: dict[str, str] = {
    "jazz": "jazz", "rock": "rock", "metal": "rock", "classical": "classical",
    "bossa_nova": "bossa_nova", "lofi": "lofi",
}


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
    files = audio.find_audio(folder, recursive=recursive)
    audio.check_output_not_input([out_path], files)  # where the profile will be saved: never over a song
    if not files:
        raise GenreError(f"{folder}: no audio files ({', '.join(s.lstrip('.') for s in audio.AUDIO_SUFFIXES)}) found"
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
