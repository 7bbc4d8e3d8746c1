"""What every benchmark records: device, commit, and where results go."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import threading
import time
from pathlib import Path

from benchmarks.evaluation import SHARED_DATA

REPO = Path(__file__).resolve().parents[1]
SHARED = SHARED_DATA
OUT = REPO / "bench"


def environment() -> dict:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    import torch

    return {"commit": commit, "date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": platform.machine(),
            "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "device": "cuda" if torch.cuda.is_available() else "cpu", "python": platform.python_version()}


def write(name: str, data: dict, markdown: str) -> None:
    OUT.mkdir(exist_ok=True)
    data = {"environment": environment(), **data}
    (OUT / f"{name}.json").write_text(json.dumps(data, indent=2, default=float))
    (OUT / f"{name}.md").write_text(markdown)


class PeakRSS:
    """Samples this process's resident memory every 20 ms; `peak_mb()` since the last `reset()`."""

    def __init__(self):
        self._peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._page = os.sysconf("SC_PAGE_SIZE")

    def _rss(self) -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * self._page

    def _run(self):
        while not self._stop.wait(0.02):
            self._peak = max(self._peak, self._rss())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()

    def reset(self) -> None:
        self._peak = self._rss()

    def peak_mb(self) -> float:
        return max(self._peak, self._rss()) / 2**20
