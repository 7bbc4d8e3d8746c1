"""covergen's public API: what the CLI, `batch` and the Dask cluster call (as demucs has `demucs.api`).

Plain arguments in (paths, preset names, numbers), results out (a Cover, a report dict, a path); every
failure a user can hit raises a CovergenError subclass with a one-line message. `pipeline` composes the
stages on audio; this module adds what a caller needs around it: the output-name rule, checks before
any work, writing covers and reports, and the one-stage commands (cover check, genre, profile, presets,
instruments, models, doctor).
"""
from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Callable

from . import __version__, audio, folders, pipeline, presets, registry, separate
from .leadsheet import LeadSheet
from .pipeline import Cover

__all__ = ["Cover", "genre_name", "output_name", "make_cover", "separate_song", "analyse", "arrange", "transfer",
           "mix", "check", "rank", "index", "classify", "profile", "favourite_genre", "train_instrument",
           "preset", "list_presets", "preset_text", "list_instruments", "model_terms", "fetch_model", "doctor",
           "FETCHABLE_MODELS"]

ProgressFn = Callable[[float], None]
StageProgressFn = Callable[[str, float], None]  # (stage name, fraction of the whole run)


def genre_name(genre: str) -> str:
    """The name a preset goes by: its name, or a preset file's stem (`my/surf.toml` -> `surf`)."""
    return Path(genre).stem if str(genre).endswith(".toml") else str(genre)


def output_name(base: str, tag: str, *, fmt: str = "wav") -> Path:
    """The default output file, in the current folder: `<base>-<tag>.<fmt>`, base being the song's stem or
    the stems folder's name (song-jazz.wav, vocals-trumpet.wav, song-jazz-band.wav, separated-jazz.wav)."""
    return Path(f"{base}-{tag}.{fmt}")


def _preset_file(genre: str) -> Path | None:
    """A preset given as a .toml file is an input too: never written over."""
    return Path(genre) if str(genre).endswith(".toml") else None


def make_cover(song: Path, out: Path | None = None, *, genre: str, fmt: str = "wav", report: Path | None = None,
               stems_dir: Path | None = None, separator: str = "auto", demucs_repo: Path | None = None,
               seed: int = 0, use_cache: bool = True, mode: str | None = None, melody: str | None = None,
               inputs: tuple = (), on_progress: StageProgressFn | None = None) -> Cover:
    """`covergen make`: cover `song` in `genre` and write it to `out` (default `<song>-<genre>.<fmt>`),
    with its JSON report and kept stems if asked. Every output is checked before any work; `inputs`
    (e.g. a profile) are never written over. Returns the Cover; its report says where it went."""
    out = Path(out) if out is not None else output_name(Path(song).stem, genre_name(genre), fmt=fmt)
    pipeline.check_writable(out, inputs=[song, _preset_file(genre), *inputs], report=report, stems_dir=stems_dir)
    cover = pipeline.make_cover(Path(song), genre=genre, separator=separator, demucs_repo=demucs_repo, seed=seed,
                                use_cache=use_cache, mode=mode, melody=melody, keep_stems=stems_dir is not None,
                                on_progress=on_progress)
    pipeline.write_cover(cover, out, report_path=report, stems_dir=stems_dir)
    return cover


def separate_song(song: Path, out_root: Path, *, separator: str = "auto", demucs_repo: Path | None = None,
                  on_progress: ProgressFn | None = None) -> tuple[Path, dict]:
    """`covergen separate`: stems to OUT/<separator>/<track>/<stem>.wav (the demucs CLI layout); (folder, info)."""
    return pipeline.separate_song(Path(song), Path(out_root), separator=separator, demucs_repo=demucs_repo,
                                  on_progress=on_progress)


def analyse(song: Path, *, json_out: Path | None = None, lab_out: Path | None = None, midi_out: Path | None = None,
            separator: str = "auto", demucs_repo: Path | None = None, chords: str = "chordia",
            use_cache: bool = True, on_progress: ProgressFn | None = None) -> tuple[LeadSheet, dict]:
    """`covergen analyse`: the lead sheet of `song` and how it was made, optionally written as JSON, .lab, MIDI."""
    return pipeline.analyse_file(Path(song), json_out=json_out, lab_out=lab_out, midi_out=midi_out,
                                 separator=separator, demucs_repo=demucs_repo, chords=chords, use_cache=use_cache,
                                 on_progress=on_progress)


def arrange(song: Path, out: Path | None = None, *, genre: str, midi_out: Path | None = None,
            report: Path | None = None, seed: int = 0, on_progress: StageProgressFn | None = None) -> dict:
    """`covergen arrange`: the band alone for a song or lead sheet .json, written to `out` (default
    `<song>-<genre>-band.wav`), its MIDI and JSON report if asked. Returns the report."""
    out = Path(out) if out is not None else output_name(Path(song).stem, f"{genre_name(genre)}-band")
    pipeline.check_writable(out, inputs=[song, _preset_file(genre)], report=report)
    if report is not None:
        pipeline.check_writable_file(report)
    result = pipeline.arrange_file(Path(song), out, genre=genre, midi_out=midi_out, seed=seed, on_progress=on_progress)
    if report is not None:
        with audio.atomic_path(Path(report)) as tmp:
            tmp.write_text(json.dumps(result, indent=2, default=float))
    return result


def transfer(song: Path, out: Path | None = None, *, instrument: str, octave: str | int = "auto",
             force: bool = False, seed: int = 0, on_progress: ProgressFn | None = None) -> dict:
    """`covergen transfer`: re-play a monophonic recording with `instrument`, written to `out` (default
    `<song>-<instrument>.wav`) at the input's rate. Returns what was played (the output path included)."""
    out = Path(out) if out is not None else output_name(Path(song).stem, instrument)
    return pipeline.transfer_file(Path(song), out, instrument=instrument, octave=octave, force=force, seed=seed,
                                  on_progress=on_progress)


def mix(stems_dir: Path, out: Path | None = None, *, genre: str, report: Path | None = None, seed: int = 0,
        on_progress: StageProgressFn | None = None) -> Cover:
    """`covergen mix` (the revoice mode): transfer and mix a stems folder with a preset, written to `out`
    (default `<folder>-<genre>.wav`) with its JSON report if asked."""
    stems_dir = Path(stems_dir)
    out = Path(out) if out is not None else output_name(stems_dir.resolve().name, genre_name(genre))
    pipeline.check_writable(out, inputs=pipeline.stems_folder_files(stems_dir), report=report)
    cover = pipeline.mix_stems(stems_dir, genre=genre, seed=seed, on_progress=on_progress)
    pipeline.write_cover(cover, out, report_path=report)
    return cover


def preset(genre: str) -> presets.GenrePreset:
    """The preset `genre` (a name or a .toml file), validated; PresetError naming the known ones if unknown."""
    return presets.load(genre)


def list_presets() -> list[dict]:
    """Name, tempo change, transfers and description of each shipped preset."""
    rows = []
    for name in presets.available():
        p = presets.load(name)
        rows.append({"name": name, "tempo_change_bpm": p.tempo_change_bpm, "description": p.description,
                     "transfers": {s: sp.instrument for s, sp in p.stems.items() if sp.action == "transfer"}})
    return rows


def preset_text(name: str) -> str:
    """The TOML text of a shipped preset (validated first)."""
    preset = presets.load(name)
    return (presets.presets_dir() / preset.source).read_text()


FETCHABLE_MODELS = ("htdemucs-onnx",)


def model_terms(name: str) -> str:
    """The terms of an optional model's weights, shown before `fetch_model`."""
    from . import htdemucs_onnx
    from .errors import SeparationError

    if name not in FETCHABLE_MODELS:
        raise SeparationError(f"unknown optional model {name!r}; fetchable: {', '.join(FETCHABLE_MODELS)}")
    return htdemucs_onnx.TERMS


def fetch_model(name: str, *, accept_terms: bool) -> Path:
    """`covergen models fetch`: download an optional model into the user models folder (never the repo)."""
    from . import htdemucs_onnx

    model_terms(name)
    return htdemucs_onnx.fetch(accept_terms=accept_terms)


def doctor() -> dict:
    """What is available and from where: separators, instrument models, SoundFonts, tools."""
    import shutil

    from .arrange.render import find_soundfont

    facts: dict = {"covergen": {"version": __version__, "python": platform.python_version(),
                                "models folder": str(registry.models_dir()),
                                "user models folder": str(folders.user_models_dir()),
                                "stem cache": str(separate.cache_dir())}}
    facts["separators"] = {"htdemucs": separate.demucs_status(), "spleeter": separate.spleeter_status(),
                           "embedded": "always (DSP, no weights)", "unmix": separate.unmix_status()}
    models = {}
    for name, entry in registry.entries().items():
        ok = entry.file_path.is_file()
        models[name] = f"{entry.kind}, {entry.origin}, {'ok' if ok else 'MISSING'}: {entry.file_path}"
    facts["models"] = models or {"(none)": "run `make models`"}
    sf2 = find_soundfont()
    facts["tools"] = {"SoundFont": str(sf2) if sf2 else "none (apt-get install fluid-soundfont-gm)",
                      "fluidsynth": shutil.which("fluidsynth") or "not installed (apt-get install fluidsynth)"}
    facts["band SoundFonts (arranger)"] = _part_soundfonts(sf2)
    return facts


def _part_soundfonts(default: Path | None) -> dict[str, str]:
    """Which SoundFont plays each shipped style's part that names its own (a recorded kit, MuseScore's piano)."""
    from .arrange import styles
    from .arrange.render import part_soundfont

    out = {}
    for name in styles.available():
        for part in styles.load_style(name).parts:
            if part.soundfont:
                font, _ = part_soundfont(part, default, part.program)
                out[f"{name} {part.name}"] = str(font) if font != default else \
                    f"{default} (none of {', '.join(part.soundfont)} installed: make install)"
    return out


def list_instruments() -> list[dict]:
    """Instrument models available for transfer (shipped and user-trained)."""
    from . import timbre

    return timbre.list_instruments()


def _song_features(song: Path, method: str):
    from . import coverid

    y, sr = audio.load(song)
    return coverid.features(y, sample_rate=sr) if method == "2dftm" else coverid.beat_chroma(y, sample_rate=sr)


def check(original: Path, candidate: Path, *, method: str = "qmax") -> dict:
    """`covergen check ORIGINAL CANDIDATE`: similarity, z-score against the background set, verdict."""
    from . import coverid

    result = coverid.check(_song_features(original, method), _song_features(candidate, method), method=method)
    return {"original": str(original), "candidate": str(candidate), **result}


def rank(candidate: Path, library: Path, *, method: str = "qmax", top: int = 10,
                 on_progress: ProgressFn | None = None) -> list[tuple[Path, float]]:
    """`covergen check CANDIDATE --library DIR|INDEX`: the library's songs most like the candidate.

    A folder is indexed first (incrementally: unchanged files are not analysed again).
    """
    from . import coverid

    library = Path(library)
    index = coverid.build_index(library, on_progress=on_progress) if library.is_dir() else library
    return coverid.rank(_song_features(candidate, method), index, k=top, method=method)


def index(folder: Path, index_path: Path | None = None,
                 on_progress: ProgressFn | None = None) -> tuple[Path, int, dict]:
    """`covergen index DIR`: build or update the feature index; returns (path, songs indexed, errors)."""
    from . import coverid

    path = coverid.build_index(Path(folder), index_path, on_progress=on_progress)
    index = coverid.load_index(path)
    return path, len(index.paths), {str(k): v for k, v in index.errors.items()}


def classify(song: Path, *, on_progress: ProgressFn | None = None) -> dict[str, float]:
    """`covergen genre FILE`: probabilities over the ten GTZAN genres (30 s segments, averaged)."""
    from . import genre

    return genre.predict_file(Path(song), on_progress=on_progress)


def profile(folder: Path, out: Path | None = None, *, recursive: bool = True,
                  on_progress: ProgressFn | None = None) -> dict:
    """`covergen profile DIR`: genre distribution and favourites of a music folder (tags + classifier)."""
    from . import genre

    if out is not None:
        pipeline.check_writable_file(out)
    result = genre.profile(Path(folder), recursive=recursive, on_progress=on_progress, out_path=out)
    if out is not None:
        genre.save_profile(result, Path(out))
    return result


def favourite_genre(profile_path: Path) -> str:
    """The listener's favourite genre that has a preset (`make --to auto --profile FILE`)."""
    from . import genre

    return genre.favourite(genre.load_profile(Path(profile_path)), presets.available())


def train_instrument(audio_dir: Path, *, name: str, steps: int, seed: int = 0,
                     on_progress: ProgressFn | None = None) -> Path:
    """`covergen train-instrument`: train `timbre-<name>` from a folder of monophonic recordings into the user
    models folder (resumes an interrupted run with the same name). Returns the weights' path."""
    from .timbre.transfer import PREFIX, check_name
    from .training.train_timbre import train_user_instrument

    check_name(name)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    path = train_user_instrument(Path(audio_dir), name=name, steps=steps, seed=seed, on_progress=on_progress)
    registry.forget(PREFIX + name)  # a retrained instrument is read again
    return path
