"""covergen never writes over its input: every command that writes audio refuses an output that is
the input (same path, a symlink, a hard link) with one line and exit code 2, before any work, and
leaves the input's bytes as they were. `batch` never covers its own output folder or files it wrote."""
import hashlib
import json
import logging
import os

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from covergen import audio, batch, presets, separate
from covergen.cli import app
from covergen.errors import OutputIsInputError

from .conftest import sine, write

runner = CliRunner()


def _run(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _assert_refused(result, named, protected):
    """Exit 2, one error line naming the file, the protected files' bytes unchanged, no temp files left."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert named.name in lines[0] and "input" in lines[0], lines[0]
    for path, digest in protected.items():
        assert _sha256(path) == digest, f"{path} changed"
        assert not [p for p in path.parent.iterdir() if ".part" in p.name]


@pytest.fixture
def song(tmp_path):
    return write(tmp_path / "song.wav", np.stack([sine(440, 3, 22050), sine(330, 3, 22050)]), 22050)


def _link(tmp_path, song, kind):
    """The song itself, a symlink to it, or a hard link to it: three names for one file."""
    if kind == "same path":
        return song
    link = tmp_path / f"{kind.replace(' ', '-')}.wav"
    (os.symlink if kind == "symlink" else os.link)(song, link)
    return link


@pytest.mark.parametrize("kind", ["same path", "symlink", "hard link"])
def test_make_refuses_output_that_is_the_input(tmp_path, song, kind):
    before = {song: _sha256(song)}
    out = _link(tmp_path, song, kind)
    result = _run("make", song, "--to", "jazz", "-o", out)
    _assert_refused(result, out, before)


def test_make_refuses_input_reached_through_a_symlink(tmp_path, song):
    link = tmp_path / "link.wav"
    link.symlink_to(song)
    before = {song: _sha256(song)}
    _assert_refused(_run("make", link, "--to", "jazz", "-o", song), song, before)


def test_make_refuses_report_and_stems_dir_over_the_input(tmp_path, song):
    before = {song: _sha256(song)}
    _assert_refused(_run("make", song, "--to", "jazz", "-o", tmp_path / "c.wav", "--report", song), song, before)
    # the song sits where --stems-dir would put the separated vocals
    stems = tmp_path / "stems"
    (stems / "separated").mkdir(parents=True)
    vocals = stems / "separated" / "vocals.wav"
    os.link(song, vocals)
    _assert_refused(_run("make", vocals, "--to", "jazz", "-o", tmp_path / "c.wav", "--stems-dir", stems),
                    vocals, before)
    _assert_refused(_run("make", song, "--to", "jazz", "-o", tmp_path / "c.wav", "--stems-dir", song), song, before)
    assert not (tmp_path / "c.wav").exists()


def test_make_refuses_report_over_the_profile_or_preset(tmp_path, song):
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({"version": 1, "favourites": [{"genre": "jazz", "share": 1.0}]}))
    preset = tmp_path / "mine.toml"
    preset.write_text((presets.presets_dir() / "jazz.toml").read_text())
    before = {profile: _sha256(profile), preset: _sha256(preset)}
    _assert_refused(_run("make", song, "--to", preset, "-o", tmp_path / "c.wav", "--report", preset), preset, before)
    result = _run("make", song, "--to", "auto", "--profile", profile, "-o", tmp_path / "c.wav", "--report", profile,
                  "-q")
    _assert_refused(result, profile, before)


@pytest.fixture
def stems_folder(tmp_path):
    folder = tmp_path / "stems"
    folder.mkdir()
    for i, name in enumerate(separate.STEMS):
        write(folder / f"{name}.wav", np.stack([sine(220 * (i + 1), 2, 44100)] * 2), 44100)
    return folder


@pytest.mark.parametrize("kind", ["same path", "symlink", "hard link"])
def test_mix_refuses_output_that_is_a_stem(tmp_path, stems_folder, kind):
    vocals = stems_folder / "vocals.wav"
    before = {f: _sha256(f) for f in stems_folder.iterdir()}
    out = _link(tmp_path, vocals, kind)
    _assert_refused(_run("mix", stems_folder, "--to", "jazz", "-o", out), out, before)


def test_mix_refuses_report_over_a_stem(tmp_path, stems_folder):
    before = {f: _sha256(f) for f in stems_folder.iterdir()}
    drums = stems_folder / "drums.wav"
    _assert_refused(_run("mix", stems_folder, "--to", "jazz", "-o", tmp_path / "m.wav", "--report", drums),
                    drums, before)


@pytest.mark.parametrize("kind", ["same path", "symlink", "hard link"])
def test_transfer_refuses_output_that_is_the_input(tmp_path, song, kind):
    before = {song: _sha256(song)}
    out = _link(tmp_path, song, kind)
    _assert_refused(_run("transfer", song, "--instrument", "trumpet", "-o", out), out, before)


def test_separate_refuses_to_write_a_stem_over_the_input(tmp_path, song):
    # `separate root/embedded/vocals/vocals.wav -o root` would write root/embedded/vocals/vocals.wav
    folder = tmp_path / "root" / "embedded" / "vocals"
    folder.mkdir(parents=True)
    vocals = folder / "vocals.wav"
    os.replace(song, vocals)
    before = {vocals: _sha256(vocals)}
    result = _run("separate", vocals, "-o", tmp_path / "root", "--separator", "embedded")
    _assert_refused(result, vocals, before)


def test_batch_refuses_an_output_hard_linked_to_a_song(tmp_path, song):
    music, covers = tmp_path / "music", tmp_path / "covers"
    music.mkdir()
    covers.mkdir()
    os.replace(song, music / "a.wav")
    os.link(music / "a.wav", covers / "a-jazz.wav")
    before = {music / "a.wav": _sha256(music / "a.wav")}
    result = _run("batch", music, "--to", "jazz", "-o", covers)
    _assert_refused(result, covers / "a-jazz.wav", before)


def test_check_output_not_input_names_the_link(tmp_path, song):
    link = tmp_path / "l.wav"
    link.symlink_to(song)
    with pytest.raises(OutputIsInputError, match="through a link"):
        audio.check_output_not_input([link], [song])
    audio.check_output_not_input([tmp_path / "other.wav", None], [song, None])  # different or absent: fine
    os.link(song, tmp_path / "h.wav")
    assert audio.same_file(tmp_path / "h.wav", song) and not audio.same_file(tmp_path / "nope.wav", song)


# ------------------------------------------------------------------ batch never covers its own files

def test_saved_files_carry_the_covergen_tag(tmp_path):
    y = np.stack([sine(440, 1, 22050)] * 2)
    for name in ("a.wav", "a.flac"):
        audio.save(tmp_path / name, y, sample_rate=22050)
        assert audio.is_covergen_output(tmp_path / name)
        assert np.allclose(sf.read(tmp_path / name, dtype="float32")[0].T, y, atol=1e-4)
    foreign = write(tmp_path / "foreign.wav", y, 22050)
    assert not audio.is_covergen_output(foreign)
    (tmp_path / "junk.wav").write_bytes(b"not audio")
    assert not audio.is_covergen_output(tmp_path / "junk.wav")


def test_find_songs_skips_output_folder_inside_input_and_covergen_files(tmp_path, caplog):
    music = tmp_path / "music"
    (music / "sub").mkdir(parents=True)
    (music / "covers" / "sub").mkdir(parents=True)
    y = np.stack([sine(440, 1, 22050)] * 2)
    write(music / "a.wav", y, 22050)
    write(music / "sub" / "b.flac", y, 22050)
    write(music / "covers" / "old-user-file.wav", y, 22050)  # not tagged, but inside the output folder
    audio.save(music / "covers" / "sub" / "b-jazz.wav", y, sample_rate=22050)
    audio.save(music / "a-rock.wav", y, sample_rate=22050)  # a cover written next to its song earlier
    (music / ".a-jazz.wav.x1y2.part.wav").write_bytes(b"")  # an interrupted write's temp file
    (music / "sub" / "c-jazz.wav.part").write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="covergen.batch"):
        songs = batch.find_songs(music, recursive=True, out_dir=music / "covers")
    assert songs == [music / "a.wav", music / "sub" / "b.flac"]
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2, warnings
    assert any("output folder" in w and "covers" in w for w in warnings)
    assert any("1 file covergen wrote" in w and "a-rock.wav" in w for w in warnings)


def test_find_songs_keeps_a_sibling_output_folder_and_all_songs_when_output_is_elsewhere(tmp_path, caplog):
    music = tmp_path / "music"
    music.mkdir()
    write(music / "a.wav", sine(440, 1, 22050), 22050)
    with caplog.at_level(logging.WARNING, logger="covergen.batch"):
        assert batch.find_songs(music, recursive=True, out_dir=tmp_path / "covers") == [music / "a.wav"]
        # the output folder is the input folder itself: songs stay, only tagged covers go
        assert batch.find_songs(music, recursive=True, out_dir=music) == [music / "a.wav"]
    assert not caplog.records


@pytest.mark.slow
def test_batch_run_twice_into_its_own_folder_does_not_cover_the_covers(tmp_path, demo_song):
    """End to end: covers written inside the input folder are not picked up by the next recursive run."""
    y, sr = demo_song
    music = tmp_path / "music"
    music.mkdir()
    write(music / "song.wav", y[:, sr * 2:sr * 14], sr)
    first = _run("batch", music, "--to", "rock", "-o", music / "covers", "--recursive", "--json", "-q")
    assert first.exit_code == 0, first.output
    assert [json.loads(line)["status"] for line in first.stdout.splitlines()] == ["done"]
    assert audio.is_covergen_output(music / "covers" / "song-rock.wav")
    second = _run("batch", music, "--to", "rock", "-o", music / "covers", "--recursive", "--json",
                  "--skip-existing", "-q")
    assert second.exit_code == 0, second.output
    rows = [json.loads(line) for line in second.stdout.splitlines()]
    assert [(os.path.basename(r["path"]), r["status"]) for r in rows] == [("song.wav", "skipped")]
    assert not (music / "covers" / "covers").exists()


@pytest.mark.parametrize("kind", ["same path", "symlink", "hard link"])
def test_arrange_refuses_output_or_report_that_is_the_input(tmp_path, song, kind):
    before = {song: _sha256(song)}
    out = _link(tmp_path, song, kind)
    _assert_refused(_run("arrange", song, "--to", "jazz", "-o", out), out, before)
    _assert_refused(_run("arrange", song, "--to", "jazz", "-o", tmp_path / "band.wav", "--report", out), out, before)


@pytest.mark.parametrize("command", ["profile", "index"])
def test_profile_and_index_refuse_to_write_over_a_song(tmp_path, song, command):
    music = tmp_path / "music"
    music.mkdir()
    os.replace(song, music / "a.wav")
    before = {music / "a.wav": _sha256(music / "a.wav")}
    _assert_refused(_run(command, music, "-o", music / "a.wav"), music / "a.wav", before)
