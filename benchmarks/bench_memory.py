"""Peak resident memory of `covergen make`, stage by stage, on long songs (10 and 20 minutes).

The song is the demo song tiled to length (stereo, 44.1 kHz). One process runs `make_cover` and
`write_cover`; a thread samples the process's resident memory every 20 ms and charges it to the
stage running at that moment, so each stage's number is the highest resident memory seen while it
ran (what it allocated plus what earlier stages still hold). The whole-run peak is the kernel's
VmHWM. `make bench` measures 10 and 20 minutes (the goals: 3 and 3.5 GB), each in a fresh process;
`python -m benchmarks.bench_memory --minutes 10 --separator spleeter` measures one length.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from covergen import pipeline
from .common import write

GOAL_GB = {10: 3.0, 20: 3.5}
DEMO_PATH = Path(pipeline.__file__).parent / "data" / "demo_song.flac"


class StagePeaks:
    """Resident memory sampled every 20 ms, peak kept per named stage."""

    def __init__(self):
        self.stage = "start"
        self.peaks_bytes: dict[str, int] = {}
        self._stop = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss_bytes(self) -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * self._page

    def sample(self) -> None:
        rss = self._rss_bytes()
        self.peaks_bytes[self.stage] = max(self.peaks_bytes.get(self.stage, 0), rss)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.sample()

    def enter(self, stage: str) -> None:
        self.sample()
        self.stage = stage
        self.sample()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _vm_hwm_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def long_song(path: Path, minutes: float) -> Path:
    """The demo song tiled to `minutes` (stereo, 44.1 kHz, 16-bit FLAC)."""
    y, sr = sf.read(DEMO_PATH, dtype="float32", always_2d=True)
    n = int(minutes * 60 * sr)
    sf.write(path, np.tile(y, (int(np.ceil(n / len(y))), 1))[:n], sr, subtype="PCM_16")
    return path


def run(minutes: float, *, genre: str = "jazz", separator: str = "auto", use_cache: bool = False) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        song = long_song(Path(tmp) / f"long_{minutes:g}min.flac", minutes)
        t0 = time.perf_counter()
        with StagePeaks() as peaks:
            cover = pipeline.make_cover(song, genre=genre, separator=separator, use_cache=use_cache,
                                        on_progress=lambda stage, fraction: peaks.stage != stage and peaks.enter(stage))
            peaks.enter("write")
            pipeline.write_cover(cover, Path(tmp) / "cover.wav")
            peaks.sample()
        seconds = time.perf_counter() - t0
    return {"minutes": minutes, "genre": genre, "separator": cover.report["separation"].get("separator"),
            "seconds": round(seconds, 1),
            "peak_gb": round(_vm_hwm_bytes() / 1e9, 2),
            "stage_peak_gb": {k: round(v / 1e9, 2) for k, v in peaks.peaks_bytes.items()},
            "stages_s": cover.report["stages_s"]}


def markdown(results: list[dict], *, cached: bool = False) -> str:
    lines = ["## Memory: peak resident memory of `covergen make` on long songs\n",
             f"The demo song tiled to length (stereo, 44.1 kHz), {results[0]['genre']} preset, "
             f"{'cached stems and lead sheet' if cached else 'separation and analysis included (no caches)'}, "
             "one fresh process per length. Whole run: the kernel's VmHWM; per stage: the highest resident memory "
             "sampled while it ran (it includes what earlier stages still hold). `check` runs twice: waiting for its "
             "reference on the original (computed in a second thread beside the arrangement; before it on songs "
             "over `pipeline.SIDE_BY_SIDE_MAX_S`, 12 minutes), and its verdict on the cover after the mix.\n",
             "| song | separator | whole run, GB | goal, GB | met | wall time, s |", "| --- | --- | --- | --- | --- | --- |"]
    for r in results:
        goal = GOAL_GB.get(int(r["minutes"]))
        met = "" if goal is None else ("yes" if r["peak_gb"] <= goal else "**no**")
        lines.append(f"| {r['minutes']:g} min | {r.get('separator')} | **{r['peak_gb']:.2f}** | "
                     f"{goal if goal else ''} | {met} | {r['seconds']:.0f} |")
    stages = list(dict.fromkeys(k for r in results for k in r["stage_peak_gb"]))
    lines += ["", "| stage | " + " | ".join(f"{r['minutes']:g} min: GB (s)" for r in results) + " |",
              "| --- |" + " --- |" * len(results)]
    for stage in stages:
        cells = [f"{r['stage_peak_gb'][stage]:.2f} ({r['stages_s'].get(stage, '')})" if stage in r["stage_peak_gb"]
                 else "" for r in results]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[10.0, 20.0])
    parser.add_argument("--genre", default="jazz")
    parser.add_argument("--cache", action="store_true", help="reuse cached stems and lead sheet")
    parser.add_argument("--separator", default="auto",
                        help="as `make --separator`; auto picks htdemucs only where its weights were fetched, "
                             "so `spleeter` measures what a fresh install runs")
    parser.add_argument("--one", type=Path, default=None, help=argparse.SUPPRESS)  # child: one length, JSON here
    args = parser.parse_args()
    if args.one is not None:
        result = run(args.minutes[0], genre=args.genre, separator=args.separator, use_cache=args.cache)
        args.one.write_text(json.dumps(result))
        return
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:  # a fresh process each: VmHWM is the whole process's peak
            out = Path(tmp) / f"{minutes:g}.json"
            cmd = [sys.executable, "-m", "benchmarks.bench_memory", "--minutes", str(minutes), "--genre", args.genre,
                   "--separator", args.separator, "--one", str(out)] + (["--cache"] if args.cache else [])
            subprocess.run(cmd, check=True)
            results.append(json.loads(out.read_text()))
            print(f"[bench memory] {minutes:g} min: {results[-1]['peak_gb']:.2f} GB", flush=True)
    text = markdown(results, cached=args.cache)
    write("memory", {"runs": results}, text)
    print(text)


if __name__ == "__main__":
    main()
