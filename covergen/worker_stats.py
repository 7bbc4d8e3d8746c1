"""Per-process counters: songs covered and models read from disk, to check that workers keep their models.

A batch worker process must load each model once and reuse it for every song it gets (the
per-process caches in `timbre.load_instrument` and separate's Demucs loader). After
`watch_model_loads()`, every real load in this process -- a cache miss, not a cache hit -- is
counted under the model's name; `snapshot()` returns the counts. On a Dask cluster read them
from every worker with `client.run(worker_stats.snapshot)`.
"""
from __future__ import annotations

import functools
import os
import threading
from collections import Counter

__all__ = ["watch_model_loads", "count_song", "snapshot"]

_lock = threading.Lock()
_loads: Counter[str] = Counter()
_songs = 0
_watching = False


def _count_load(name: str) -> None:
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


def watch_model_loads() -> None:
    """Count every model this process reads from now on (idempotent).

    Wraps the loaders from outside: timbre checkpoints are counted on each read of the file
    (`timbre-<name>`), Demucs models on each `_load_demucs` call its cache did not answer
    (`demucs-<name>`). Only successful loads count.
    """
    global _watching
    with _lock:
        if _watching:
            return
        _watching = True
    from . import separate
    from .timbre import transfer

    read_checkpoint = transfer._read_checkpoint

    @functools.wraps(read_checkpoint)
    def counted_read_checkpoint(name, file):
        ck = read_checkpoint(name, file)
        _count_load(f"{transfer.PREFIX}{name}")
        return ck

    load_demucs = separate._load_demucs

    @functools.wraps(load_demucs)
    def counted_load_demucs(name, repo):
        cached = (name, str(repo)) in separate._demucs_models
        model = load_demucs(name, repo)
        if not cached:
            _count_load(f"demucs-{name}")
        return model

    transfer._read_checkpoint = counted_read_checkpoint
    separate._load_demucs = counted_load_demucs
