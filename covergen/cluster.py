"""`covergen batch --cluster`: the same one-task-per-song batch as `batch.run_local`, on a Dask cluster.

`address` is a running scheduler (`tcp://host:8786`, started with `dask scheduler`, workers
with `dask worker tcp://host:8786`) or `local:N`, a LocalCluster of N single-threaded worker
processes on this machine. Songs and covers travel as absolute paths: every worker must see
the input folder and the output folder at the same path (shared storage), and `run_cluster`
checks that before submitting. Covers are written atomically by `batch.cover_task`, so a
re-run with `skip_existing` resumes.

Each worker process keeps the models it loaded for every song it gets (the per-process model
caches; `worker_stats` counts the loads). A song whose worker dies is run again on another
worker (the scheduler's `allowed-failures`, plus `retries` for a crash inside the task); a
song that fails on bad input comes back as a failed `Result`, not an exception, so Dask never
retries it and it is reported once. dask and distributed are imported only when a batch runs.
"""
from __future__ import annotations

import contextlib
import logging
import os
import socket
import uuid
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Iterator, Sequence

from .batch import Result, Task, cover_task
from .errors import ClusterError

__all__ = ["INSTALL_HINT", "RETRIES", "parse_address", "require_distributed", "run_cluster"]

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install covergen[dask]"
RETRIES = 2  # re-runs of a song whose task raised (a bug or a crash inside the worker), on top of the first


def parse_address(address: str) -> tuple[str, int | None]:
    """("local", N) for "local:N", else (address, None) for a scheduler URL like tcp://host:8786."""
    if address.startswith("local:"):
        n = address[len("local:"):]
        if not n.isdigit() or int(n) < 1:
            raise ClusterError(f"--cluster {address}: give local:N with N >= 1 worker processes, e.g. local:2")
        return "local", int(n)
    if "://" not in address or not address.split("://", 1)[1]:
        raise ClusterError(f"--cluster {address}: give a scheduler address like tcp://HOST:8786, or local:N")
    return address, None


def require_distributed():
    """The `distributed` module, or a ClusterError naming the extra to install."""
    try:
        import distributed
    except ImportError as err:
        raise ClusterError(f"--cluster needs dask.distributed ({err}); install it with `{INSTALL_HINT}`") from None
    return distributed


def _probe(paths: Sequence[str], dask_worker=None) -> dict:
    """Runs on every worker: what it offers and which shared paths it cannot use."""
    missing = [p for p in paths if not (os.path.isdir(p) and os.access(p, os.R_OK | os.X_OK))]
    return {"host": socket.gethostname(), "cpus": os.cpu_count() or 1, "nthreads": dask_worker.state.nthreads,
            "resources": dict(dask_worker.state.total_resources), "missing": missing}


_worker_ready = False


def _setup_worker(threads_by_host: dict[str, int]) -> None:
    """Once per worker process: torch threads for its share of the host, quiet logs."""
    global _worker_ready
    if _worker_ready:
        return
    import torch

    threads = threads_by_host.get(socket.gethostname())
    if threads:  # dask starts workers with OMP/BLAS at 1 thread; give each its share of the host, like run_local
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(threads)
        threadpool_limits(threads)
    logging.getLogger("covergen").setLevel(logging.ERROR)
    _worker_ready = True


def _cover_on_worker(task: Task, threads_by_host: dict[str, int]) -> Result:
    """The Dask task: one song, with this worker's cached models. Never raises for a bad song."""
    from . import worker_stats

    _setup_worker(threads_by_host)
    worker_stats.count_song()
    return cover_task(task)


def _absolute(task: Task) -> Task:
    return replace(task, song=os.path.abspath(task.song), output=os.path.abspath(task.output))


def _as_given(result: Result, task: Task, sent: Task) -> Result:
    """The worker's result with paths spelled as the user gave them (as run_local reports them)."""
    error = result.error
    if error:
        for absolute, given in ((sent.output, task.output), (sent.song, task.song),
                                (str(Path(sent.output).parent), str(Path(task.output).parent))):
            error = error.replace(absolute, given)
    return replace(result, path=task.song, output=task.output if result.output else None, error=error)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def _connect(stack: contextlib.ExitStack, address: str, *, gpu_per_task: bool):
    distributed = require_distributed()
    kind, n_workers = parse_address(address)
    if kind == "local":
        try:
            cluster = stack.enter_context(distributed.LocalCluster(
                n_workers=n_workers, processes=True, threads_per_worker=1, dashboard_address=":0",
                # worker processes log shutdown races (heartbeat to a closed scheduler) as ERROR with a
                # traceback; every song's fate already reaches the user as a Result, so keep them quiet.
                silence_logs=logging.CRITICAL, resources={"GPU": 1} if gpu_per_task else None))
        except (OSError, RuntimeError) as err:
            raise ClusterError(f"cannot start a local Dask cluster ({_first_line(err)})") from None
        address = cluster.scheduler_address
    try:
        return stack.enter_context(distributed.Client(address, set_as_default=False))
    except (OSError, TimeoutError) as err:
        raise ClusterError(f"cannot reach the Dask scheduler at {address} ({_first_line(err)}); "
                           "start one with `dask scheduler` and check the address") from None


def _check_workers(client, shared_paths: Sequence[str], *, gpu_per_task: bool, address: str) -> dict[str, int]:
    """Fail before submitting if a worker cannot see the shared folders, or none offers a GPU.

    Returns torch threads per host: the host's CPUs over the worker threads running there.
    """
    facts = client.run(_probe, list(shared_paths))
    if not facts:
        log.warning("the scheduler at %s has no workers yet; songs wait until one joins "
                    "(`dask worker %s`)", address, address)
        return {}
    for worker, f in sorted(facts.items()):
        if f["missing"]:
            raise ClusterError(f"worker {worker} on {f['host']} cannot read {', '.join(f['missing'])}: every worker "
                               "needs the song folder and the output folder at the same path (shared storage)")
    if gpu_per_task and not any(f["resources"].get("GPU", 0) >= 1 for f in facts.values()):
        raise ClusterError("--gpu-per-task: no worker offers a GPU resource; "
                           "start GPU workers with `dask worker ADDRESS --resources GPU=1`")
    threads_on_host: dict[str, int] = defaultdict(int)
    cpus = {}
    for f in facts.values():
        threads_on_host[f["host"]] += f["nthreads"]
        cpus[f["host"]] = f["cpus"]
    return {host: max(1, cpus[host] // n) for host, n in threads_on_host.items()}


def run_cluster(tasks: list[Task], *, address: str, gpu_per_task: bool = False,
                shared_paths: Sequence[str | Path] = ()) -> Iterator[Result]:
    """Run tasks on the Dask cluster at `address` (or local:N); yields results as they finish.

    One task per song, submitted with `retries=RETRIES` and, with `gpu_per_task`, `resources={"GPU": 1}`.
    `shared_paths` (the song and output folders) must exist on every worker. A song whose
    workers keep dying comes back as a failed Result, like `run_local`.
    """
    if not tasks:
        return
    distributed = require_distributed()
    with contextlib.ExitStack() as stack:
        client = _connect(stack, address, gpu_per_task=gpu_per_task)
        folders = sorted({os.path.abspath(p) for p in shared_paths})
        threads_by_host = _check_workers(client, folders, gpu_per_task=gpu_per_task, address=address)
        batch_id = uuid.uuid4().hex[:8]
        futures = {}
        for i, task in enumerate(tasks):
            sent = _absolute(task)
            future = client.submit(_cover_on_worker, sent, threads_by_host, key=f"covergen-song-{batch_id}-{i}",
                                   pure=False, retries=RETRIES, resources={"GPU": 1} if gpu_per_task else None)
            futures[future] = (task, sent)
        for future in distributed.as_completed(list(futures), loop=client.loop):
            task, sent = futures.pop(future)
            try:
                result = _as_given(future.result(), task, sent)
            except distributed.KilledWorker as err:
                result = Result(task.song, "failed", None, 0.0, f"{task.song}: worker died on every try "
                                f"({type(err).__name__}; out of memory? see the worker logs)")
            except Exception as err:  # a bug or a lost scheduler: report this song, keep going
                log.error("%s: task failed after %d retries", task.song, RETRIES, exc_info=err)
                result = Result(task.song, "failed", None, 0.0, f"{task.song}: worker failed ({_first_line(err)})")
            finally:
                future.release()
            yield result
