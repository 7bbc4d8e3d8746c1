"""Per-process counters: songs covered and models read from disk, to check that workers keep their models.

A batch worker process must load each model once and reuse it for every song it gets (the
per-process caches in `timbre.load_instrument` and separate's Demucs loader). The loaders call
`record_load` on every real read from disk -- a cache miss, not a cache hit; `snapshot()`
returns the counts. On a Dask cluster read them from every worker with
`client.run(worker_stats.snapshot)`.
"""
from __future__ import annotations

import os
import threading
from collections import Counter

__all__ = ["record_load", "count_song", "snapshot"]

_lock = threading.Lock()
_loads: Counter[str] = Counter()
_songs = 0


def record_load(name: str) -> None:
    """A model named `name` was read from disk in this process."""
    with _lock:
        _loads[name] += 1


def count_song() -> None:
    """One more song handled by this process."""
    global _songs
    with _lock:
        _songs += 1


def snapshot() -> dict:
    """{"pid", "songs", "model_loads": {model name: loads}} for this process."""
    with _lock:
        return {"pid": os.getpid(), "songs": _songs, "model_loads": dict(_loads)}
