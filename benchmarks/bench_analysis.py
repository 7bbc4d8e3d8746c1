"""Lead-sheet analysis (issue #18): beats, downbeats, meter, key, chords and melody, scored with mir_eval.

(a) rendered songs with exact ground truth (`covergen.training.leadsheet_songs`), held-out seeds
    1000-1015 (3/4, swing, tempo drift, no-drum arrangements, several keys; never used for tuning):
    chord WCSR (root, majmin, sevenths; `mir_eval.chord.evaluate` on `LeadSheet.chord_segments()`),
    beat and downbeat F-measure (70 ms, `mir_eval.beat.f_measure`, no 5 s trim), meter accuracy,
    key (`mir_eval.key.weighted_score` and exact), melody note F (`mir_eval.transcription`, onsets
    only, 50 ms / 50 cents). The analysis gets the mixture and, for the melody, the true lead stem
    (separation is measured in bench_separation). Floors: majmin >= 0.85, beat F >= 0.90,
    downbeat F >= 0.75.
(b) real recordings without chord labels (../shared/data multitracks, songs, real): refusals (music
    must never be refused; speech, white noise and a held sine tone must be), tempo, meter, key,
    beat agreement with librosa's tracker (same and any metrical level), beat consistency under a
    10 % Rubber Band time-stretch, on the multitracks the share of beats on a drum-stem onset and
    chord consistency (the mixture's chords vs the chords of drums + bass + other).
(c) speed: a 3-minute rendered song, analysis time / duration (floor <= 0.1), separation not counted.

A "baseline" row (librosa beat_track + chroma templates + Krumhansl key + yin notes, written here
and only here) shows what the naive approach scores on the same songs.

`python -m benchmarks.bench_analysis --dev` scores the dev seeds 0-15 only (for tuning) and prints a
compact table; `--seeds`, `--systems`, `--chords` change what is scored. `make bench` (or
`python -m benchmarks.run analysis`) runs (a)-(c) into bench/analysis.md and bench/analysis.json.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from covergen.errors import AudioContentError
from covergen.leadsheet import QUALITIES, LeadSheet, Note, chord_label

HELD_OUT = range(1000, 1016)
DEV = range(0, 16)
FLOORS = {"majmin": 0.85, "beat_f": 0.90, "downbeat_f": 0.75}
RTF_FLOOR = 0.1
SAMPLE_RATE = 44100
METRICS = ("root", "majmin", "sevenths", "beat_f", "downbeat_f", "meter_ok", "key_weighted", "key_exact",
           "melody_f", "tempo_err")
CATEGORIES = ("4/4", "3/4", "straight", "swing", "steady", "drift", "band", "no-drums", "piano", "strings",
              "major", "minor", "pickup", "FluidR3", "MuseScore")


# -- scoring ------------------------------------------------------------------------------------
def _segments(sheet: LeadSheet) -> tuple[np.ndarray, list[str]]:
    segs = sheet.chord_segments()
    return np.array([[a, b] for a, b, _ in segs], dtype=float), [label for _, _, label in segs]


def _notes(notes: list[Note]) -> tuple[np.ndarray, np.ndarray]:
    if not notes:
        return np.zeros((0, 2)), np.zeros(0)
    intervals = np.array([[n.onset_s, max(n.end_s, n.onset_s + 0.01)] for n in notes], dtype=float)
    return intervals, 440.0 * 2.0 ** ((np.array([n.pitch for n in notes], dtype=float) - 69) / 12)


def score(ref: LeadSheet, est: LeadSheet) -> dict[str, float]:
    """mir_eval scores of `est` against the ground truth `ref` (see the module docstring)."""
    import mir_eval

    ref_int, ref_lab = _segments(ref)
    est_int, est_lab = _segments(est)
    chords = mir_eval.chord.evaluate(ref_int, ref_lab, est_int, est_lab)
    ref_beats, est_beats = np.asarray(ref.beats_s, float), np.asarray(est.beats_s, float)
    ref_down = ref_beats[[d for d in ref.downbeats if d < ref_beats.size]]
    est_down = est_beats[[d for d in est.downbeats if d < est_beats.size]] if est_beats.size else est_beats
    out = {"root": chords["root"], "majmin": chords["majmin"], "sevenths": chords["sevenths"],
           "beat_f": mir_eval.beat.f_measure(ref_beats, est_beats, f_measure_threshold=0.07),
           "downbeat_f": mir_eval.beat.f_measure(ref_down, est_down, f_measure_threshold=0.07),
           "meter_ok": float(est.beats_per_bar == ref.beats_per_bar),
           "key_weighted": mir_eval.key.weighted_score(ref.key, est.key),
           "key_exact": float(ref.key == est.key or mir_eval.key.weighted_score(ref.key, est.key) == 1.0),
           "tempo_err": abs(est.tempo_bpm / ref.tempo_bpm - 1.0) if est.tempo_bpm else 1.0}
    if ref.melody and est.melody:
        r_int, r_hz = _notes(ref.melody)
        e_int, e_hz = _notes(est.melody)
        out["melody_f"] = mir_eval.transcription.precision_recall_f1_overlap(
            r_int, r_hz, e_int, e_hz, onset_tolerance=0.05, pitch_tolerance=50.0, offset_ratio=None)[2]
    else:
        out["melody_f"] = 0.0 if ref.melody else float("nan")
    return {k: float(v) for k, v in out.items()}


# -- systems ------------------------------------------------------------------------------------
_KRUMHANSL_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_KRUMHANSL_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
_BASELINE_QUALITIES = ("maj", "min", "7", "maj7", "min7", "dim", "sus4")


def baseline_analyse(y: np.ndarray, *, sample_rate: int, vocals: np.ndarray | None = None) -> LeadSheet:
    """The naive lead sheet, for comparison only: librosa.beat.beat_track, 4/4 with the downbeat on
    the beat phase with the most low-frequency onset energy, beat-synchronous chroma_cqt matched to
    binary chord templates (N below an energy floor), Krumhansl-Schmuckler key, melody from yin on
    the lead stem (semitone runs >= 60 ms)."""
    import librosa

    sr = 22050
    mono = librosa.resample(np.asarray(y, np.float32).reshape(-1, np.shape(y)[-1]).mean(0), orig_sr=sample_rate,
                            target_sr=sr)
    hop = 512
    env = librosa.onset.onset_strength(y=mono, sr=sr, hop_length=hop)
    _, beat_frames = librosa.beat.beat_track(onset_envelope=env, sr=sr, hop_length=hop)
    beats_s = librosa.frames_to_time(beat_frames, sr=sr, hop_length=hop)
    if beats_s.size < 2:
        beats_s = np.arange(0.5, mono.size / sr, 0.5)
    harmonic = librosa.effects.harmonic(mono)
    chroma = librosa.feature.chroma_cqt(y=harmonic, sr=sr, hop_length=hop)
    bounds = np.concatenate([beat_frames, [chroma.shape[1]]]) if beat_frames.size >= 2 else \
        librosa.time_to_frames(np.append(beats_s, mono.size / sr), sr=sr, hop_length=hop)
    sync = np.stack([np.median(chroma[:, a:max(b, a + 1)], axis=1) for a, b in zip(bounds[:-1], bounds[1:])], 1)
    labels, templates = [], []
    for quality in _BASELINE_QUALITIES:
        for root in range(12):
            t = np.zeros(12)
            t[[(root + i) % 12 for i in QUALITIES[quality]]] = 1
            templates.append(t / np.linalg.norm(t))
            labels.append(chord_label(root, quality))
    templates = np.array(templates)
    rms = librosa.feature.rms(y=mono, hop_length=hop)[0]
    floor = 0.05 * np.max(rms) if rms.size else 0.0
    chords = []
    for i in range(sync.shape[1]):
        frame = min(int(bounds[i]), rms.size - 1)
        v = sync[:, i]
        if rms[frame] < floor or not np.any(v):
            chords.append("N")
            continue
        chords.append(labels[int(np.argmax(templates @ (v / np.linalg.norm(v))))])
    chords = chords[:beats_s.size] + ["N"] * (beats_s.size - len(chords))
    low = librosa.onset.onset_strength(y=mono, sr=sr, hop_length=hop, fmax=200, n_mels=32)
    strength = low[np.minimum(beat_frames, low.size - 1)] if beat_frames.size else np.zeros(beats_s.size)
    phase = int(np.argmax([strength[p::4].mean() if strength[p::4].size else 0 for p in range(4)]))
    mean = chroma.mean(axis=1)
    best, key = -2.0, "C major"
    for tonic in range(12):
        for profile, mode in ((_KRUMHANSL_MAJOR, "major"), (_KRUMHANSL_MINOR, "minor")):
            r = float(np.corrcoef(np.roll(profile, tonic), mean)[0, 1])
            if r > best:
                best, key = r, f"{chord_label(tonic, 'maj').split(':')[0]} {mode}"
    melody = _yin_notes(vocals, sample_rate) if vocals is not None else []
    return LeadSheet(beats_s=[float(b) for b in beats_s], downbeats=list(range(phase, beats_s.size, 4)),
                     beats_per_bar=4, chords=chords, key=key, melody=melody, duration_s=mono.size / sr,
                     source={"system": "baseline"})


def _yin_notes(vocals: np.ndarray, sample_rate: int) -> list[Note]:
    import librosa

    sr, hop = 22050, 256
    mono = librosa.resample(np.asarray(vocals, np.float32).reshape(-1, np.shape(vocals)[-1]).mean(0),
                            orig_sr=sample_rate, target_sr=sr)
    f0 = librosa.yin(mono, fmin=65, fmax=1600, sr=sr, frame_length=2048, hop_length=hop)
    rms = librosa.feature.rms(y=mono, frame_length=2048, hop_length=hop)[0][:f0.size]
    voiced = rms > 0.1 * np.max(rms) if rms.size else np.zeros(f0.size, bool)
    midi = np.where(voiced, np.round(librosa.hz_to_midi(f0[:voiced.size])), 0)
    notes, start = [], 0
    for i in range(1, midi.size + 1):
        if i == midi.size or midi[i] != midi[start]:
            if midi[start] > 0 and (i - start) * hop / sr >= 0.06:
                notes.append(Note(start * hop / sr, (i - start) * hop / sr, int(midi[start]), 80))
            start = i
    return notes


def oracle_analyse(ref: LeadSheet) -> Callable[..., LeadSheet]:
    """A system that returns the ground truth: checks that the scoring gives 1.0."""
    return lambda y, *, sample_rate, vocals=None: LeadSheet.from_json(ref.to_json())


def covergen_analyse(**kwargs) -> Callable[..., LeadSheet] | None:
    try:
        from covergen.analysis import analyse
    except ImportError:
        return None
    return lambda y, *, sample_rate, vocals=None: analyse(y, sample_rate=sample_rate, vocals=vocals, **kwargs)


def _systems(names: list[str], **analyse_kwargs) -> dict[str, Callable | None]:
    out: dict[str, Callable | None] = {}
    for name in names:
        if name == "analyse":
            out[name] = covergen_analyse(**analyse_kwargs)
            if out[name] is None:
                print("[bench analysis] covergen.analysis.analyse is not importable: skipped", flush=True)
        elif name == "baseline":
            out[name] = baseline_analyse
        elif name == "oracle":
            out[name] = None  # built per song from its ground truth
        else:
            raise SystemExit(f"unknown system {name!r}; use analyse, baseline, oracle")
    return out


# -- (a) rendered songs -------------------------------------------------------------------------
def score_rendered(seeds, systems: dict[str, Callable | None], *, with_lead: bool = True,
                   verbose: bool = True) -> list[dict]:
    """One row per (song, system): categories, scores, seconds."""
    from covergen.training import leadsheet_songs

    rows = []
    for seed in seeds:
        t0 = time.perf_counter()
        rendered = leadsheet_songs.song(seed, with_lead=True)
        render_s = time.perf_counter() - t0
        ref = rendered.leadsheet
        for name, system in systems.items():
            if name == "oracle":
                system = oracle_analyse(ref)
            if system is None:
                continue
            t0 = time.perf_counter()
            error = None
            try:
                est = system(rendered.audio, sample_rate=rendered.sample_rate,
                             vocals=rendered.lead if with_lead else None)
                scores = score(ref, est)
                if not with_lead:
                    scores["melody_f"] = float("nan")  # the melody is measured from the lead stem only
            except AudioContentError as err:  # a refusal of music scores zero everywhere
                est, error = None, str(err)
                scores = {m: (1.0 if m == "tempo_err" else 0.0) for m in METRICS}
            seconds = time.perf_counter() - t0
            row = {"seed": seed, "system": name, "categories": ref.source["categories"], "key": ref.key,
                   "tempo_bpm": round(ref.tempo_bpm, 1), "swing_ratio": ref.swing_ratio,
                   "est": None if est is None else {"key": est.key, "beats_per_bar": est.beats_per_bar,
                                                    "tempo_bpm": round(est.tempo_bpm, 1),
                                                    "swing_ratio": est.swing_ratio},
                   "refused": error, "seconds": round(seconds, 2), "render_s": round(render_s, 2), **scores}
            rows.append(row)
            if verbose:
                print(_row_line(row), flush=True)
    return rows


def _fmt(v) -> str:
    return "  -  " if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:5.2f}"


def _row_line(row: dict) -> str:
    cats = ",".join(c for c in row["categories"] if c not in ("band", "straight", "steady", "major", "4/4"))
    est = row["est"] or {}
    return (f"{row['seed']:5d} {row['system']:<8} {cats:<34.34} " + " ".join(_fmt(row[m]) for m in METRICS[:9])
            + f" {row['tempo_err'] * 100:5.1f}% {est.get('beats_per_bar', '-')}/{row['categories'][0][0]} "
            + f"{str(est.get('key', 'REFUSED')):<9.9}|{row['key']:<9.9} {row['seconds']:5.1f}s")


_HEADER = (f"{'seed':>5} {'system':<8} {'categories':<34} " + " ".join(f"{m[:5]:>5}" for m in
           ("root", "mjmn", "7ths", "beatF", "dbF", "meter", "keyW", "keyEx", "melF"))
           + "  tempo est/true key est|true")


def summarise(rows: list[dict]) -> dict:
    """system -> {"all": {metric: {mean, median}}, category: {...}, "n": ...}."""
    out: dict[str, dict] = {}
    for system in dict.fromkeys(r["system"] for r in rows):
        mine = [r for r in rows if r["system"] == system]
        groups = {"all": mine} | {c: [r for r in mine if c in r["categories"]] for c in CATEGORIES}
        out[system] = {}
        for group, members in groups.items():
            if not members:
                continue
            stats = {"n": len(members)}
            for m in METRICS:
                values = np.array([r[m] for r in members], dtype=float)
                values = values[~np.isnan(values)]
                stats[m] = {"mean": float(values.mean()) if values.size else float("nan"),
                            "median": float(np.median(values)) if values.size else float("nan")}
            out[system][group] = stats
    return out


def _print_summary(summary: dict) -> None:
    print(f"\n{'mean':>5} {'system':<8} {'group (n)':<34} " + _HEADER.split("categories", 1)[1].strip())
    for system, groups in summary.items():
        for group, stats in groups.items():
            print(f"{'':>5} {system:<8} {group + ' (' + str(stats['n']) + ')':<34} "
                  + " ".join(_fmt(stats[m]["mean"]) for m in METRICS[:9])
                  + f" {stats['tempo_err']['mean'] * 100:5.1f}%")
    for system, groups in summary.items():
        a = groups["all"]
        verdict = ", ".join(f"{m} {a[m]['mean']:.3f} {'>=' if a[m]['mean'] >= f else '<'} {f}"
                            for m, f in FLOORS.items())
        print(f"floors ({system}, mean over all): {verdict}")


def _markdown_rendered(rows: list[dict], summary: dict, *, with_lead: bool = True) -> str:
    inputs = ("the mixture and the true lead stem for the melody" if with_lead else
              "the mixture only (melody not measured)")
    lines = ["### (a) Rendered songs, held-out seeds 1000-1015 (never used for tuning)", "",
             "Ground truth is exact (the rendered beat times after drift and jitter, the chords per beat, the "
             f"lead's notes). The analysis gets {inputs}. "
             f"Floors: majmin >= {FLOORS['majmin']}, beat F >= {FLOORS['beat_f']}, downbeat F >= "
             f"{FLOORS['downbeat_f']}. The baseline is librosa beat_track + chroma templates (for comparison).", "",
             "| system | songs | root | majmin | sevenths | beat F | downbeat F | meter | key (weighted) | key exact "
             "| melody F | tempo err | floors |", "|" + "---|" * 13]
    for system, groups in summary.items():
        a = groups["all"]
        ok = all(a[m]["mean"] >= f for m, f in FLOORS.items())
        lines.append(f"| {system} | {a['n']} | " + " | ".join(f"{a[m]['mean']:.3f}" for m in METRICS[:9])
                     + f" | {100 * a['tempo_err']['mean']:.1f}% | {'met' if ok else 'NOT met'} |")
    lines += ["", "Mean (median) per category:", "",
              "| system | category | n | majmin | sevenths | beat F | downbeat F | meter | key exact | melody F |",
              "|" + "---|" * 10]
    for system, groups in summary.items():
        for group, s in groups.items():
            cells = " | ".join(f"{s[m]['mean']:.2f} ({s[m]['median']:.2f})" for m in
                               ("majmin", "sevenths", "beat_f", "downbeat_f", "meter_ok", "key_exact", "melody_f"))
            lines.append(f"| {system} | {group} | {s['n']} | {cells} |")
    lines += ["", "Per song:", "", "| seed | system | categories | majmin | sevenths | beat F | downbeat F | meter "
              "est/true | key est / true | melody F | s |", "|" + "---|" * 11]
    for r in rows:
        est = r["est"] or {}
        lines.append(f"| {r['seed']} | {r['system']} | {' '.join(r['categories'])} | {r['majmin']:.2f} | "
                     f"{r['sevenths']:.2f} | {r['beat_f']:.2f} | {r['downbeat_f']:.2f} | "
                     f"{est.get('beats_per_bar', '-')}/{r['categories'][0][0]} | {est.get('key', 'refused')} / "
                     f"{r['key']} | {_fmt(r['melody_f']).strip()} | {r['seconds']} |")
    return "\n".join(lines) + "\n"


# -- (b) real recordings ------------------------------------------------------------------------
def _real_files() -> list[tuple[str, Path, str, Path | None]]:
    """(name, path, kind: music | non-music | either, multitrack folder or None)."""
    from .common import SHARED

    files: list[tuple[str, Path, str, Path | None]] = []
    seen: set[str] = set()
    for folder in sorted((SHARED / "multitrack").glob("*/")):
        if (folder / "mixture.flac").is_file():
            files.append((f"multitrack/{folder.name}", folder / "mixture.flac", "music", folder))
            seen.add(hashlib.sha256((folder / "mixture.flac").read_bytes()).hexdigest())
    for path in sorted((SHARED / "songs").glob("*")):
        if path.suffix in (".ogg", ".flac", ".wav", ".mp3"):
            if hashlib.sha256(path.read_bytes()).hexdigest() in seen:
                continue  # a byte-identical copy of a multitrack mixture
            files.append((f"songs/{path.name}", path, "music", None))
    kinds = {"198-209-0000": "non-music", "glacier-bay-humpback": "either"}
    for path in sorted((SHARED / "real").glob("*.ogg")):
        files.append((f"real/{path.name}", path, kinds.get(path.stem, "music"), None))
    return files


def _generated_non_music() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    t = np.arange(20 * SAMPLE_RATE) / SAMPLE_RATE
    noise = (0.1 * rng.standard_normal((2, t.size))).astype(np.float32)
    sine = np.tile(0.3 * np.sin(2 * np.pi * 440 * t), (2, 1)).astype(np.float32)
    return [("generated white noise 20 s", noise), ("generated 440 Hz sine 20 s", sine)]


def _any_level_f(ref: np.ndarray, est: np.ndarray) -> float:
    """Beat F of est against ref at the same, double or half (either phase) metrical level."""
    import mir_eval

    if ref.size < 2 or est.size < 2:
        return 0.0
    doubled = np.sort(np.concatenate([ref, (ref[:-1] + ref[1:]) / 2]))
    variants = [ref, doubled, ref[::2], ref[1::2]]
    return float(max(mir_eval.beat.f_measure(v, est) for v in variants))


def score_real(system: Callable, *, stretch_rate: float = 1.1, only: str | None = None, with_vocals: bool = True,
               verbose: bool = True) -> list[dict]:
    import librosa
    import mir_eval

    from covergen import audio
    from covergen.mix import stretch

    rows = []
    items = [(name, path, kind, mt) for name, path, kind, mt in _real_files()]
    items += [(name, y, "non-music", None) for name, y in _generated_non_music()]
    if only:
        items = [item for item in items if any(part in item[0] for part in only.split(","))]
    for name, src, kind, multitrack in items:
        row = {"file": name, "kind": kind}
        if isinstance(src, Path):
            y, sr = audio.load(src, sample_rate=SAMPLE_RATE)
        else:
            y, sr = src, SAMPLE_RATE
        row["duration_s"] = round(y.shape[1] / sr, 1)
        vocals = None
        if with_vocals and multitrack is not None and (multitrack / "vocals.flac").is_file():
            vocals, _ = audio.load(multitrack / "vocals.flac", sample_rate=sr, allow_silence=True)
        t0 = time.perf_counter()
        try:
            est = system(y, sample_rate=sr, vocals=vocals)
            row["refused"] = None
        except AudioContentError as err:
            est, row["refused"] = None, str(err)
        row["seconds"] = round(time.perf_counter() - t0, 2)
        row["correct"] = (row["refused"] is None) if kind == "music" else \
            (row["refused"] is not None) if kind == "non-music" else None
        if est is not None:
            beats = np.asarray(est.beats_s, float)
            row.update({"tempo_bpm": round(est.tempo_bpm, 1), "beats_per_bar": est.beats_per_bar, "key": est.key,
                        "swing_ratio": est.swing_ratio, "n_beats": int(beats.size),
                        "chart_first_line": est.chart().splitlines()[0] if est.chords else ""})
            if kind != "non-music":
                mono22 = librosa.resample(y.mean(0), orig_sr=sr, target_sr=22050)
                _, lb = librosa.beat.beat_track(y=mono22, sr=22050, units="time")
                row["librosa_tempo_bpm"] = round(float(60 / np.median(np.diff(lb))), 1) if lb.size > 1 else None
                row["beat_f_vs_librosa"] = round(float(mir_eval.beat.f_measure(lb, beats)), 3)
                row["beat_f_vs_librosa_any_level"] = round(_any_level_f(lb, beats), 3)
                try:
                    fast = system(stretch(y, sample_rate=sr, rate=stretch_rate), sample_rate=sr, vocals=None)
                    back = np.asarray(fast.beats_s) * stretch_rate
                    row["stretch_beat_f"] = round(float(mir_eval.beat.f_measure(beats, back)), 3)
                    row["stretch_beat_f_any_level"] = round(_any_level_f(beats, back), 3)
                    row["stretch_meter_same"] = fast.beats_per_bar == est.beats_per_bar
                    row["stretch_key_same"] = fast.key == est.key
                except AudioContentError as err:
                    row["stretch_refused"] = str(err)
            if multitrack is not None:
                _multitrack_checks(row, system, est, multitrack, sr)
        rows.append(row)
        if verbose:
            print(f"  {name:<70.70} {kind:<9} {'REFUSED' if row['refused'] else 'ok':<7} "
                  f"{'right' if row['correct'] else 'WRONG' if row['correct'] is False else '':<5} "
                  f"{row.get('tempo_bpm', '-')} BPM {row.get('beats_per_bar', '-')}/4 {row.get('key', '')} "
                  f"lbF {row.get('beat_f_vs_librosa', '-')} ({row.get('beat_f_vs_librosa_any_level', '-')}) "
                  f"stretchF {row.get('stretch_beat_f', '-')} drum {row.get('beats_on_drum_onsets', '-')} "
                  f"chords {row.get('chord_consistency_majmin', '-')} {row['seconds']}s", flush=True)
    return rows


def _multitrack_checks(row: dict, system: Callable, est: LeadSheet, folder: Path, sr: int) -> None:
    import librosa
    import mir_eval

    from covergen import audio

    stems = {s: audio.load(folder / f"{s}.flac", sample_rate=sr, allow_silence=True)[0]
             for s in ("drums", "bass", "other")}
    beats = np.asarray(est.beats_s, float)
    drums = librosa.resample(stems["drums"].mean(0), orig_sr=sr, target_sr=22050)
    onsets = librosa.onset.onset_detect(y=drums, sr=22050, units="time")
    if onsets.size and beats.size:
        nearest = np.min(np.abs(beats[:, None] - onsets[None, :]), axis=1)
        row["beats_on_drum_onsets"] = round(float(np.mean(nearest <= 0.07)), 3)
    n = min(x.shape[1] for x in stems.values())
    backing = sum(x[:, :n] for x in stems.values())
    try:
        other = system(backing, sample_rate=sr, vocals=None)
    except AudioContentError as err:
        row["backing_refused"] = str(err)
        return
    ref_int, ref_lab = _segments(other)
    est_int, est_lab = _segments(est)
    agree = mir_eval.chord.evaluate(ref_int, ref_lab, est_int, est_lab)
    row["chord_consistency_root"] = round(float(agree["root"]), 3)
    row["chord_consistency_majmin"] = round(float(agree["majmin"]), 3)
    row["backing_key_same"] = other.key == est.key
    row["backing_beat_f"] = round(float(mir_eval.beat.f_measure(np.asarray(other.beats_s), beats)), 3)


def _markdown_real(rows: list[dict]) -> str:
    music = [r for r in rows if r["kind"] == "music"]
    non = [r for r in rows if r["kind"] == "non-music"]
    lines = ["### (b) Real recordings (no chord labels)", "",
             f"Music refused: **{sum(r['refused'] is not None for r in music)} of {len(music)}** (must be 0); "
             f"non-music refused: **{sum(r['refused'] is not None for r in non)} of {len(non)}** (must be all). "
             "Beat agreement is the F-measure (70 ms) against librosa's beat tracker on the same audio (same level / "
             "any of double, half); stretch F compares the beats of a 10 % faster Rubber Band stretch, mapped back, "
             "with the original's; drum onsets is the share of beats within 70 ms of an onset of the true drum stem; "
             "chord consistency is the majmin (root) agreement of the mixture's chords with those of drums + bass + "
             "other (no vocals).", "",
             "| file | kind | refused | tempo BPM (librosa) | meter | key | beat F vs librosa (any level) | "
             "stretch F (any) | beats on drum onsets | chords mix vs backing majmin (root) | s |", "|" + "---|" * 11]
    for r in rows:
        refused = f"yes: {r['refused']}" if r["refused"] else "no"
        if r["correct"] is False:
            refused = f"**{refused} (WRONG)**"
        lines.append(
            f"| {r['file']} | {r['kind']} | {refused} | {r.get('tempo_bpm', '-')} "
            f"({r.get('librosa_tempo_bpm', '-')}) | "
            f"{r.get('beats_per_bar', '-')} | {r.get('key', '-')} | {r.get('beat_f_vs_librosa', '-')} "
            f"({r.get('beat_f_vs_librosa_any_level', '-')}) | {r.get('stretch_beat_f', '-')} "
            f"({r.get('stretch_beat_f_any_level', '-')}) | {r.get('beats_on_drum_onsets', '-')} | "
            f"{r.get('chord_consistency_majmin', '-')} ({r.get('chord_consistency_root', '-')}) | {r['seconds']} |")
    return "\n".join(lines) + "\n"


# -- (c) speed ------------------------------------------------------------------------------------
def measure_speed(systems: dict[str, Callable], *, duration_s: float = 180.0, with_lead: bool = True) -> dict:
    from covergen.training import leadsheet_songs

    rendered = leadsheet_songs.song(leadsheet_songs.SPEED_SEED, duration_s=duration_s, with_lead=True)
    length_s = rendered.audio.shape[1] / rendered.sample_rate
    warm = rendered.audio[:, :10 * rendered.sample_rate]
    out = {"song_s": round(length_s, 1), "seed": leadsheet_songs.SPEED_SEED, "with_lead": with_lead}
    for name, system in systems.items():
        system(warm, sample_rate=rendered.sample_rate, vocals=rendered.lead[:, :warm.shape[1]] if with_lead else None)
        t0 = time.perf_counter()  # after the warm-up call above, which loads the models
        sheet = system(rendered.audio, sample_rate=rendered.sample_rate, vocals=rendered.lead if with_lead else None)
        seconds = time.perf_counter() - t0
        out[name] = {"seconds": round(seconds, 2), "rtf": round(seconds / length_s, 4),
                     "stages_s": sheet.source.get("seconds", {})}
        print(f"  speed {name}: {seconds:.1f} s for {length_s:.0f} s = {seconds / length_s:.3f}x real time "
              f"(floor <= {RTF_FLOOR}) stages {out[name]['stages_s']}", flush=True)
    return out


def _markdown_speed(speed: dict) -> str:
    inputs = "mixture plus the true lead stem" if speed.get("with_lead", True) else "mixture only (no melody)"
    lines = ["### (c) Speed", "",
             f"A {speed['song_s']:.0f} s rendered song (seed {speed['seed']}), {inputs}, separation not counted, "
             f"timed after a 10 s warm-up call that loads the models. Floor: <= {RTF_FLOOR}x real time.", "",
             "| system | seconds | real-time factor | floor | stages (s) |", "|---|---|---|---|---|"]
    for name, s in speed.items():
        if isinstance(s, dict):
            verdict = "met" if s["rtf"] <= RTF_FLOOR else "NOT met"
            stages = ", ".join(f"{k} {v}" for k, v in s.get("stages_s", {}).items())
            lines.append(f"| {name} | {s['seconds']} | {s['rtf']:.3f} | {verdict} | {stages} |")
    return "\n".join(lines) + "\n"


# -- entry points ---------------------------------------------------------------------------------
def _parse_kwargs(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        out[key] = int(value) if value.lstrip("-").isdigit() else value
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_analysis", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", action="store_true", help="score dev seeds 0-15 only, print a table, write nothing")
    parser.add_argument("--seeds", default=None, help="seeds to score, e.g. 0-15 or 3,7 (--dev: dev seeds only)")
    parser.add_argument("--systems", default=None,
                        help="comma-separated: analyse, baseline, oracle (default --dev: analyse,baseline; "
                             "bench: analyse,baseline)")
    parser.add_argument("--kw", action="append", default=[], metavar="KEY=VALUE",
                        help="extra keyword for covergen.analysis.analyse, e.g. --kw chords=template")
    parser.add_argument("--no-lead", action="store_true",
                        help="no melody: do not give the analysis the true lead stem (nor the multitracks' vocals)")
    parser.add_argument("--parts", default="abc", help="bench parts to run: a (rendered), b (real), c (speed)")
    parser.add_argument("--only", default=None,
                        help="(b): only files whose name contains one of these, comma-separated")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    from covergen.training.leadsheet_songs import DEV_SEEDS, parse_seeds

    systems = _systems((args.systems or "analyse,baseline").split(","), **_parse_kwargs(args.kw))
    if args.dev:
        seeds = parse_seeds(args.seeds) if args.seeds else list(DEV)
        if any(s not in DEV_SEEDS for s in seeds):
            raise SystemExit("--dev scores dev seeds (0-99) only; held-out seeds are for `make bench`")
        print(_HEADER)
        rows = score_rendered(seeds, systems, with_lead=not args.no_lead)
        _print_summary(summarise(rows))
        return
    from .common import write

    md = ["## Lead-sheet analysis (issue #18)", ""]
    data: dict = {"floors": FLOORS, "rtf_floor": RTF_FLOOR,
                  "systems": {k: ("ground truth" if k == "oracle" else k) for k in systems}}
    runnable = {k: v for k, v in systems.items() if v is not None}
    if "analyse" in systems and systems["analyse"] is None:
        md += ["**covergen.analysis.analyse is not importable: only the baseline is reported.**", ""]
    if "a" in args.parts:
        seeds = parse_seeds(args.seeds) if args.seeds else list(HELD_OUT)
        print("[bench analysis] (a) rendered held-out songs\n" + _HEADER, flush=True)
        rows = score_rendered(seeds, systems, with_lead=not args.no_lead)
        summary = summarise(rows)
        _print_summary(summary)
        data["rendered"] = {"seeds": seeds, "rows": rows, "summary": summary}
        md.append(_markdown_rendered(rows, summary, with_lead=not args.no_lead))
    main_system = runnable.get("analyse") or runnable.get("baseline")
    if "b" in args.parts and main_system is not None:
        label = "analyse" if "analyse" in runnable else "baseline"
        print(f"[bench analysis] (b) real recordings ({label})", flush=True)
        rows = score_real(main_system, only=args.only, with_vocals=not args.no_lead)
        data["real"] = {"system": label, "rows": rows}
        md.append(_markdown_real(rows).replace("### (b) Real recordings", f"### (b) Real recordings ({label})"))
    if "c" in args.parts and runnable:
        print("[bench analysis] (c) speed", flush=True)
        speed = measure_speed({k: v for k, v in runnable.items() if k != "oracle"}, with_lead=not args.no_lead)
        data["speed"] = speed
        md.append(_markdown_speed(speed))
    write("analysis", data, "\n".join(md))
    print("[bench analysis] wrote bench/analysis.md and bench/analysis.json", flush=True)


if __name__ == "__main__":
    main()
