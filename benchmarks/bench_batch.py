"""Songs per minute of `covergen batch`: local `--jobs 1`, `--jobs 2`, and `--cluster local:2` (Dask).

The same folder for each: 4 x 20 s crops of the bundled demo song, rock preset (no instrument
models), run as a user runs it (`python -m covergen.cli batch ... --json`), so wall time includes
start-up: worker processes, imports, a LocalCluster. Each run gets its own empty stem cache
(COVERGEN_CACHE), so every run separates every song. The cluster run is skipped when
dask.distributed is not installed.
"""
from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

from .common import REPO, write

DEMO_SONG = REPO / "covergen" / "data" / "demo_song.flac"
CROP_STARTS_S = (0, 8, 16, 24)
CROP_S = 20
RUNS = {"--jobs 1": ["--jobs", "1"], "--jobs 2": ["--jobs", "2"], "--cluster local:2": ["--cluster", "local:2"]}


def _folder(root: Path) -> Path:
    folder = root / "music"
    folder.mkdir()
    info = sf.info(DEMO_SONG)
    for start_s in CROP_STARTS_S:
        y, sr = sf.read(DEMO_SONG, dtype="float32", start=int(start_s * info.samplerate),
                        frames=int(CROP_S * info.samplerate))
        sf.write(folder / f"demo-{start_s:02d}s.wav", y, sr)
    return folder


def _run(folder: Path, root: Path, name: str, args: list[str]) -> dict:
    slug = name.strip("-").replace(" ", "-").replace(":", "")
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "COVERGEN_CACHE": str(root / f"cache-{slug}")}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "covergen.cli", "batch", str(folder), "--to", "rock",
                           "-o", str(root / f"covers-{slug}"), *args, "--json"], env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=1800)
    wall_s = time.perf_counter() - t0
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    done = [r for r in results if r["status"] == "done"]
    return {"run": name, "exit_code": proc.returncode, "songs": len(results), "done": len(done),
            "wall_s": round(wall_s, 2), "songs_per_min": round(60 * len(done) / wall_s, 2),
            "median_song_s": round(statistics.median(r["seconds"] for r in done), 2) if done else None,
            "errors": [r["error"] for r in results if r["status"] == "failed"],
            "stderr_tail": proc.stderr[-500:] if proc.returncode else ""}


def main() -> dict:
    has_dask = importlib.util.find_spec("distributed") is not None
    rows = []
    with tempfile.TemporaryDirectory(prefix="covergen-bench-batch-") as tmp:
        root = Path(tmp)
        folder = _folder(root)
        for name, args in RUNS.items():
            if "--cluster" in args and not has_dask:
                rows.append({"run": name, "skipped": "dask.distributed not installed (pip install covergen[dask])"})
                continue
            rows.append(_run(folder, root, name, args))
    lines = ["# Batch: songs per minute", "",
             f"{len(CROP_STARTS_S)} x {CROP_S} s crops of the demo song, `--to rock`, cold stem cache per run; "
             f"wall time of the whole command (start-up included), {os.cpu_count()} CPUs.", "",
             "| run | songs done | wall s | songs/min | median s per song | exit |", "|---|---|---|---|---|---|"]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| `{r['run']}` | skipped: {r['skipped']} | | | | |")
            continue
        lines.append(f"| `{r['run']}` | {r['done']}/{r['songs']} | {r['wall_s']:.1f} | {r['songs_per_min']:.2f} | "
                     f"{r['median_song_s']} | {r['exit_code']} |")
    lines.append("")
    summary = {r["run"]: r.get("songs_per_min") for r in rows}
    write("batch", {"crop_s": CROP_S, "songs": len(CROP_STARTS_S), "preset": "rock", "rows": rows,
                    "songs_per_min": summary}, "\n".join(lines))
    return summary


if __name__ == "__main__":
    print(main())
