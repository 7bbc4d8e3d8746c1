"""Cover-song sets for the cover check: music21 corpus tunes, each arranged several ways and rendered.

Why synthetic: we need many songs with known cover relations and a licence we control.
Each work is a fiddle tune from Ryan's Mammoth Collection (public domain, in music21's
corpus) with generated chords, bass and drums. Its versions differ in what a cover changes:
GM instruments, tempo (+/-20 %), key (a few semitones), chord rhythm, accompaniment, bass
and drum patterns, mix levels. They keep what a cover keeps: melody and harmony.

Works are split three ways, never shared between splits:
  * "test":        >= 50 works x 4 versions; the benchmark (benchmarks/bench_coverid.py);
  * "calibration": works x 3 versions; sets the verdict thresholds shipped in the background;
  * "background":  one version per work; the library that z-scores come from.

Renders are cached as 22,050 Hz mono FLAC under data/coverid/ (gitignored), keyed by a hash
of the arrangement, so a rerun only renders what changed. `build_background()` turns the
background and calibration renders into models/coverid-background.npz and registers it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["Work", "Arrangement", "Render", "SPLITS", "data_dir", "select_works", "load_work",
           "arrangements", "arrange", "render_sets", "build_background", "main"]

SAMPLE_RATE = 22050
CONTENT_Q = 96  # quarter notes of music per work: >= 75 beats at any tempo we use
GENERATOR_VERSION = 1
SPLITS = {"test": (60, 4), "calibration": (30, 3), "background": (120, 1)}  # works, versions
_SEED = 20120  # Bertin-Mahieux & Ellis, ISMIR 2012
_METERS = {"2/4", "2/2", "4/4"}  # bar lengths 2 or 4 quarters: chords change every 2 quarters

# GM programs; melody entries carry the median MIDI pitch the tune is moved to (by octaves).
_MELODY = [(73, 77), (40, 74), (56, 67), (65, 67), (66, 60), (57, 55), (71, 65), (0, 69), (11, 72),
           (16, 67), (21, 67), (24, 64), (26, 64), (29, 64), (68, 70), (80, 72), (81, 67), (22, 70),
           (75, 77), (4, 67), (12, 69), (61, 64)]
_ACCOMP = [0, 1, 4, 5, 16, 19, 24, 25, 27, 48, 50, 52, 61, 88, 89, 6]
_BASS = [32, 33, 34, 35, 36, 38, 39, 43, 58]
_ACCOMP_STYLES = ["block", "pulse", "offbeat", "arpeggio", "stride", "strum"]
_BASS_STYLES = ["root", "root_fifth", "walking", "eighths", "octave"]
_DRUM_STYLES = ["rock", "pop", "disco", "jazz", "halftime", "shuffle", "light"]


@dataclass(frozen=True)
class Work:
    """A tune reduced to what the arranger needs. Times in quarter notes from the first downbeat."""

    work_id: str
    title: str
    key_pc: int
    minor: bool
    melody: tuple[tuple[float, float, int], ...]  # (start_q, dur_q, midi pitch)
    chords: tuple[tuple[int, tuple[int, ...]], ...]  # per 2 quarters: (root pc, chord pcs)


@dataclass(frozen=True)
class Arrangement:
    version: int
    transpose_st: int
    tempo_bpm: float
    melody_program: int
    melody_center_midi: int
    accomp_program: int
    accomp_style: str
    bass_program: int
    bass_style: str
    drum_style: str
    chord_every_q: int  # 2: as harmonised; 4: every other chord (a simpler reharmonisation)
    sevenths: bool
    melody_velocity: int
    accomp_velocity: int
    bass_velocity: int
    drum_velocity: int


@dataclass(frozen=True)
class Render:
    split: str
    work_id: str
    version: int
    path: Path
    arrangement: Arrangement


def data_dir() -> Path:
    """Cache folder: $COVERGEN_DATA/coverid or the checkout's data/coverid (gitignored)."""
    base = os.environ.get("COVERGEN_DATA")
    root = Path(base) if base else Path(__file__).resolve().parents[2] / "data"
    return root / "coverid"


# ---------------------------------------------------------------- scores -> works

def load_work(source: str) -> Work | None:
    """Parse one corpus tune; None if it does not suit (meter, chords in the melody, too few notes)."""
    from music21 import corpus, meter

    try:
        score = corpus.parse(source)
    except Exception as err:  # music21's abc reader fails in many ways on odd tunes; skip those tunes
        log.debug("skip %s: %s", source, err)
        return None
    signatures = score.recurse().getElementsByClass(meter.TimeSignature)
    if not signatures or signatures[0].ratioString not in _METERS:
        return None
    bar_q = float(signatures[0].barDuration.quarterLength)
    part = score.parts[0] if score.parts else score
    measures = part.getElementsByClass("Measure")
    pickup_q = float(measures[0].paddingLeft) if len(measures) else 0.0
    try:
        expanded = score.expandRepeats()
    except Exception:  # unbalanced repeat marks: play it as written
        expanded = score
    notes = []
    for n in expanded.flatten().notes:
        if n.isChord or n.quarterLength <= 0:
            continue
        notes.append((float(n.offset) + pickup_q, float(n.quarterLength), int(n.pitch.midi)))
    if len(notes) < 40:
        return None
    notes.sort()
    length_q = max(s + d for s, d, _ in notes)
    looped, shift = [], 0.0
    while shift < CONTENT_Q:
        looped += [(s + shift, d, p) for s, d, p in notes if s + shift < CONTENT_Q]
        shift += np.ceil(length_q / bar_q - 0.01) * bar_q
    melody = tuple((s, min(d, CONTENT_Q - s), p) for s, d, p in looped)
    key = score.analyze("key")
    key_pc, minor = int(key.tonic.pitchClass), key.mode == "minor"
    title = str(score.metadata.title) if score.metadata and score.metadata.title else source
    return Work(work_id=source, title=title, key_pc=key_pc, minor=minor, melody=melody,
                chords=_harmonise(melody, key_pc, minor))


def _harmonise(melody, key_pc: int, minor: bool) -> tuple[tuple[int, tuple[int, ...]], ...]:
    """One diatonic triad per 2 quarters, the one covering most melody time (ties to I, V, IV)."""
    if minor:  # i, III, iv, V (harmonic minor), VI, VII
        degrees = [(0, (0, 3, 7), 0.5), (3, (0, 4, 7), 0.1), (5, (0, 3, 7), 0.3), (7, (0, 4, 7), 0.4),
                   (8, (0, 4, 7), 0.15), (10, (0, 4, 7), 0.1)]
    else:  # I, ii, iii, IV, V, vi
        degrees = [(0, (0, 4, 7), 0.5), (2, (0, 3, 7), 0.1), (4, (0, 3, 7), 0.0), (5, (0, 4, 7), 0.3),
                   (7, (0, 4, 7), 0.4), (9, (0, 3, 7), 0.15)]
    chords = []
    for seg in range(CONTENT_Q // 2):
        lo, hi = 2.0 * seg, 2.0 * seg + 2
        weight = np.zeros(12)
        for s, d, p in melody:
            overlap = min(hi, s + d) - max(lo, s)
            if overlap > 0:
                weight[p % 12] += overlap * (1.5 if lo <= s < lo + 0.25 else 1.0)
        best = max(degrees, key=lambda g: sum(weight[(key_pc + g[0] + i) % 12] for i in g[1])
                   - 0.3 * (weight.sum() - sum(weight[(key_pc + g[0] + i) % 12] for i in g[1])) + g[2])
        root = (key_pc + best[0]) % 12
        chords.append((root, tuple((root + i) % 12 for i in best[1])))
    return tuple(chords)


def select_works() -> dict[str, list[str]]:
    """Corpus sources for each split: a seeded shuffle of suitable tunes, duplicates removed."""
    from music21 import corpus

    sources = sorted(str(p).split("/corpus/")[-1] for p in corpus.getPaths()
                     if "/ryansMammoth/" in str(p))
    random.Random(_SEED).shuffle(sources)
    need = {name: n for name, (n, _) in SPLITS.items()}
    chosen: dict[str, list[str]] = {name: [] for name in SPLITS}
    seen_incipits = set()
    order = list(SPLITS)
    for source in sources:
        if all(len(chosen[s]) >= need[s] for s in order):
            break
        work = load_work(source)
        if work is None:
            continue
        incipit = tuple(np.diff([p for _, _, p in work.melody[:16]]))
        if incipit in seen_incipits:  # the same tune under another name
            continue
        seen_incipits.add(incipit)
        split = next(s for s in order if len(chosen[s]) < need[s])
        chosen[split].append(source)
    return chosen


# ---------------------------------------------------------------- arrangements

def arrangements(work: Work, n_versions: int) -> list[Arrangement]:
    """`n_versions` arrangements of `work`, seeded by its id: no two share instruments or key."""
    rng = random.Random(f"{_SEED}:{work.work_id}")
    base_bpm = rng.uniform(105, 125)
    transposes = rng.sample([-4, -3, -2, -1, 0, 1, 2, 3, 4, 5], n_versions)
    melody = rng.sample(_MELODY, n_versions)
    accomp = rng.sample(_ACCOMP, n_versions)
    bass = rng.sample(_BASS, n_versions)
    accomp_styles = rng.sample(_ACCOMP_STYLES, n_versions)
    bass_styles = [rng.choice(_BASS_STYLES) for _ in range(n_versions)]
    drum_styles = rng.sample(_DRUM_STYLES, n_versions)
    factors = [rng.uniform(0.8, 1.2) for _ in range(n_versions)]
    out = []
    for v in range(n_versions):
        out.append(Arrangement(
            version=v, transpose_st=transposes[v], tempo_bpm=round(base_bpm * factors[v], 2),
            melody_program=melody[v][0], melody_center_midi=melody[v][1] + rng.choice([0, 0, 0, 12, -12]),
            accomp_program=accomp[v], accomp_style=accomp_styles[v], bass_program=bass[v],
            bass_style=bass_styles[v], drum_style=drum_styles[v], chord_every_q=rng.choice([2, 2, 4]),
            sevenths=rng.random() < 0.3, melody_velocity=rng.randint(92, 115),
            accomp_velocity=rng.randint(50, 80), bass_velocity=rng.randint(70, 95),
            drum_velocity=rng.randint(65, 100)))
    return out


def _voice(pcs: tuple[int, ...], low: int) -> list[int]:
    """Close-position voicing of pitch classes, lowest note >= `low`."""
    root = pcs[0]
    base = low + (root - low) % 12
    return [base + (pc - root) % 12 for pc in pcs]


def arrange(work: Work, arr: Arrangement):
    """The pretty_midi.PrettyMIDI of one version."""
    import pretty_midi

    rng = random.Random(f"{_SEED}:{work.work_id}:{arr.version}:humanise")
    sec_per_q = 60.0 / arr.tempo_bpm
    midi = pretty_midi.PrettyMIDI(initial_tempo=arr.tempo_bpm)

    def note(inst, pitch, start_q, dur_q, velocity):
        vel = int(np.clip(velocity + rng.randint(-6, 6), 1, 127))
        inst.notes.append(pretty_midi.Note(velocity=vel, pitch=int(pitch), start=start_q * sec_per_q,
                                           end=(start_q + dur_q) * sec_per_q))

    # melody, transposed then moved by octaves to suit the instrument
    mel = pretty_midi.Instrument(program=arr.melody_program, name="melody")
    pitches = np.array([p for _, _, p in work.melody]) + arr.transpose_st
    octave = 12 * round((arr.melody_center_midi - float(np.median(pitches))) / 12)
    for (s, d, _), p in zip(work.melody, pitches):
        note(mel, p + octave, s, d * 0.95, arr.melody_velocity)

    # chords: as harmonised every 2 quarters, or every 4 (keeping the chord on the downbeat)
    chords = []
    for seg in range(0, CONTENT_Q // 2, arr.chord_every_q // 2):
        root, pcs = work.chords[seg]
        root, pcs = (root + arr.transpose_st) % 12, tuple((pc + arr.transpose_st) % 12 for pc in pcs)
        if arr.sevenths:
            scale = [(work.key_pc + arr.transpose_st + i) % 12 for i in
                     ((0, 2, 3, 5, 7, 8, 10) if work.minor else (0, 2, 4, 5, 7, 9, 11))]
            seventh = next(((root + i) % 12 for i in (10, 11) if (root + i) % 12 in scale), None)
            if seventh is not None:
                pcs = pcs + (seventh,)
        chords.append((2.0 * seg, float(arr.chord_every_q), root, pcs))

    acc = pretty_midi.Instrument(program=arr.accomp_program, name="accompaniment")
    bass = pretty_midi.Instrument(program=arr.bass_program, name="bass")
    for start_q, dur_q, root, pcs in chords:
        voicing = _voice(pcs, 53)
        style = arr.accomp_style
        if style == "block":
            for p in voicing:
                note(acc, p, start_q, dur_q * 0.98, arr.accomp_velocity)
        elif style == "pulse":
            for q in np.arange(0, dur_q, 1.0):
                for p in voicing:
                    note(acc, p, start_q + q, 0.85, arr.accomp_velocity)
        elif style == "offbeat":
            for q in np.arange(0.5, dur_q, 1.0):
                for p in voicing:
                    note(acc, p, start_q + q, 0.4, arr.accomp_velocity)
        elif style == "arpeggio":
            seq = voicing + [voicing[0] + 12]
            for i, q in enumerate(np.arange(0, dur_q, 0.5)):
                note(acc, seq[i % len(seq)], start_q + q, 0.5, arr.accomp_velocity)
        elif style == "stride":
            for q in np.arange(0, dur_q, 1.0):
                if int(q) % 2 == 0:
                    note(acc, voicing[0] - 12, start_q + q, 0.9, arr.accomp_velocity)
                else:
                    for p in voicing:
                        note(acc, p, start_q + q, 0.6, arr.accomp_velocity)
        elif style == "strum":
            for q, d in ((0, 1.0), (1.0, 0.5), (1.5, 1.0), (2.5, 0.5), (3.0, 1.0)):
                if q < dur_q:
                    for i, p in enumerate(voicing):
                        note(acc, p, start_q + q + 0.015 * i, min(d, dur_q - q), arr.accomp_velocity)
        # bass
        low = 36 + (root - 36) % 12
        third = low + (pcs[1] - root) % 12
        fifth = low + 7
        bstyle = arr.bass_style
        if bstyle == "root":
            note(bass, low, start_q, dur_q * 0.95, arr.bass_velocity)
        elif bstyle == "root_fifth":
            for i, q in enumerate(np.arange(0, dur_q, 1.0)):
                note(bass, low if i % 2 == 0 else fifth - 12 * (fifth > 50), start_q + q, 0.9, arr.bass_velocity)
        elif bstyle == "walking":
            walk = [low, third, fifth, low + 12 - 1]
            for i, q in enumerate(np.arange(0, dur_q, 1.0)):
                note(bass, walk[i % 4], start_q + q, 0.9, arr.bass_velocity)
        elif bstyle == "eighths":
            for q in np.arange(0, dur_q, 0.5):
                note(bass, low, start_q + q, 0.45, arr.bass_velocity)
        elif bstyle == "octave":
            for i, q in enumerate(np.arange(0, dur_q, 0.5)):
                note(bass, low + 12 * (i % 2), start_q + q, 0.45, arr.bass_velocity)

    drums = pretty_midi.Instrument(program=0, is_drum=True, name="drums")
    pattern = _drum_pattern(arr.drum_style)
    for bar_q in range(0, CONTENT_Q, 4):
        if bar_q % 32 == 0:
            note(drums, 49, bar_q, 1.0, arr.drum_velocity)
        for drum, q, vel_scale in pattern:
            note(drums, drum, bar_q + q, 0.2, int(arr.drum_velocity * vel_scale))
    midi.instruments += [mel, acc, bass, drums]
    return midi


def _drum_pattern(style: str) -> list[tuple[int, float, float]]:
    """(GM drum note, onset in quarters within a 4-quarter bar, velocity scale)."""
    eighths = [i * 0.5 for i in range(8)]
    if style == "rock":
        return [(36, 0, 1), (36, 2, 1), (38, 1, 1), (38, 3, 1)] + [(42, q, 0.7) for q in eighths]
    if style == "pop":
        return [(36, 0, 1), (36, 1.5, 0.9), (36, 2, 1), (38, 1, 1), (38, 3, 1)] + [(42, q, 0.6) for q in eighths]
    if style == "disco":
        return [(36, q, 1) for q in range(4)] + [(39, 1, 0.9), (39, 3, 0.9)] + \
               [(46, q + 0.5, 0.7) for q in range(4)]
    if style == "jazz":
        return [(51, q, 0.8) for q in (0, 1, 5 / 3, 2, 3, 11 / 3)] + [(44, 1, 0.7), (44, 3, 0.7), (36, 0, 0.5)]
    if style == "halftime":
        return [(36, 0, 1), (36, 2.5, 0.8), (38, 2, 1)] + [(42, q, 0.7) for q in range(4)]
    if style == "shuffle":
        return [(36, 0, 1), (36, 2, 1), (38, 1, 1), (38, 3, 1)] + \
               [(42, q + off, 0.6) for q in range(4) for off in (0, 2 / 3)]
    if style == "light":
        return [(70, q, 0.8) for q in eighths] + [(37, 1, 0.8), (37, 3, 0.8)]
    raise ValueError(f"unknown drum style {style!r}")


# ---------------------------------------------------------------- rendering

def _arrangement_hash(work_id: str, arr: Arrangement) -> str:
    blob = json.dumps({"work": work_id, "arr": asdict(arr), "gen": GENERATOR_VERSION,
                       "content_q": CONTENT_Q, "sr": SAMPLE_RATE}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _slug(work_id: str) -> str:
    return Path(work_id).stem


def render_sets(root: Path | None = None, *, splits: tuple[str, ...] = tuple(SPLITS),
                on_progress: Callable[[float], None] | None = None) -> dict[str, list[Render]]:
    """Render (or reuse cached renders of) every version of every work in `splits`.

    Layout: root/renders/<split>/<work>__v<k>.flac and root/manifest.json. Renders sequentially:
    FluidSynth takes one core and the machine is shared.
    """
    from ..audio import save
    from .render import render_midi

    root = Path(root) if root is not None else data_dir()
    manifest_path = root / "manifest.json"
    works = cached_selection(root)
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    todo = [(split, source, arr) for split in splits for source in works[split]
            for arr in _arrangements_of(root, source, SPLITS[split][1])]
    out: dict[str, list[Render]] = {s: [] for s in splits}
    loaded: dict[str, Work] = {}
    for i, (split, source, arr) in enumerate(todo):
        folder = root / "renders" / split
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{_slug(source)}__v{arr.version}.flac"
        key = _arrangement_hash(source, arr)
        rel = str(path.relative_to(root))
        if not (path.is_file() and manifest.get(rel, {}).get("hash") == key):
            if source not in loaded:
                loaded[source] = load_work(source)
            midi = arrange(loaded[source], arr)
            y = render_midi(midi, sample_rate=SAMPLE_RATE).mean(axis=0, keepdims=True)
            y *= 10 ** (-1 / 20) / max(float(np.max(np.abs(y))), 1e-9)
            save(path, y.astype(np.float32), sample_rate=SAMPLE_RATE, subtype="PCM_16")
            manifest[rel] = {"hash": key, "split": split, "work": source, "arrangement": asdict(arr)}
            if i % 10 == 0:
                _write_json(manifest_path, manifest)
        out[split].append(Render(split=split, work_id=source, version=arr.version, path=path, arrangement=arr))
        if on_progress:
            on_progress((i + 1) / len(todo))
    _write_json(manifest_path, manifest)
    return out


def cached_selection(root: Path) -> dict[str, list[str]]:
    """select_works() parses hundreds of tunes; keep its answer beside the renders."""
    path = root / "works.json"
    key = {"gen": GENERATOR_VERSION, "splits": {k: list(v) for k, v in SPLITS.items()}, "seed": _SEED}
    if path.is_file():
        cached = json.loads(path.read_text())
        if cached.get("key") == key:
            return cached["works"]
    works = select_works()
    root.mkdir(parents=True, exist_ok=True)
    _write_json(path, {"key": key, "works": works})
    return works


def _arrangements_of(root: Path, source: str, n_versions: int) -> list[Arrangement]:
    # arrangements() needs only the work id; no need to parse the score again
    stub = Work(work_id=source, title="", key_pc=0, minor=False, melody=(), chords=())
    return arrangements(stub, n_versions)


def _write_json(path: Path, obj) -> None:
    from ..audio import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1, sort_keys=True))


# ---------------------------------------------------------------- background model

def real_covers_dir() -> Path:
    """The real cover groups (one folder per work): $COVERGEN_COVERS or ../shared/data/covers."""
    return Path(os.environ.get("COVERGEN_COVERS") or Path(__file__).resolve().parents[3] / "shared" / "data" / "covers")


def real_cover_index(root: Path | None = None):
    """(index, work labels) of the real cover groups, features cached in `root` (never beside the
    recordings, which must not be copied); (None, []) where the folder is absent."""
    from .. import coverid

    covers = real_covers_dir()
    if not covers.is_dir():
        log.warning("no real cover groups at %s: calibrating on renders only", covers)
        return None, []
    root = Path(root) if root is not None else data_dir()
    root.mkdir(parents=True, exist_ok=True)
    index = coverid.load_index(coverid.build_index(covers, root / "real-covers-index.npz"))
    return index, [p.parent.name for p in index.paths]


def build_background(root: Path | None = None, *, register: bool = True, reuse: Path | None = None,
                     on_progress: Callable[[float], None] | None = None) -> Path:
    """Write models/coverid-background.npz: background features + thresholds set on calibration works.

    The background songs are rendered and indexed, or with `reuse` taken from an existing
    background file (its beat chroma and 2DFTM vectors do not depend on the Qmax settings, so
    a change of those only needs new thresholds). Thresholds: see `calibrate`, on the rendered
    calibration works and the real cover groups together.
    """
    from .. import coverid, registry

    root = Path(root) if root is not None else data_dir()
    sets = render_sets(root, splits=("calibration",) if reuse else ("background", "calibration"),
                       on_progress=(lambda f: on_progress(0.3 * f)) if on_progress else None)
    if reuse is not None:
        old = np.load(reuse, allow_pickle=False)
        lengths = old["chroma_lengths"]
        background = coverid.Background(
            names=[str(n) for n in old["names"]], features=old["features"].astype(np.float32),
            chromas=np.split(old["chroma"].astype(np.float32), np.cumsum(lengths)[:-1], axis=1), thresholds={})
    else:
        bg_index = coverid.load_index(coverid.build_index(
            root / "renders" / "background",
            on_progress=(lambda f: on_progress(0.3 + 0.3 * f)) if on_progress else None))
        if bg_index.errors:
            raise RuntimeError(f"renders without features: {bg_index.errors}")
        background = coverid.Background(names=[p.name for p in bg_index.paths], features=bg_index.features,
                                        chromas=bg_index.chromas, thresholds={})
    cal_index = coverid.load_index(coverid.build_index(
        root / "renders" / "calibration", on_progress=(lambda f: on_progress(0.6 + 0.2 * f)) if on_progress else None))
    if cal_index.errors:
        raise RuntimeError(f"renders without features: {cal_index.errors}")
    work_of = {r.path.name: r.work_id for r in sets["calibration"]}
    labelled = {"rendered": (cal_index, [work_of[p.name] for p in cal_index.paths])}
    real_index, real_labels = real_cover_index(root)
    if real_index is not None:
        labelled["real"] = (real_index, real_labels)
    calibration = calibrate(labelled, background)
    background = coverid.Background(names=background.names, features=background.features,
                                    chromas=background.chromas,
                                    thresholds={m: c["threshold"] for m, c in calibration.items()})
    dest = registry.models_dir() / "coverid-background.npz"
    coverid.save_background(background, dest)
    _write_json(root / "calibration.json", calibration)
    card = registry.models_dir() / "coverid-background.md"
    card.write_text(_card(background, calibration))
    if register:
        sources = " and ".join(f"{len(set(labels))} {name} works" for name, (_, labels) in labelled.items())
        registry.register(
            name="coverid-background", file=dest, kind="coverid-background",
            source=(f"covergen.training.cover_songs.build_background: {len(background.names)} FluidSynth renders "
                    f"of Ryan's Mammoth tunes (music21 corpus), seed {_SEED}; thresholds from {sources}"),
            license="features: CC0; tunes public domain (music21 corpus, BSD); FluidR3 GM SoundFont (MIT)",
            card=card.name)
    if on_progress:
        on_progress(1.0)
    return dest


def pair_z(index, labels: list[str], background, method: str) -> tuple[np.ndarray, np.ndarray]:
    """z of every ordered (candidate, original) pair of a labelled set: (cover pairs, other pairs).
    Songs too short for the method (2dftm: under 75 beats) are left out."""
    from .. import coverid

    usable = [i for i in range(len(labels)) if method == "qmax" or np.linalg.norm(index.features[i]) > 0]
    pos, neg = [], []
    for i in usable:
        cand = index.entry(i, method)
        bg = coverid._background_scores(cand, background, method)
        mu, sd = float(np.mean(bg)), float(np.std(bg)) + 1e-9
        for j in usable:
            if i != j:
                z = (coverid._pair_score(index.entry(j, method), cand, method) - mu) / sd
                (pos if labels[i] == labels[j] else neg).append(z)
    return np.array(pos), np.array(neg)


def calibrate(labelled: dict[str, tuple], background) -> dict[str, dict]:
    """Per method: the z threshold with the best balanced accuracy, each labelled set (rendered,
    real) weighing the same, and the true- and false-positive rates it gives on each set."""
    from .. import coverid

    out = {}
    for method in coverid.METHODS:
        zs = {name: pair_z(index, labels, background, method) for name, (index, labels) in labelled.items()}
        candidates = np.unique(np.concatenate([np.concatenate(pn) for pn in zs.values()]))
        mids = (candidates[:-1] + candidates[1:]) / 2
        bal = np.mean([[(np.mean(pos >= t) + np.mean(neg < t)) / 2 for t in mids] for pos, neg in zs.values()], axis=0)
        best = int(np.argmax(bal))
        # among near-ties take the middle of the plateau: less sensitive to the sample
        plateau = np.flatnonzero(bal >= bal[best] - 1e-9)
        t = round(float(mids[plateau[len(plateau) // 2]]), 3)
        out[method] = {"threshold": t, "balanced_accuracy": float(bal[best]), "sets": {
            name: {"tpr": float(np.mean(pos >= t)), "fpr": float(np.mean(neg >= t)), "n_cover_pairs": int(len(pos)),
                   "n_other_pairs": int(len(neg)), "z_cover_median": float(np.median(pos)),
                   "z_other_median": float(np.median(neg)),
                   "works": len(set(labelled[name][1]))} for name, (pos, neg) in zs.items()}}
    return out


def _card(background, calibration: dict) -> str:
    sets = next(iter(calibration.values()))["sets"]
    lines = [
        "# coverid-background",
        "",
        "Reference library for `covergen check`: the similarity of a candidate to the original is",
        "turned into a z-score against the candidate's similarities to these songs, and the verdict",
        "compares that z with a threshold set on separate labelled works.",
        "",
        f"- **Contents:** {len(background.names)} songs; per song the 2D Fourier transform magnitude",
        "  feature (Bertin-Mahieux & Ellis 2012) and the beat-synchronous chroma (for Qmax);",
        "  feature settings in `config` (the loader refuses a file made with other settings).",
        "- **Songs:** Ryan's Mammoth Collection fiddle tunes (public domain, music21 corpus) with generated",
        "  chords, bass and drums, rendered with FluidSynth at 22,050 Hz mono, one arrangement each.",
        "  None of them is a benchmark test work or a calibration work.",
        "- **Calibration:** " + "; ".join(f"{name}: {c['works']} works" for name, c in sets.items()) +
        " (rendered: other Ryan's Mammoth works x 3 versions; real: the cover groups of",
        "  ../shared/data/covers, features only, no audio shipped). Every version is a candidate against",
        "  every other; the threshold maximises balanced accuracy with each set weighing the same.",
        "",
        "| method | threshold z | set | TPR | FPR (non-cover pairs reaching it) | cover pairs | other pairs |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for method, c in calibration.items():
        for name, r in c["sets"].items():
            lines.append(f"| {method} | {c['threshold']:.2f} | {name} | {r['tpr']:.3f} | {r['fpr']:.3f} | "
                         f"{r['n_cover_pairs']} | {r['n_other_pairs']} |")
    lines += [
        "",
        "These rates are on the data that set the threshold; `make bench` (bench/coverid.md) gives them",
        "on held-out rendered works.",
        "",
        "**Limits.** The background songs are synthetic renders of one folk repertoire, and the real",
        "calibration set is small (7 works, 19 recordings: anthems, carols, Clair de lune), so treat z as a",
        "ranking signal and the verdict as a strong hint. Both methods rely on the beat tracker: a tempo",
        "octave error in one version costs Qmax (half-tempo grids helped the real set but hurt the renders). Rebuild with",
        "`python -m covergen.training.cover_songs` (renders are cached under data/coverid/).",
        "",
        "**Licence.** Features derived from public-domain tunes and the MIT-licensed FluidR3 GM SoundFont.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    path = build_background()
    log.info("wrote %s", path)


if __name__ == "__main__":
    main()
