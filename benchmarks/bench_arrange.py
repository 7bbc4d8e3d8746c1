"""Arranged covers (issue #19): genre move, still the same song, the band in harmony and in time, speed.

For every preset genre, on the songs in ../shared/data/songs, the music in ../shared/data/real and
rendered songs of `covergen.training.leadsheet_songs` (held-out seeds 1000+), `make_cover` (the default
`mode = "arrange"`, the default separator) and, for comparison on the same files, `mode="revoice"`
(the old pipeline, the "before" column):

- genre move: `genre.transfer_strength` of the report, P(target | cover) - P(target | original) judged
  at the same loudness by the project's genre model, mean per genre (goal >= +0.3), and the share of
  covers whose top genre is the target (goal >= 60%). GTZAN has no bossa nova and no lo-fi: each
  preset's `genre_label` stands in (printed in the table).
- still the same song: the share of cover-check verdicts "cover" (goal >= 90%), and how often the
  guard fired (the arranged cover failed the check first and was re-mixed over the original `other`;
  if that failed too, the original's parts re-voiced, kept when the check scored them higher: "revoiced").
- in harmony: the band alone (`arrange.arrange(sheet, preset.band.resolved, seed=0, tempo_ratio=1.0)`,
  the song's own lead sheet from `pipeline.lead_sheet_of`) re-analysed by `analysis.analyse`; the share
  of the lead sheet's beats (those with a chord) where the re-heard chord has the same root and the
  same third (major / minor / none) (goal >= 80%).
- in time: the kick (drum notes 35/36) and the bass part rendered alone (raw FluidSynth, no part chain
  or master, so the lo-fi crackle cannot add onsets); median |error| from each intended note time
  (the un-humanised score on the song's grid, swing included) to the nearest detected onset (goal
  <= 20 ms). Bass notes that repeat the previous pitch are left out (repeated notes blur), as in the
  test suite.
- speed: `covergen make` (a subprocess, fresh COVERGEN_CACHE) on the demo song tiled to 180 s with
  `--separator embedded`, wall time / duration (goal <= 0.30); peak memory of `make` on a 10-minute song
  (goal <= 3 GB) is the memory bench's (bench/memory.json, `benchmarks.bench_memory` runs before this one
  in `make bench`), quoted, not measured twice.

Long files are cut to a 60 s excerpt (`--excerpt-s`; from 30 s in, or the middle of a shorter file) to keep
the run affordable, and the rendered songs are rendered at that length; the excerpt is what `make` covers
and what both judges hear. Not shorter: the cover check needs 75 beats and skips shorter audio. Every file gets a fresh
COVERGEN_CACHE shared by its genres (separation and analysis once per file).

    python -m benchmarks.bench_arrange                      # everything
    python -m benchmarks.bench_arrange --files 0,3 --no-speed --part a.json   # a part (JSON), e.g. in parallel
    python -m benchmarks.bench_arrange --merge a.json b.json ...                          # parts -> bench/arrange.*
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import soundfile as sf

from covergen import pipeline, presets
from covergen.errors import CovergenError
from covergen.leadsheet import QUALITIES, parse_chord

from .common import OUT, REPO, SHARED, write

log = logging.getLogger(__name__)

GENRES = ["jazz", "bossa_nova", "rock", "classical", "lofi"]
REAL = ["Kevin_MacLeod_-_Vibe_Ace.ogg", "Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.ogg",
        "442789__lena-orsa__happy-music-pistachio-ice-cream-ragtime.ogg", "sorohanro_-_solo-trumpet-06.ogg"]
RENDERED_SEEDS = [1000, 1001, 1002, 1003]  # held out: never used to tune anything
EXCERPT_S = 60.0  # the cover check needs 75 beats (37.5 s at 120 BPM): 30 s excerpts are often too short
GOALS = {"transfer_strength": 0.3, "target_top": 0.6, "cover": 0.9, "harmony": 0.8, "onset_ms": 20.0,
         "rtf": 0.30, "peak_gb": 3.0}
KICK = {35, 36}
COVERGEN = REPO / ".venv" / "bin" / "covergen"


# ---------------------------------------------------------------- inputs

def inputs() -> list[tuple[str, str, object]]:
    """(name, kind, source): a path for files, a seed for rendered songs."""
    out = []
    songs = SHARED / "songs"
    if songs.is_dir():
        out += [(p.stem, "song", p) for p in sorted(songs.iterdir()) if p.suffix in (".ogg", ".flac", ".wav", ".mp3")]
    out += [(Path(n).stem, "real", SHARED / "real" / n) for n in REAL if (SHARED / "real" / n).is_file()]
    out += [(f"leadsheet_song_{s}", "rendered", s) for s in RENDERED_SEEDS]
    # round robin over kinds, so that `--files N` (a subset) holds each kind
    by_kind = [[x for x in out if x[1] == k] for k in ("song", "real", "rendered")]
    return [x for group in zip(*[g + [None] * (max(map(len, by_kind)) - len(g)) for g in by_kind])
            for x in group if x is not None]


def _excerpt(y: np.ndarray, sr: int, excerpt_s: float) -> tuple[np.ndarray, float]:
    """y (samples, channels) -> (the excerpt, its start in s): from 30 s in, or the middle of a file shorter than
    excerpt + 30 s; short files whole."""
    n, dur = int(excerpt_s * sr), len(y) / sr
    if len(y) <= n:
        return y, 0.0
    start_s = 30.0 if dur >= excerpt_s + 30.0 else (dur - excerpt_s) / 2
    i = int(start_s * sr)
    return y[i:i + n], start_s


def materialise(name: str, kind: str, source, folder: Path, excerpt_s: float = EXCERPT_S) -> tuple[Path, dict]:
    """The file `make` covers (an excerpt, or the rendered song), and facts about it."""
    if kind == "rendered":
        from covergen.training import leadsheet_songs

        y, _ = leadsheet_songs.song(source, duration_s=excerpt_s if excerpt_s > 30 else None)  # default ~20-30 s
        y, sr = y.T, leadsheet_songs.SAMPLE_RATE
        full_s = len(y) / sr
    else:
        y, sr = sf.read(source, dtype="float32", always_2d=True)
        full_s = len(y) / sr
    y, start_s = _excerpt(y, sr, excerpt_s)
    path = folder / f"{name}.flac"
    sf.write(path, y, sr, subtype="PCM_24")
    return path, {"file": name, "kind": kind, "full_s": round(full_s, 1), "excerpt_start_s": round(start_s, 1),
                  "excerpt_s": round(len(y) / sr, 1)}


# ---------------------------------------------------------------- measures

def _third(label: str) -> tuple[int, str] | None:
    """(root, third) with third 'min' / 'maj' / 'none'; None for no chord."""
    parsed = parse_chord(label)
    if parsed is None:
        return None
    root, quality, _ = parsed
    intervals = QUALITIES[quality]
    return root, "min" if 3 in intervals else "maj" if 4 in intervals else "none"


def harmony(sheet, style) -> dict:
    """The band alone re-analysed: share of the lead sheet's chord beats re-heard with the same root and third."""
    from covergen import analysis, arrange

    band, _, _ = arrange.arrange(sheet, style, seed=0, tempo_ratio=1.0, sample_rate=44100)
    heard = analysis.analyse(band, sample_rate=44100)
    grid = np.asarray(heard.beats_s)
    same = []
    for t, chord in zip(sheet.beats_s, sheet.chords):
        want = _third(chord)
        if want is None:
            continue
        same.append(_third(heard.chords[int(np.argmin(np.abs(grid - t)))]) == want)
    return {"beats": len(same), "share": float(np.mean(same)) if same else None}


def _onsets_s(y: np.ndarray, sample_rate: int) -> np.ndarray:
    """Spectral-flux onsets at a 2.9 ms hop, moved back to the start of their energy rise (as tests/test_arrange)."""
    import librosa

    hop = 64
    env = librosa.onset.onset_strength(y=y.mean(axis=0), sr=sample_rate, hop_length=hop, n_fft=512)
    frames = librosa.onset.onset_detect(onset_envelope=env, sr=sample_rate, hop_length=hop, backtrack=True)
    return frames * hop / sample_rate


def timing(sheet, style) -> dict:
    """Median |error| (ms) of kick and bass onsets, each part rendered alone, from the intended note times."""

    from covergen import arrange
    from covergen.arrange import render

    sr = 22050
    played = arrange.score(sheet, style, seed=0)
    exact = arrange.score(sheet, style, seed=0, humanise=False)
    grid = arrange.stretched_grid(sheet, 1.0)
    out = {}
    for role, pitches in (("drums", KICK), ("bass", None)):
        parts = style.parts_with_role(role)
        if not parts:
            out[role] = None
            continue
        part = parts[0]

        def pick(events):
            ev = [e for e in events if e.part == part.name and (pitches is None or e.pitch in pitches)]
            if pitches is None:  # repeated notes of one pitch blur: keep changes of pitch
                ev = [e for i, e in enumerate(ev) if i == 0 or e.pitch != ev[i - 1].pitch]
            return ev

        ev_played, ev_exact = pick(played), pick(exact)
        if len(ev_exact) < 4:
            out[role] = None
            continue
        midi = arrange.to_midi(ev_played, grid, style=style)
        midi.instruments = [i for i in midi.instruments if i.name == part.name and i.notes]
        inst, font = render.playable_part(part, midi.instruments[0], render.find_soundfont())  # as render_band
        midi.instruments = [inst]
        y = render.render_midi(midi, sample_rate=sr, soundfont=font)
        ref = arrange.to_midi(ev_exact, grid, style=style)
        expected = np.array(sorted(n.start for i in ref.instruments if i.name == part.name for n in i.notes))
        found = _onsets_s(y, sr)
        err_ms = np.array([np.min(np.abs(found - t)) * 1000 for t in expected]) if len(found) else np.array([np.inf])
        out[role] = {"notes": int(len(expected)), "onsets": int(len(found)),
                     "median_ms": round(float(np.median(err_ms)), 1),
                     "within_30ms": round(float(np.mean(err_ms < 30)), 3)}
    return out


def _cover_row(report: dict, target: str) -> dict:
    g = report.get("genre", {})
    cover_p = g.get("cover") or {}
    return {"transfer_strength": g.get("transfer_strength"),
            "p_target_original": (g.get("original") or {}).get(target),
            "p_target_cover": cover_p.get(target),
            "top_cover": max(cover_p, key=cover_p.get) if cover_p else None,
            "top_original": max(g["original"], key=g["original"].get) if g.get("original") else None,
            "verdict": report.get("cover_check", {}).get("verdict"),  # None: the check was skipped (e.g. too few beats)
            "check_status": report.get("cover_check", {}).get("status"),
            "check_reason": report.get("cover_check", {}).get("reason"),
            "check_score": report.get("cover_check", {}).get("score"),
            "guard": "guard" in report,
            "first_verdict": report["guard"]["first_check"].get("verdict") if "guard" in report else None,
            "revoiced": report.get("mode") == "revoice" and "guard" in report,
            "rtf": report.get("real_time_factor"), "stages_s": report.get("stages_s")}


MODES = ("arrange", "revoice")


def one_file(name: str, kind: str, source, genres: list[str], work: Path, on_genre=None, *,
             excerpt_s: float = EXCERPT_S, modes: tuple[str, ...] = MODES, keep_audio: Path | None = None) -> dict:
    """Every genre (arranged and revoiced), the band's harmony and timing, on one file with its own cache.
    `on_genre(row)` is called after each genre with the row so far. With `keep_audio`, the excerpt and each
    arranged cover are kept there (`NAME.flac`, `NAME--GENRE.flac`) for other judges (benchmarks.bench_judge)."""
    path, facts = materialise(name, kind, source, work, excerpt_s)
    if keep_audio is not None:
        keep_audio.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, keep_audio / path.name)
    row = {**facts, "genres": {}}
    on_genre = on_genre or (lambda row: None)
    cache = work / f"cache-{name}"
    with mock.patch.dict(os.environ, {"COVERGEN_CACHE": str(cache)}):
        for genre in genres:
            preset = presets.load(genre)
            target = preset.genre_label
            entry: dict = {"target_label": target}
            for mode in modes:
                t0 = time.perf_counter()
                try:
                    cover = pipeline.make_cover(path, genre=genre, mode=mode)
                except CovergenError as err:
                    entry[mode] = {"error": str(err)}
                    continue
                except Exception as err:  # a bug in make: recorded, and the other genres still run
                    entry[mode] = {"crash": f"{type(err).__name__}: {err}"}
                    log.exception("make %s --to %s (%s) crashed", name, genre, mode)
                    continue
                entry[mode] = {**_cover_row(cover.report, target), "wall_s": round(time.perf_counter() - t0, 1)}
                if keep_audio is not None and mode == "arrange":
                    sf.write(keep_audio / f"{name}--{genre}.flac", cover.audio.T, cover.sample_rate, subtype="PCM_24")
                if mode == "arrange" and "lead_sheet" not in row:
                    row["lead_sheet"] = {k: v for k, v in cover.report["lead_sheet"].items() if k != "chart"}
                    row["separator"] = cover.report.get("separation", {}).get("separator")
                del cover
            if not {"error", "crash"} & set(entry["arrange"]):
                from covergen import audio

                y, sr = audio.load(path)  # as make loads it, so the lead sheet is a cache hit
                sheet, info, _ = pipeline.lead_sheet_of(y, sr, name=str(path))
                entry["lead_sheet_cache_hit"] = info.get("cache_hit")
                style = preset.band.resolved
                try:
                    entry["harmony"] = harmony(sheet, style)
                except CovergenError as err:  # the analysis refused the band (e.g. too little of it)
                    entry["harmony"] = {"error": str(err), "share": None}
                entry["timing"] = timing(sheet, style)
            row["genres"][genre] = entry
            on_genre(row)
            print(f"[arrange] {name} {genre}: {_short(entry)}", flush=True)
    return row


def _short(entry: dict) -> str:
    a = entry.get("arrange", {})
    if "error" in a:
        return f"refused: {a['error']}"
    r = entry.get("revoice", {})
    h = entry.get("harmony", {})
    t = entry.get("timing", {})
    return (f"move {_f(a.get('transfer_strength'))} (before {_f(r.get('transfer_strength'))}), "
            f"top {a.get('top_cover')}, "
            f"{a.get('verdict')}{' (guard)' if a.get('guard') else ''}{' re-voiced' if a.get('revoiced') else ''}, harmony {_f(h.get('share'))}, "
            f"kick {(t.get('drums') or {}).get('median_ms')} ms, bass {(t.get('bass') or {}).get('median_ms')} ms")


def _f(x, fmt="+.2f") -> str:
    return "-" if x is None else format(x, fmt)


# ---------------------------------------------------------------- speed and memory

def _long_song(path: Path, seconds: float) -> Path:
    from .bench_memory import long_song

    return long_song(path, seconds / 60.0)


def speed(seconds: float = 180.0, genre: str = "jazz") -> dict:
    """`covergen make --separator embedded` on the demo song tiled to `seconds`, fresh cache: wall / duration."""
    with tempfile.TemporaryDirectory() as tmp:
        song = _long_song(Path(tmp) / f"demo_{seconds:g}s.flac", seconds)
        env = {**os.environ, "COVERGEN_CACHE": str(Path(tmp) / "cache")}
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        proc = subprocess.run([str(COVERGEN), "make", str(song), "--to", genre, "--separator", "embedded",
                               "-o", str(Path(tmp) / "out.wav"), "--report", str(Path(tmp) / "r.json"), "--quiet"],
                              env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        load = os.getloadavg()
        if proc.returncode != 0:
            return {"error": proc.stderr.strip()[-500:]}
        import json

        report = json.loads((Path(tmp) / "r.json").read_text())
    return {"seconds": seconds, "genre": genre, "wall_s": round(wall, 1), "rtf": round(wall / seconds, 3),
            "stages_s": report["stages_s"], "loadavg_before": [round(x, 1) for x in load_before],
            "loadavg_after": [round(x, 1) for x in load], "cpus": os.cpu_count()}


def memory() -> dict | None:
    """Peak memory of `make` on a 10-minute song is the memory bench's (`benchmarks.bench_memory`, run before this
    one in `make bench`, bench/memory.json): read, not measured twice."""
    import json

    path = OUT / "memory.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    runs = data.get("runs", [data])  # one run per song length (the 10-minute one is the goal's)
    run = min(runs, key=lambda r: abs((r.get("minutes") or 0) - 10.0))
    return {"source": "bench/memory.json (benchmarks.bench_memory)", "minutes": run.get("minutes"),
            "genre": run.get("genre"), "peak_gb": run.get("peak_gb"), "wall_s": run.get("seconds"),
            "commit": data.get("environment", {}).get("commit"), "date": data.get("environment", {}).get("date")}


# ---------------------------------------------------------------- summary and markdown

def summarise(rows: list[dict], genres: list[str]) -> dict:
    out = {}
    for genre in genres:
        entries = [r["genres"][genre] for r in rows if genre in r.get("genres", {})]
        s: dict = {"target_label": presets.load(genre).genre_label}
        for mode in ("arrange", "revoice"):
            done = [e[mode] for e in entries if mode in e and not {"error", "crash"} & set(e[mode])]
            checked = [d for d in done if d["verdict"] is not None]
            ts = [d["transfer_strength"] for d in done if d["transfer_strength"] is not None]
            s[mode] = {"n": len(done), "refused": sum(1 for e in entries if "error" in e.get(mode, {})),
                       "crashed": sum(1 for e in entries if "crash" in e.get(mode, {})),
                       "transfer_strength": statistics.mean(ts) if ts else None,
                       "target_top": (float(np.mean([d["top_cover"] == s["target_label"] for d in done]))
                                      if done else None),
                       "cover": float(np.mean([d["verdict"] == "cover" for d in checked])) if checked else None,
                       "check_skipped": len(done) - len(checked),
                       "guard": int(sum(d["guard"] for d in done))}
        hs = [e["harmony"]["share"] for e in entries if e.get("harmony", {}).get("share") is not None]
        s["harmony"] = statistics.mean(hs) if hs else None
        for role in ("drums", "bass"):
            ms = [e["timing"][role]["median_ms"] for e in entries if (e.get("timing") or {}).get(role)]
            s[f"{role}_ms"] = statistics.median(ms) if ms else None
        out[genre] = s
    return out


def _mark(value, goal, higher=True) -> str:
    if value is None:
        return ""
    return " ✓" if (value >= goal if higher else value <= goal) else " ✗"


def markdown(result: dict, *, heading: str = "## Arranged covers (`covergen make`, issue #19)",
             extras: bool = True) -> str:
    """The genre table, speed and memory (with `extras`), the per-file table; then any other runs' tables."""
    summary, rows, genres = result["summary"], result["files"], result["genres"]
    n_files = len(rows)
    lengths = sorted({r["excerpt_s"] for r in rows if r["full_s"] > r["excerpt_s"]})
    cut = f"files over {lengths[-1]:g} s cut to a {lengths[-1]:g} s excerpt (from 30 s in, or the middle)" if lengths \
        else "files whole"
    lines = [heading, ""] + ([f"**This run:** {result['note']}", ""] if result.get("note") and extras else []) + [
             f"{n_files} files ({', '.join(sorted({r['kind'] for r in rows}))}): {cut}. Default separator "
             f"({', '.join(sorted({str(r['separator']) for r in rows if r.get('separator')}))}), seed 0, "
             "a fresh cache per file shared by "
             "its genres. Move = P(target | cover) − P(target | original), same loudness, the project's genre "
             "model; *before* = `--mode revoice` on the same files. Harmony: the band alone re-analysed, share of "
             "the lead sheet's chord beats with the same root and third. Kick/bass: median of the per-file median "
             "|onset − intended note time|, each part rendered alone. Cover share over the covers the check could "
             "judge (it skips audio with too few beats, e.g. a 27 s excerpt at 120 BPM). "
             "✓/✗ against the issue's goals "
             "(move ≥ +0.3, top ≥ 60%, cover ≥ 90%, harmony ≥ 80%, onsets ≤ 20 ms).", "",
             "| genre (label) | n | move | before | target top | before | cover | before | guard fired | harmony "
             "| kick ms | bass ms |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for genre in genres:
        s = summary[genre]
        a, r = s["arrange"], s["revoice"]
        refused = (f" (+{a['refused']} refused)" if a["refused"] else "") + \
            (f" (+{a['crashed']} crashed)" if a.get("crashed") else "")
        skipped = f" ({a['check_skipped']} skipped)" if a.get("check_skipped") else ""
        pct = lambda x: "-" if x is None else f"{100 * x:.0f}%"  # noqa: E731
        lines.append(
            f"| {genre} ({s['target_label']}) | {a['n']}{refused} "
            f"| {_f(a['transfer_strength'])}{_mark(a['transfer_strength'], GOALS['transfer_strength'])} "
            f"| {_f(r['transfer_strength'])} | {pct(a['target_top'])}{_mark(a['target_top'], GOALS['target_top'])} "
            f"| {pct(r['target_top'])} | {pct(a['cover'])}{_mark(a['cover'], GOALS['cover'])}{skipped} "
            f"| {pct(r['cover'])} "
            f"| {a['guard']}/{a['n']} | {pct(s['harmony'])}{_mark(s['harmony'], GOALS['harmony'])} "
            f"| {_f(s['drums_ms'], '.1f')}{_mark(s['drums_ms'], GOALS['onset_ms'], False)} "
            f"| {_f(s['bass_ms'], '.1f')}{_mark(s['bass_ms'], GOALS['onset_ms'], False)} |")
    sp, mem = result.get("speed"), result.get("memory")
    lines.append("")
    if sp and extras:
        lines.append(f"Speed: `covergen make --to {sp.get('genre', 'jazz')} --separator embedded`, demo song tiled to "
                     f"{sp.get('seconds', 180):g} s, fresh cache: " + (
                         f"{sp['wall_s']:.0f} s wall, **{sp['rtf']:.2f}× real time**"
                         f"{_mark(sp['rtf'], GOALS['rtf'], False)} "
                         f"(goal ≤ 0.30×; 1-min load average {sp.get('loadavg_before', ['?'])[0]} before and "
                         f"{sp['loadavg_after'][0]} right after, on {sp['cpus']} CPUs: a shared machine); "
                         f"stages {sp['stages_s']}." if "rtf" in sp else f"failed: {sp['error']}"))
    lines.append("")
    if not extras:
        pass
    elif mem and mem.get("peak_gb") is not None:
        lines.append(f"Memory (from {mem['source']}, commit {mem['commit']}, {mem['date']}): "
                     f"`make --to {mem['genre']}` on "
                     f"the demo song tiled to {mem['minutes']:g} min, peak resident memory **{mem['peak_gb']:.2f} GB**"
                     f"{_mark(mem['peak_gb'], GOALS['peak_gb'], False)} (goal ≤ 3 GB).")
    else:
        lines.append("Memory: no bench/memory.json (run `python -m benchmarks.bench_memory`, 10-minute song); "
                     "not measured twice here.")
    lines += ["", "Per file (arranged; *before* = revoice): move, top genre of the cover, verdict (g = guard fired, r = re-voiced by it), "
              "harmony %, kick / bass ms.", ""]
    lines += ["| file | s | " + " | ".join(genres) + " |", "|---|---|" + "---|" * len(genres)]
    for r in rows:
        cells = []
        for genre in genres:
            e = r["genres"].get(genre)
            if not e:
                cells.append("")
                continue
            a = e.get("arrange", {})
            if "error" in a or "crash" in a:
                cells.append("refused" if "error" in a else "**crashed**")
                continue
            h = (e.get("harmony") or {}).get("share")
            t = e.get("timing") or {}
            kick = (t.get("drums") or {}).get("median_ms")
            bass = (t.get("bass") or {}).get("median_ms")
            cells.append(f"{_f(a['transfer_strength'])} ({_f(e.get('revoice', {}).get('transfer_strength'))}) "
                         f"{a['top_cover']}, {a['verdict'] or 'check skipped'}{' g' if a['guard'] else ''}{'r' if a.get('revoiced') else ''}, "
                         f"{'-' if h is None else f'{100 * h:.0f}%'}, {'-' if kick is None else kick} / "
                         f"{'-' if bass is None else bass}")
        lines.append(f"| {r['file']} | {r['excerpt_s']:g} | " + " | ".join(cells) + " |")
    refusals = [(r["file"], g, e["arrange"]["error"]) for r in rows for g, e in r["genres"].items()
                if "error" in e.get("arrange", {})]
    if refusals:
        lines += ["", "Refused by `make`:"]
        lines += sorted({f"- {f}: {err.split('.flac: ', 1)[-1]}" for f, _, err in refusals})
    crashes = sorted({f"- {f} --to {g}: {e['arrange']['crash']}" for r in rows for g, e in r["genres"].items()
                      for f in [r["file"]] if "crash" in e.get("arrange", {})})
    if crashes:
        lines += ["", "`make` crashed (a bug, not a refusal):"] + crashes
    for other in result.get("other_runs", []) if extras else []:
        lines += ["", markdown(other, heading=f"### The same with {other['excerpt_s']:g} s excerpts", extras=False)]
    return "\n".join(lines) + "\n"


def run(*, files: list[int] | None = None, genres: list[str] | None = None, with_covers: bool = True,
        with_speed: bool = True, excerpt_s: float = EXCERPT_S, modes: tuple[str, ...] = MODES,
        on_progress=None, keep_audio: Path | None = None) -> dict:
    """The whole bench (or a subset); `on_progress(result so far)` after each genre of each file.
    `modes=("arrange",)` leaves out the revoice covers (the *before* column), half the time."""
    genres = genres or GENRES
    todo = inputs()
    todo = [todo[i] for i in files] if files is not None else todo
    rows: list[dict] = []
    t0 = time.perf_counter()
    result = {"genres": genres, "files": rows, "covers_s": 0.0, "excerpt_s": excerpt_s}

    def progress(row):
        result["files"] = rows + [row]
        result["covers_s"] = round(time.perf_counter() - t0, 1)
        if on_progress:
            on_progress(result)

    with tempfile.TemporaryDirectory() as work:
        for name, kind, source in (todo if with_covers else []):
            rows.append(one_file(name, kind, source, genres, Path(work), on_genre=progress, excerpt_s=excerpt_s,
                                 modes=modes, keep_audio=keep_audio))
    result.update(files=rows, covers_s=round(time.perf_counter() - t0, 1))
    if with_speed:
        result["speed"] = speed()
        print(f"[arrange] speed: {result['speed']}", flush=True)
    return result


def timing_only(files: list[int] | None = None, genres: list[str] | None = None,
                excerpt_s: float = EXCERPT_S) -> dict:
    """The band's kick and bass timing (`timing`) on every file's lead sheet for every genre, without making
    the covers (minutes, not an hour): as played (each note early by its sample's onset latency,
    `render.playable_part`) and, for comparison, with every note-on on its grid time (latency 0)."""
    from covergen import audio
    from covergen.arrange import render

    genres = genres or GENRES
    todo = inputs()
    todo = [todo[i] for i in files] if files is not None else todo
    rows = []
    with tempfile.TemporaryDirectory() as work, mock.patch.dict(os.environ, {"COVERGEN_CACHE": str(Path(work) / "c")}):
        for name, kind, source in todo:
            path, facts = materialise(name, kind, source, Path(work), excerpt_s)
            y, sr = audio.load(path)
            try:
                sheet, _, _ = pipeline.lead_sheet_of(y, sr, name=str(path))
            except CovergenError as err:
                rows.append({**facts, "error": str(err)})
                continue
            row = {**facts, "tempo_bpm": round(sheet.tempo_bpm, 1), "genres": {}}
            for genre in genres:
                style = presets.load(genre).band.resolved
                played = timing(sheet, style)
                no_latency = lambda font, program, pitches: dict.fromkeys(pitches, 0.0)  # noqa: E731
                with mock.patch.object(render, "onset_latency_s", no_latency):
                    on_grid = timing(sheet, style)
                row["genres"][genre] = {"timing": played, "timing_note_on_at_grid": on_grid}
                print(f"[timing] {name} {genre}: bass {(played['bass'] or {}).get('median_ms')} ms "
                      f"(note-on at grid {(on_grid['bass'] or {}).get('median_ms')}), "
                      f"kick {(played['drums'] or {}).get('median_ms')} ms", flush=True)
            rows.append(row)
    return {"genres": genres, "files": rows, "excerpt_s": excerpt_s}


def timing_markdown(result: dict) -> str:
    genres = result["genres"]
    ok = [r for r in result["files"] if "genres" in r]

    def med(genre, key, role):
        ms = [(r["genres"][genre][key][role] or {}).get("median_ms") for r in ok]
        ms = [m for m in ms if m is not None]
        return float(np.median(ms)) if ms else None

    lines = ["## The band in time: kick and bass onsets (issue #19)", "",
             "Each part rendered alone (raw FluidSynth) on each file's own lead sheet (the default separator; "
             f"files cut to {result['excerpt_s']:g} s as in bench/arrange.md), seed 0: median over files of the "
             "per-file median |detected onset − intended note time| (ms; goal ≤ 20). *Played*: each melodic note "
             "early by its sample's measured onset latency (`render.playable_part`, what `make` renders); "
             "*note-on at grid*: the same notes with latency 0 (before this change). Run: "
             "`python -m benchmarks.bench_arrange --timing-only`.", "",
             f"{len(ok)} files ({len(result['files']) - len(ok)} refused by the analysis).", "",
             "| genre | kick ms | bass ms played | bass ms note-on at grid |", "|---|---|---|---|"]
    for g in genres:
        lines.append(f"| {g} | {_f(med(g, 'timing', 'drums'), '.1f')} | {_f(med(g, 'timing', 'bass'), '.1f')} "
                     f"| {_f(med(g, 'timing_note_on_at_grid', 'bass'), '.1f')} |")
    lines += ["", "Per file, bass ms played (note-on at grid):", "",
              "| file | " + " | ".join(genres) + " |", "|---" * (len(genres) + 1) + "|"]
    for r in ok:
        cells = []
        for g in genres:
            a = (r["genres"][g]["timing"]["bass"] or {}).get("median_ms")
            b = (r["genres"][g]["timing_note_on_at_grid"]["bass"] or {}).get("median_ms")
            cells.append(f"{_f(a, '.1f')} ({_f(b, '.1f')})")
        lines.append(f"| {r['file']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def merge(parts: list[dict]) -> dict:
    """Parts of a bench run made by separate processes (`--part`) as one result: parts with the excerpt length
    of most files make the main result, parts with another length go to `other_runs` (their own tables)."""
    order = [x[0] for x in inputs()]
    runs: dict[float, dict] = {}
    speed_part = None
    for p in parts:
        if "speed" in p:
            speed_part = p["speed"]
        if not p["files"]:
            continue
        cut = [r["excerpt_s"] for r in p["files"] if r["full_s"] > r["excerpt_s"]]
        length = float(p.get("excerpt_s") or (max(cut) if cut else EXCERPT_S))
        run_ = runs.setdefault(length, {"genres": [], "files": [], "covers_s": 0.0})
        run_["excerpt_s"] = length
        for row in p["files"]:  # one file's genres may come from several parts
            same = next((r for r in run_["files"] if r["file"] == row["file"]), None)
            if same is None:
                run_["files"].append({**row, "genres": dict(row["genres"])})
            else:
                same["genres"].update(row["genres"])
        run_["covers_s"] += p["covers_s"]
        run_["genres"] = [g for g in GENRES if g in set(run_["genres"]) | set(p["genres"])]
    for run_ in runs.values():
        run_["files"].sort(key=lambda r: order.index(r["file"]) if r["file"] in order else len(order))
        run_["summary"] = summarise(run_["files"], run_["genres"])
    ranked = sorted(runs.values(), key=lambda r: -len(r["files"]))
    result = ranked[0] if ranked else {"genres": GENRES, "files": [], "covers_s": 0.0}
    result["other_runs"] = ranked[1:]
    if speed_part:
        result["speed"] = speed_part
    return result


def main() -> None:
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", default=None, help="a subset: indices into the file list, e.g. 0,3,6")
    parser.add_argument("--genres", nargs="*", default=None)
    parser.add_argument("--no-covers", action="store_true")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument("--no-revoice", action="store_true", help="arranged covers only (no *before* column)")
    parser.add_argument("--excerpt-s", type=float, default=EXCERPT_S, help="length of the excerpt of long files")
    parser.add_argument("--part", type=Path, default=None, help="write this process's part here (JSON), nothing else")
    parser.add_argument("--merge", type=Path, nargs="*", default=None, help="combine parts into bench/arrange.*")
    parser.add_argument("--note", default=None, help="what this run covered, said above the tables")
    parser.add_argument("--keep-audio", type=Path, default=None,
                        help="keep the excerpts and arranged covers here (for benchmarks.bench_judge)")
    parser.add_argument("--timing-only", action="store_true",
                        help="the band's kick and bass timing on every file (bench/arrange-timing.*), no covers")
    args = parser.parse_args()
    if args.timing_only:
        result = timing_only([int(i) for i in args.files.split(",")] if args.files else None, args.genres,
                             args.excerpt_s)
        text = timing_markdown(result)
        write("arrange-timing", result, text)
        print(text)
        return
    if args.merge:
        result = merge([json.loads(p.read_text()) for p in args.merge])
    else:
        files = [int(i) for i in args.files.split(",")] if args.files else None
        def save(partial):  # a part is saved after each genre, so a stopped run keeps what it measured
            if args.part:
                args.part.write_text(json.dumps(partial, indent=2, default=float))

        result = run(files=files, genres=args.genres, with_covers=not args.no_covers,
                     with_speed=not args.no_speed, excerpt_s=args.excerpt_s,
                     modes=MODES[:1] if args.no_revoice else MODES, on_progress=save, keep_audio=args.keep_audio)
        if args.part:
            args.part.write_text(json.dumps(result, indent=2, default=float))
            return
    result["summary"] = summarise(result["files"], result["genres"])
    result["memory"] = memory()
    if args.note:
        result["note"] = args.note
    text = markdown(result)
    write("arrange", result, text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
