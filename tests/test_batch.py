"""`covergen batch` over a folder of good and bad files, as a shell script would run it."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from .conftest import DEMO_SONG, SPEECH, sine, write


def _robustness_folder(root):
    """Good songs at odd formats beside every kind of bad file. Returns (folder, good names, bad names)."""
    import librosa

    folder = root / "music"
    (folder / "sub").mkdir(parents=True)
    y, sr = sf.read(DEMO_SONG, dtype="float32", start=44100 * 2, frames=44100 * 12)
    sf.write(folder / "song-8k-mono.wav", librosa.resample(y.mean(axis=1), orig_sr=sr, target_sr=8000), 8000)
    sf.write(folder / "sub" / "song-96k-24bit.wav", librosa.resample(y.T, orig_sr=sr, target_sr=96000).T, 96000,
             subtype="PCM_24")
    (folder / "corrupt-header.wav").write_bytes(b"RIFF\xff\xff\x00\x00WAVEfmt " + bytes(range(200)))
    whole = write(root / "whole.wav", sine(440, 3, 44100), 44100)
    (folder / "truncated.wav").write_bytes(whole.read_bytes()[:50_000])
    (folder / "zero-length.wav").write_bytes(b"")
    write(folder / "five-ms.wav", sine(440, 0.005, 44100), 44100)
    write(folder / "silence.flac", np.zeros((2, 44100 * 4), np.float32), 44100)
    (folder / "notes.wav").write_text("shopping list: milk, eggs\n" * 40)
    (folder / "speech.ogg").write_bytes(SPEECH.read_bytes())
    bad = ["corrupt-header.wav", "truncated.wav", "zero-length.wav", "five-ms.wav", "silence.flac", "notes.wav",
           "speech.ogg"]
    return folder, ["song-8k-mono.wav", "song-96k-24bit.wav"], bad


def _batch(*args, cwd):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "covergen.cli", "batch", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)


@pytest.fixture(scope="module")
def batch_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    folder, good, bad = _robustness_folder(root)
    result = _batch(folder, "--to", "rock", "-o", root / "covers", "--recursive", "--jobs", "2", "--json", cwd=root)
    return root, folder, good, bad, result


@pytest.mark.slow
def test_batch_covers_good_files_and_reports_each_bad_one(batch_run):
    root, folder, good, bad, result = batch_run
    assert result.returncode == 1, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    by_name = {os.path.basename(r["path"]): r for r in lines}
    assert set(by_name) == set(good) | set(bad)
    for name in good:
        assert by_name[name]["status"] == "done", by_name[name]
        assert os.path.isfile(by_name[name]["output"])
    assert (root / "covers" / "sub" / "song-96k-24bit-rock.wav").is_file()  # tree mirrored
    assert sf.info(root / "covers" / "song-8k-mono-rock.wav").samplerate == 8000
    assert sf.info(root / "covers" / "sub" / "song-96k-24bit-rock.wav").samplerate == 96000
    for name in bad:
        r = by_name[name]
        assert r["status"] == "failed" and r["output"] is None
        assert name in r["error"] and "\n" not in r["error"]
    covers = sorted(p.name for p in (root / "covers").rglob("*") if p.is_file())
    assert covers == sorted(["song-8k-mono-rock.wav", "song-96k-24bit-rock.wav"])  # no partial files
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_rerun_with_skip_existing_resumes(batch_run):
    root, folder, good, bad, _ = batch_run
    result = _batch(folder, "--to", "rock", "-o", root / "covers", "--recursive", "--skip-existing", "--json",
                    cwd=root)
    lines = {os.path.basename(r["path"]): r for r in map(json.loads, result.stdout.splitlines())}
    assert all(lines[n]["status"] == "skipped" for n in good)
    assert result.returncode == 1  # the bad files still fail


def test_batch_exit_codes_for_all_good_and_usage(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    ok = _batch(empty, "--to", "rock", "-o", tmp_path / "out", cwd=tmp_path)
    assert ok.returncode == 0 and "0 covered" in ok.stderr
    assert _batch(tmp_path / "missing", "--to", "rock", cwd=tmp_path).returncode == 2
    unknown = _batch(empty, "--to", "polka", cwd=tmp_path)
    assert unknown.returncode == 1 and "unknown genre" in unknown.stderr
