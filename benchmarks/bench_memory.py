"""Peak resident memory of `covergen make`, stage by stage, on a long song (default 10 minutes).

The song is the demo song tiled to length (stereo, 44.1 kHz). One process runs `make_cover` and
`write_cover`; a thread samples the process's resident memory every 20 ms and charges it to the
stage running at that moment, so each stage's number is the highest resident memory seen while it
ran (what it allocated plus what earlier stages still hold). The whole-run peak is the kernel's
VmHWM. `python -m benchmarks.bench_memory --minutes 20` for the 20-minute case.
"""
from __future__ import annotations

import argparse
import os
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


def markdown(result: dict, *, cached: bool = False) -> str:
    minutes = result["minutes"]
    goal = GOAL_GB.get(int(minutes))
    lines = [f"## Memory: peak resident memory of `covergen make` on a {minutes:g}-minute song\n",
             f"Demo song tiled to {minutes:g} min (stereo, 44.1 kHz), jazz preset, separator {result.get('separator')}, "
             f"{'cached stems' if cached else 'separation included'}; {result['seconds']:.0f} s in all. "
             f"Whole run: **{result['peak_gb']:.2f} GB** (VmHWM)" + (f", goal <= {goal:g} GB.\n" if goal else ".\n"),
             "| stage | peak resident memory while it ran, GB | wall time, s |", "| --- | --- | --- |"]
    for stage, gb in result["stage_peak_gb"].items():
        lines.append(f"| {stage} | {gb:.2f} | {result['stages_s'].get(stage, '')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--cache", action="store_true", help="reuse cached stems (skips separation's work)")
    parser.add_argument("--separator", default="auto",
                        help="as `make --separator`; auto picks htdemucs only where its weights were fetched, "
                             "so `spleeter` measures what a fresh install runs")
    args = parser.parse_args()
    result = run(args.minutes, separator=args.separator, use_cache=args.cache)
    text = markdown(result, cached=args.cache)
    write("memory", result, text)
    print(text)


if __name__ == "__main__":
    main()
