"""Batch covers of a music folder: one task per song, N worker processes, resumable.

Every song's output goes to OUTDIR mirroring the input tree, written atomically, so an
interrupted run leaves only finished files and `skip_existing` resumes it. One bad file
never stops the rest: its error becomes that song's result. Workers share the on-disk
stem cache, and each process keeps its loaded models for every song it gets.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

from . import api, audio
from .errors import CovergenError

__all__ = ["Task", "Result", "find_songs", "plan", "cover_task", "run_local"]

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Task:
    song: str
    output: str
    genre: str
    separator: str = "auto"
    seed: int = 0


@dataclass
class Result:
    path: str
    status: str  # "done", "skipped", "failed"
    output: str | None
    seconds: float
    error: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def find_songs(folder: Path, *, recursive: bool = False, out_dir: Path | None = None) -> list[Path]:
    """Audio files (`audio.find_audio`) in `folder`, sorted, without anything covergen wrote.

    Skipped: hidden files and folders, covergen's temp files (`.part`), everything inside `out_dir` when it
    lies inside `folder` (so a recursive run never covers the covers), and files covergen wrote
    anywhere (tagged by `audio.save`: covers next to their songs, kept stems). Each kind of skip is
    said once, as a warning.
    """
    folder = Path(folder)
    root = folder.resolve()
    out_root = Path(out_dir).resolve() if out_dir is not None else None
    skip_out = out_root is not None and out_root != root and _inside(out_root, root)
    songs, skipped_out, ours = [], 0, []
    for p in audio.find_audio(folder, recursive=recursive):
        if ".part" in p.name:
            continue
        if skip_out and _inside(p.resolve().parent, out_root):
            skipped_out += 1
        elif p.suffix.lower() in (".wav", ".flac") and audio.is_covergen_output(p):
            ours.append(p)
        else:
            songs.append(p)
    if skip_out and (skipped_out or recursive):
        log.warning("skipping the output folder %s: it lies inside %s (%d files there)", out_dir, folder, skipped_out)
    if ours:
        log.warning("skipping %d file%s covergen wrote (e.g. %s)", len(ours), "s" * (len(ours) > 1), ours[0])
    return sorted(songs)


def plan(folder: Path, out_dir: Path, *, genre: str, recursive: bool = False, skip_existing: bool = False,
         fmt: str = "wav", separator: str = "auto", seed: int = 0) -> tuple[list[Task], list[Result]]:
    """Tasks to run, and results for songs skipped because their output already exists."""
    tasks, skipped = [], []
    for song in find_songs(folder, recursive=recursive, out_dir=out_dir):
        rel = song.relative_to(folder)
        output = Path(out_dir) / rel.parent / api.output_name(song.stem, api.genre_name(genre), fmt=fmt)
        if skip_existing and output.is_file():
            skipped.append(Result(str(song), "skipped", str(output), 0.0))
            continue
        audio.check_output_not_input([output], [song])  # e.g. a hard link in OUTDIR to a song: refuse before any work
        tasks.append(Task(str(song), str(output), genre, separator, seed))
    return tasks, skipped


def cover_task(task: Task) -> Result:
    """Cover one song; a CovergenError becomes a failed Result, never an exception."""
    t0 = time.perf_counter()
    try:
        out = Path(task.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        api.make_cover(Path(task.song), out, genre=task.genre, separator=task.separator, seed=task.seed)
        return Result(task.song, "done", task.output, round(time.perf_counter() - t0, 3))
    except CovergenError as err:
        return Result(task.song, "failed", None, round(time.perf_counter() - t0, 3), str(err))
    except OSError as err:
        return Result(task.song, "failed", None, round(time.perf_counter() - t0, 3),
                      f"{task.song}: {err.strerror or err}")


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    logging.getLogger("covergen").setLevel(logging.ERROR)


def run_local(tasks: list[Task], *, jobs: int = 1) -> Iterator[Result]:
    """Run tasks on `jobs` worker processes (in this process when jobs == 1); yields results as they finish."""
    if jobs <= 1:
        for task in tasks:
            yield cover_task(task)
        return
    threads = max(1, (os.cpu_count() or 1) // jobs)
    # spawn, not fork: forking a process whose OpenMP/torch threads already ran can deadlock.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_init_worker,
                             initargs=(threads,)) as pool:
        futures = {pool.submit(cover_task, t): t for t in tasks}
        for future in as_completed(futures):
            try:
                yield future.result()
            except Exception as err:  # a worker that died (killed, out of memory): report, keep going
                task = futures[future]
                yield Result(task.song, "failed", None, 0.0, f"{task.song}: worker died ({type(err).__name__})")
