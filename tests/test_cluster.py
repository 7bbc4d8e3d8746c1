"""`covergen batch --cluster`: a real LocalCluster of 2 worker processes, CPU only.

The same folder of 2 short good songs and 2 bad files as a local `--jobs 2` run must give the same
covers, JSON lines (but for seconds) and exit code; each worker loads its models once; killing
the workers mid-batch loses no song.
"""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from .conftest import DEMO_SONG

distributed = pytest.importorskip("distributed")

GOOD = {"song-a.wav": 2, "song-b.wav": 20}  # 8 s crops of the demo song, by start second
BAD = ["a-empty.flac", "a-notes.wav"]  # sorted first: on 2 workers they finish while the good songs start


def _crop(path, start_s, seconds=8):
    y, sr = sf.read(DEMO_SONG, dtype="float32", start=44100 * start_s, frames=44100 * seconds)
    sf.write(path, y, sr)


def _music(root, copies=1):
    folder = root / "music"
    folder.mkdir()
    for name, start_s in GOOD.items():
        for i in range(copies):
            _crop(folder / (name if i == 0 else name.replace(".wav", f"-{i}.wav")), start_s)
    (folder / "a-empty.flac").write_bytes(b"")
    (folder / "a-notes.wav").write_text("shopping list: milk, eggs\n" * 40)
    return folder


def _env(cache, **extra):
    return {**os.environ, "PYTHONWARNINGS": "ignore", "COVERGEN_CACHE": str(cache), **extra}


def _batch(*args, cwd, env):
    return subprocess.run([sys.executable, "-m", "covergen.cli", "batch", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300)


def _lines(stdout):
    return {os.path.basename(r["path"]): r for r in map(json.loads, stdout.splitlines())}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same folder through `--jobs 2` and `--cluster local:2`, each from its own folder writing to covers/."""
    root = tmp_path_factory.mktemp("cluster")
    folder = _music(root)
    env = _env(tmp_path_factory.getbasetemp() / "cache")  # the stem cache conftest gives every test
    out = {}
    for name, how in (("local", ["--jobs", "2"]), ("cluster", ["--cluster", "local:2"])):
        (root / name).mkdir()
        t0 = time.perf_counter()
        out[name] = _batch(folder, "--to", "rock", "-o", "covers", *how, "--json", cwd=root / name, env=env)
        out[name].wall_s = time.perf_counter() - t0
    return root, out


@pytest.mark.slow
def test_cluster_batch_matches_local_jobs(runs):
    root, out = runs
    local, cluster = out["local"], out["cluster"]
    assert cluster.returncode == local.returncode == 1, cluster.stderr  # the bad files fail
    assert "Traceback" not in cluster.stderr, cluster.stderr
    by_local, by_cluster = _lines(local.stdout), _lines(cluster.stdout)
    assert len(cluster.stdout.splitlines()) == len(by_cluster) == len(GOOD) + len(BAD)  # each song once
    for lines in (by_local, by_cluster):
        for r in lines.values():
            r.pop("seconds")
    assert by_cluster == by_local
    assert all(by_cluster[n]["status"] == "done" for n in GOOD)
    assert all(by_cluster[n]["status"] == "failed" and n in by_cluster[n]["error"] for n in BAD)
    for name in GOOD:
        cover = by_cluster[name]["output"]
        a, sr_a = sf.read(root / "local" / cover, dtype="float32")
        b, sr_b = sf.read(root / "cluster" / cover, dtype="float32")
        assert sr_a == sr_b == 44100
        np.testing.assert_array_equal(a, b)
    made = sorted(p.name for p in (root / "cluster" / "covers").rglob("*") if p.is_file())
    assert made == sorted(n.replace(".wav", "-rock.wav") for n in GOOD)  # nothing half-written


@pytest.mark.slow
def test_cluster_rerun_with_skip_existing_resumes(runs, tmp_path_factory):
    """Every cover already there: all skipped, exit 0, and no cluster is even started."""
    root, _ = runs
    again = root / "music-again"
    again.mkdir()
    for name in GOOD:
        (again / name).write_bytes((root / "music" / name).read_bytes())
    result = _batch(again, "--to", "rock", "-o", "covers", "--cluster", "local:2", "--skip-existing",
                    "--json", cwd=root / "cluster", env=_env(tmp_path_factory.getbasetemp() / "cache"))
    lines = _lines(result.stdout)
    assert [lines[n]["status"] for n in GOOD] == ["skipped"] * len(GOOD)
    assert result.returncode == 0, result.stderr


def _transfer_preset(tmp_path):
    """A preset that loads an instrument model for every song: a re-voicing preset (no [band]) with the
    vocals on tenor sax. Returns (genre argument, registry names of its models)."""
    from covergen import registry

    if "timbre-tenor_sax" not in set(registry.entries(kind="timbre")):
        pytest.skip("no timbre-tenor_sax in models/registry.toml: no instrument model to count loads of "
                    "(run `make models`)")
    preset = tmp_path / "rock_sax.toml"
    preset.write_text('name = "rock_sax"\ndescription = "rock, vocals on tenor sax"\ntempo_change_bpm = 0\n'
                      '[stems.vocals]\naction = "transfer"\ninstrument = "tenor_sax"\n'
                      '[stems.drums]\naction = "keep"\n[stems.bass]\naction = "keep"\n[stems.other]\naction = "keep"\n'
                      '[master]\ntarget_lufs = -14\ntrue_peak_dbtp = -1\n')
    return str(preset), {"timbre-tenor_sax"}


@pytest.mark.slow
def test_each_worker_loads_its_models_once(tmp_path):
    """4 songs on 2 workers (asking for a GPU slot each): every worker reads each model at most once."""
    from covergen import batch, cluster, worker_stats

    genre, models = _transfer_preset(tmp_path)
    folder = _music(tmp_path, copies=2)
    tasks, _ = batch.plan(folder, tmp_path / "covers", genre=genre)
    tasks = [t for t in tasks if os.path.basename(t.song) not in BAD]
    assert len(tasks) == 4
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0",
                                  resources={"GPU": 1}) as local, \
            distributed.Client(local, set_as_default=False) as client:
        results = list(cluster.run_cluster(tasks, address=local.scheduler_address, gpu_per_task=True))
        stats = client.run(worker_stats.snapshot)
    assert [r.status for r in results] == ["done"] * 4, [r.error for r in results]
    assert len(stats) == 2 and sum(s["songs"] for s in stats.values()) == 4
    for s in stats.values():
        assert all(n <= 1 for n in s["model_loads"].values()), s  # once per worker, not once per song
        # its instruments, one separator and the genre and cover-check models (registry.load counts every model)
        assert set(s["model_loads"]) <= set(models) | {"spleeter", "demucs-htdemucs", "htdemucs-onnx", "separator-unmix",
                                                       "genre-gtzan", "coverid-background"}, s
        if s["songs"]:
            assert set(models) <= set(s["model_loads"]), s
    assert max(s["songs"] for s in stats.values()) >= 2  # some worker reused its models


def _workers(pid):
    import psutil

    return [p for p in psutil.Process(pid).children(recursive=True)
            if any("spawn_main" in part for part in p.cmdline())]


@pytest.mark.slow
def test_killed_worker_loses_no_song(tmp_path):
    """Kill a worker process while it covers a good song: its nanny restarts it, the scheduler
    re-runs the lost song, and every song is reported exactly once."""
    folder = _music(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "covergen.cli", "batch", str(folder), "--to", "rock", "-o",
                             "covers", "--cluster", "local:2", "--json"], cwd=tmp_path, text=True,
                            env=_env(os.environ["COVERGEN_CACHE"]), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    try:
        first = [json.loads(proc.stdout.readline()) for _ in BAD]  # the bad files: workers are up and busy
        assert sorted(os.path.basename(r["path"]) for r in first) == sorted(BAD)
        time.sleep(1.0)  # both workers are now on a good song (one takes seconds)
        workers = _workers(proc.pid)
        assert len(workers) == 2
        assert not list((tmp_path / "covers").glob("song-*"))  # nothing finished: the kill loses work
        workers[0].kill()
        stdout, stderr = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    lines = [*first, *map(json.loads, stdout.splitlines())]
    by_name = _lines("\n".join(json.dumps(r) for r in lines))
    assert len(lines) == len(by_name) == len(GOOD) + len(BAD), lines  # each song reported once
    assert all(by_name[n]["status"] == "done" for n in GOOD), (lines, stderr)
    for name in GOOD:
        assert sf.info(tmp_path / "covers" / name.replace(".wav", "-rock.wav")).duration > 5
    assert proc.returncode == 1  # only the bad files


@pytest.mark.slow
def test_cluster_errors_are_one_line(tmp_path):
    folder = tmp_path / "music"
    folder.mkdir()
    (folder / "notes.wav").write_text("not audio\n")
    blocked = tmp_path / "blocked"  # a `distributed` that cannot be imported, ahead of the real one
    (blocked / "distributed").mkdir(parents=True)
    (blocked / "distributed" / "__init__.py").write_text("raise ImportError('No module named distributed')\n")
    env = _env(tmp_path / "cache")
    no_dask = _batch(folder, "--to", "rock", "--cluster", "local:2", cwd=tmp_path, env={**env, "PYTHONPATH": blocked})
    assert no_dask.returncode == 1
    assert no_dask.stderr.strip().count("\n") == 0 and "pip install covergen[dask]" in no_dask.stderr
    unreachable = _batch(folder, "--to", "rock", "--cluster", "tcp://127.0.0.1:9", cwd=tmp_path,
                         env={**env, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"})
    assert unreachable.returncode == 1 and "cannot reach the Dask scheduler" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr
    assert _batch(folder, "--to", "rock", "--cluster", "local:x", cwd=tmp_path, env=env).returncode == 1
    assert _batch(folder, "--to", "rock", "--gpu-per-task", cwd=tmp_path, env=env).returncode == 2


def test_workers_must_see_the_folders_and_offer_gpus(tmp_path):
    from covergen import batch, cluster
    from covergen.errors import ClusterError

    task = batch.Task(str(tmp_path / "song.wav"), str(tmp_path / "out" / "song-rock.wav"), "rock")
    with distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as local:
        with pytest.raises(ClusterError, match="same path"):
            list(cluster.run_cluster([task], address=local.scheduler_address, shared_paths=[tmp_path / "nowhere"]))
        with pytest.raises(ClusterError, match="GPU"):
            list(cluster.run_cluster([task], address=local.scheduler_address, gpu_per_task=True))
