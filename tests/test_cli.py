"""The CLI end to end, and every bad input as one error line with exit code 1 and no output file."""
import json

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from covergen import mix
from covergen.cli import app

from .conftest import DEMO_SONG, JAZZ_MIX, SPEECH, TRUMPET, shared_file, sine, write

runner = CliRunner()


def _run(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def jazz_cover(tmp_path_factory):
    """`covergen make --mode revoice` (the first pipeline: stems re-voiced and re-mixed) on the demo song
    at 48 kHz mono (rate and channels differ from the pipeline's)."""
    import librosa

    tmp = tmp_path_factory.mktemp("e2e")
    y, sr = sf.read(DEMO_SONG, dtype="float32")
    song = tmp / "song48k.wav"
    sf.write(song, librosa.resample(y.mean(axis=1), orig_sr=sr, target_sr=48000), 48000, subtype="PCM_24")
    out, report = tmp / "cover.wav", tmp / "cover.json"
    result = _run("make", song, "--to", "jazz", "--mode", "revoice", "-o", out, "--report", report,
                  "--stems-dir", tmp / "stems", "-q")
    return song, out, report, result, tmp


@pytest.mark.slow
def test_make_writes_cover_at_input_rate_and_target_loudness(jazz_cover):
    song, out, report, result, _ = jazz_cover
    assert result.exit_code == 0, result.output
    y, sr = sf.read(out, dtype="float32", always_2d=True)
    assert sr == 48000 and y.shape[1] == 2
    assert mix.integrated_lufs(y.T, sample_rate=sr) == pytest.approx(-14.0, abs=1.0)
    assert mix.true_peak_dbtp(y.T, sample_rate=sr) <= -1.0 + 0.1  # 24-bit rounding


@pytest.mark.slow
def test_make_changes_tempo_by_the_preset(jazz_cover):
    song, out, *_ = jazz_cover
    y_in, sr_in = sf.read(song, dtype="float32", always_2d=True)
    y_out, sr_out = sf.read(out, dtype="float32", always_2d=True)
    before = mix.measure_tempo_bpm(y_in.T, sample_rate=sr_in)
    after = mix.measure_tempo_bpm(y_out.T, sample_rate=sr_out)
    assert after == pytest.approx(before - 15.0, abs=2.0), (before, after)


@pytest.mark.slow
def test_make_report_has_facts_models_and_check(jazz_cover):
    _, out, report, result, tmp = jazz_cover
    r = json.loads(report.read_text())
    assert r["input"]["sample_rate"] == 48000 and r["input"]["channels"] == 1
    assert r["output"]["path"] == str(out) and abs(r["output"]["lufs"] + 14) < 0.5
    assert r["output"]["true_peak_dbtp"] <= -1.0
    for stage in ("load", "analyse", "separate", "transfer", "mix", "check", "total"):
        assert r["stages_s"][stage] >= 0
    assert r["separation"]["separator"] in ("spleeter", "htdemucs") and r["separation"]["model_source"]
    transferred = {t["stem"]: t for t in r["transfer"]}
    assert transferred["vocals"]["instrument"] == "tenor_sax"
    assert transferred["vocals"]["model"]["sha256"] and transferred["vocals"]["model"]["origin"] == "shipped"
    assert r["cover_check"]["status"] == "done" and "score" in r["cover_check"]
    assert r["mix"]["stretch_rate"] == pytest.approx((r["input"]["tempo_bpm"] - 15) / r["input"]["tempo_bpm"], rel=1e-3)
    for stem in ("vocals", "drums", "bass", "other"):
        assert (tmp / "stems" / "separated" / f"{stem}.wav").is_file()


@pytest.mark.slow
def test_arranged_rock_cover_reuses_the_analysis_and_changes_genre(jazz_cover, tmp_path):
    """The default mode: a new rock band on the song's grid and chords, the singer kept over it."""
    song, *_ = jazz_cover
    report, out = tmp_path / "r.json", tmp_path / "rock.flac"
    result = _run("make", song, "--to", "rock", "-o", out, "--report", report, "--stems-dir", tmp_path / "stems")
    assert result.exit_code == 0, result.output
    for stem in ("vocals", "drums", "bass", "other"):  # --stems-dir keeps the stems the arranged mix let go
        assert sf.info(tmp_path / "stems" / "separated" / f"{stem}.wav").duration > 20
    r = json.loads(report.read_text())
    assert r["mode"] == "arrange" and r["band"]["style"] == "rock"
    assert r["separation"]["cache_hit"] is True and r["lead_sheet"]["cache_hit"] is True
    assert r["lead_sheet"]["key"] == "C major" and r["lead_sheet"]["meter"] == "4/4"
    assert r["lead_sheet"]["tempo_bpm"] == pytest.approx(120, abs=2)
    assert r["transfer"][0]["status"] == "voice kept"
    assert r["cover_check"]["verdict"] == "cover"
    assert r["genre"]["transfer_strength"] > 0.1, r["genre"]
    assert abs(r["output"]["lufs"] + 14) < 0.5 and sf.info(out).samplerate == 48000
    y, sr = sf.read(out, dtype="float32", always_2d=True)
    assert mix.measure_tempo_bpm(y.T, sample_rate=sr) == pytest.approx(r["mix"]["tempo_target_bpm"], abs=2.0)
    assert "rock band" in result.stderr and "C major" in result.stderr


@pytest.mark.slow
def test_arranged_classical_cover_replays_the_melody_on_violin(jazz_cover, tmp_path):
    """A preset whose melody is an instrument: the vocal line is re-played by the DDSP violin."""
    song, *_ = jazz_cover
    report = tmp_path / "r.json"
    result = _run("make", song, "--to", "classical", "-o", tmp_path / "classical.wav", "--report", report, "-q")
    assert result.exit_code == 0, result.output
    r = json.loads(report.read_text())
    melody = r["transfer"][0]
    assert r["band"]["style"] == "classical"
    assert melody["status"] == "transferred" and melody["instrument"] == "violin", melody
    assert melody["played_fraction"] > 0.5 and melody["model"]["sha256"]


@pytest.mark.slow
def test_guard_keeps_the_original_harmony_when_the_check_fails(jazz_cover, monkeypatch):
    """An arranged cover the cover check rejects is mixed again with the original `other` stem under the band,
    checked again, and the report says so."""
    from covergen import pipeline

    song, *_ = jazz_cover
    real_check = pipeline._cover_check
    verdicts = iter([{"status": "done", "verdict": "not a cover", "score": 0.05}])
    monkeypatch.setattr(pipeline, "_cover_check", lambda *a: next(verdicts, None) or real_check(*a))
    cover = pipeline.make_cover(song, genre="jazz")
    r = cover.report
    assert set(cover.separated) == {"vocals"}  # the arranged cover let the other stems go; the guard separated again
    assert r["guard"]["first_check"]["verdict"] == "not a cover"
    assert r["guard"]["kept_stems"] == ["other"] and r["mix"]["kept_stems"] == ["other"]
    assert r["cover_check"] == r["guard"]["second_check"] and r["cover_check"]["verdict"] == "cover"
    assert r["guard"]["tries"][0]["other_db"] == pipeline.GUARD_OTHER_DB[0]  # the quietest level is tried first


@pytest.mark.slow
@pytest.mark.parametrize("revoice_better", [True, False])
def test_guard_revoices_when_keeping_the_harmony_is_not_enough(jazz_cover, monkeypatch, revoice_better):
    """Both arranged mixes rejected: the original's parts are re-voiced (the revoice mode), and the
    re-voicing is kept only when the check scores it higher."""
    from covergen import pipeline

    song, *_ = jazz_cover
    real_check = pipeline._cover_check
    rejected = [{"status": "done", "verdict": "not a cover", "score": 0.05},  # the arranged cover, then with the
                {"status": "done", "verdict": "not a cover", "score": 0.04},  # other stem quiet, then at its level
                {"status": "done", "verdict": "not a cover", "score": 0.5 if not revoice_better else 0.06}]
    verdicts = iter(rejected)
    monkeypatch.setattr(pipeline, "_cover_check", lambda *a: next(verdicts, None) or real_check(*a))
    if not revoice_better:  # the re-voicing's own check, made to score under the second
        monkeypatch.setattr(pipeline, "_cover_check", lambda *a: next(verdicts, None) or
                            {**real_check(*a), "score": 0.1, "verdict": "not a cover"})
    cover = pipeline.make_cover(song, genre="jazz")
    r = cover.report
    assert [t["other_db"] for t in r["guard"]["tries"]] == list(pipeline.GUARD_OTHER_DB)
    assert r["guard"]["second_check"] == rejected[2] and "revoice_check" in r["guard"]
    if revoice_better:
        assert r["mode"] == "revoice" and "re-voiced" in r["guard"]["action"]
        assert r["cover_check"] == r["guard"]["revoice_check"] and r["cover_check"]["verdict"] == "cover"
        assert {t["stem"] for t in r["transfer"] if t.get("status") == "transferred"} >= {"vocals"}
        assert set(cover.transferred) >= {"vocals"}  # --stems-dir writes the re-voiced stems
    else:
        assert r["mode"] == "arrange" and r["cover_check"] == rejected[2] and r["guard"]["other_db"] == 0.0
        assert r["mix"]["kept_stems"] == ["other"]


def _bad_inputs(tmp):
    cases = {"missing": (tmp / "missing.wav", "no such file")}
    (tmp / "empty.wav").write_bytes(b"")
    cases["empty"] = (tmp / "empty.wav", "empty file")
    (tmp / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt garbage" * 50)
    cases["corrupt"] = (tmp / "corrupt.wav", "not a readable audio file")
    cases["5ms"] = (write(tmp / "tiny.wav", sine(440, 0.005, 44100), 44100), "5 ms")
    cases["silence"] = (write(tmp / "silence.wav", np.zeros(44100 * 3, np.float32), 44100), "silent")
    rng = np.random.default_rng(0)
    hum = sine(220, 8, 22050) * 0.3 + 0.01 * rng.standard_normal(8 * 22050).astype(np.float32)
    cases["drone"] = (write(tmp / "drone.wav", hum, 22050), "never changes")
    return cases


@pytest.mark.parametrize("case", ["missing", "empty", "corrupt", "5ms", "silence", "drone"])
def test_bad_input_is_one_line_exit_1_no_output(tmp_path, case):
    song, expected = _bad_inputs(tmp_path)[case]
    out = tmp_path / "out.wav"
    result = _run("make", song, "--to", "jazz", "-o", out, "--report", tmp_path / "r.json")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and str(song.name) in lines[0], result.stderr
    assert expected in lines[0] and "Traceback" not in result.output
    assert not out.exists() and not (tmp_path / "r.json").exists()
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]


def test_speech_is_refused():
    result = _run("make", SPEECH, "--to", "jazz", "-o", "/tmp/covergen-speech-test.wav")
    assert result.exit_code == 1 and "speech or noise" in result.stderr


@pytest.mark.parametrize("args,expected", [
    (["--to", "polka"], "unknown genre 'polka'"),
    (["--to", "jazz", "-o", "/nonexistent-dir/x.wav"], "does not exist"),
    (["--to", "jazz", "-o", "/proc/x.wav"], "cannot write"),
    (["--to", "jazz", "-o", "x.mp3"], "unsupported output format"),
    (["--to", "jazz", "--melody", "kazoo"], "--melody: unknown instrument 'kazoo' (known: voice, "),
    (["--to", "jazz", "--mode", "revoice", "--melody", "voice"], "in the arrange mode only"),
])
def test_bad_options_fail_fast(tmp_path, args, expected):
    song = write(tmp_path / "song.wav", sine(440, 2, 22050), 22050)
    result = _run("make", song, *args)
    assert result.exit_code == 1 and expected in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_presets_list_and_show():
    listing = _run("presets", "list")
    assert listing.exit_code == 0 and all(n in listing.output for n in ("jazz", "rock", "bossa_nova", "lofi"))
    shown = _run("presets", "show", "jazz")
    assert shown.exit_code == 0 and "tempo_change_bpm = -15" in shown.output
    missing = _run("presets", "show", "polka")
    assert missing.exit_code == 1 and "unknown genre" in missing.stderr


def test_doctor_lists_separators_and_models():
    result = _run("doctor", "--json")
    facts = json.loads(result.output)
    assert result.exit_code == 0 and "embedded" in facts["separators"]
    assert any(k.startswith("timbre-") for k in facts["models"])
    assert set(facts["band SoundFonts (arranger)"]) >= {"jazz drums", "jazz piano", "rock drums"}


def test_usage_error_is_exit_2():
    assert runner.invoke(app, ["make"]).exit_code == 2


@pytest.mark.slow
def test_mix_of_kept_stems_reproduces_make(jazz_cover):
    _, out, _, _, tmp = jazz_cover
    remix = tmp / "remix.wav"
    result = _run("mix", tmp / "stems", "--to", "jazz", "-o", remix, "-q")
    assert result.exit_code == 0, result.output
    a, sr_a = sf.read(out, dtype="float64")
    b, sr_b = sf.read(remix, dtype="float64")
    assert sr_a == sr_b == 48000 and a.shape == b.shape
    diff_db = 10 * np.log10(np.sum((a - b) ** 2) / np.sum(a ** 2) + 1e-30)
    assert diff_db < -60, diff_db


@pytest.mark.slow
def test_demucs_layout_and_flat_folder_mix_the_same(jazz_cover, tmp_path):
    import shutil

    _, _, _, _, tmp = jazz_cover
    flat = tmp_path / "flat"
    nested = tmp_path / "separated" / "htdemucs" / "mysong"
    for folder in (flat, nested):
        folder.mkdir(parents=True)
        for stem in ("vocals", "drums", "bass"):
            shutil.copy(tmp / "stems" / "separated" / f"{stem}.wav", folder / f"{stem}.wav")
    shutil.copy(tmp / "stems" / "separated" / "other.wav", flat / "other.wav")
    # 6-stem names in the demucs folder: guitar + piano are summed into `other`
    other, sr = sf.read(tmp / "stems" / "separated" / "other.wav", dtype="float32")
    sf.write(nested / "guitar.wav", other * 0.25, sr, subtype="FLOAT")
    sf.write(nested / "piano.wav", other * 0.75, sr, subtype="FLOAT")
    outs = []
    for folder in (flat, tmp_path / "separated"):
        out = tmp_path / f"{folder.name}.wav"
        result = _run("mix", folder, "--to", "rock", "-o", out, "-q")
        assert result.exit_code == 0, result.output
        outs.append(sf.read(out, dtype="float64")[0])
    diff_db = 10 * np.log10(np.sum((outs[0] - outs[1]) ** 2) / np.sum(outs[0] ** 2) + 1e-30)
    assert diff_db < -60, diff_db


def test_mix_notices_missing_stem_and_rejects_empty_folder(tmp_path):
    folder = tmp_path / "stems"
    folder.mkdir()
    assert _run("mix", folder, "--to", "rock", "-o", tmp_path / "x.wav").exit_code == 1
    y, sr = sf.read(DEMO_SONG, dtype="float32", frames=44100 * 10)
    sf.write(folder / "drums.wav", y, sr)
    sf.write(folder / "bass.wav", y[: 44100 * 8] * 0.5, sr)
    result = _run("mix", folder, "--to", "rock", "-o", tmp_path / "x.wav")
    assert result.exit_code == 0, result.output
    assert "no vocals stem" in result.stderr and "differ in length" in result.stderr
    assert sf.info(tmp_path / "x.wav").duration > 9


def test_transfer_refuses_full_mix_and_speech(tmp_path):
    for song in (JAZZ_MIX, SPEECH):
        out = tmp_path / f"{song.stem}.wav"
        result = _run("transfer", song, "--instrument", "tenor_sax", "-o", out)
        assert result.exit_code == 1 and song.name in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()


def test_transfer_keeps_the_trumpet_melody(tmp_path):
    """f0 of the output within 50 cents of the (octave-shifted) input on >= 90% of frames voiced in both,
    measured with librosa.pyin (not the tracker the model uses)."""
    import librosa

    trumpet = TRUMPET
    y_in, sr = librosa.load(trumpet, sr=22050)
    for instrument in ("tenor_sax", "trumpet"):  # violin: 0.81 by this ungated measure (see bench/timbre.md)
        out = tmp_path / f"{instrument}.wav"
        result = _run("transfer", trumpet, "--instrument", instrument, "-o", out, "-q")
        assert result.exit_code == 0, result.stderr
        assert sf.info(out).samplerate == sf.info(trumpet).samplerate
        y_out, _ = librosa.load(out, sr=22050)
        f_in, v_in, _ = librosa.pyin(y_in, fmin=60, fmax=1600, sr=sr)
        f_out, v_out, _ = librosa.pyin(y_out, fmin=60, fmax=1600, sr=sr)
        n = min(len(f_in), len(f_out))
        both = v_in[:n] & v_out[:n]
        cents = 1200 * np.log2(f_out[:n][both] / f_in[:n][both])
        shift = 1200 * np.round(np.median(cents) / 1200)  # the whole-octave shift the transfer chose
        assert both.sum() > 50 and np.mean(np.abs(cents - shift) < 50) >= 0.9, (instrument, np.mean(np.abs(cents - shift) < 50))


@pytest.mark.realdata
def test_genre_prints_top3_of_a_real_jazz_clip():
    song = shared_file("real", "Kevin_MacLeod_-_Vibe_Ace.ogg")
    result = _run("genre", song, "--json")
    assert result.exit_code == 0, result.stderr
    row = json.loads(result.stdout)
    assert len(row["top3"]) == 3 and row["top3"][0][0] == "jazz"
    assert abs(sum(row["probabilities"].values()) - 1) < 1e-6


@pytest.mark.slow
def test_make_to_auto_picks_the_profile_favourite(jazz_cover, tmp_path):
    """A profile whose favourite is metal (from a file tag) maps to the rock preset."""
    import mutagen.flac

    song, *_ = jazz_cover
    music = tmp_path / "music"
    music.mkdir()
    y, sr = sf.read(DEMO_SONG, dtype="float32", frames=44100 * 8)
    sf.write(music / "tagged.flac", y, sr)
    tags = mutagen.flac.FLAC(music / "tagged.flac")
    tags["genre"] = "Heavy Metal"
    tags.save()
    profile = tmp_path / "profile.json"
    made = _run("profile", music, "-o", profile, "-q")
    assert made.exit_code == 0, made.stderr
    favourites = json.loads(profile.read_text())["favourites"]
    assert favourites[0]["genre"] == "metal" and favourites[0]["from_tag"] == 1
    out = tmp_path / "auto.wav"
    result = _run("make", song, "--to", "auto", "--profile", profile, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert "favourite genre from" in result.stderr and "rock" in result.stderr and out.is_file()


@pytest.mark.slow
@pytest.mark.realdata
def test_check_pair_and_library_ranking(tmp_path):
    """A slowed copy of a real song is a cover and ranks first in a small library; an unrelated song is not."""
    import pedalboard

    song = shared_file("real", "Kevin_MacLeod_-_Vibe_Ace.ogg")
    other = shared_file("real", "442789__lena-orsa__happy-music-pistachio-ice-cream-ragtime.ogg")
    y, sr = sf.read(song, dtype="float32", always_2d=True)
    slowed = pedalboard.time_stretch(np.ascontiguousarray(y.T), sr, stretch_factor=0.9, pitch_shift_in_semitones=2)
    cover = tmp_path / "cover.wav"
    sf.write(cover, slowed.T, sr)
    same = _run("check", song, cover, "--json")
    assert same.exit_code == 0, same.stderr
    assert json.loads(same.stdout)["verdict"] == "cover"
    library = tmp_path / "library"
    library.mkdir()
    for f in (song, other):
        (library / f.name).write_bytes(f.read_bytes())
    for method in ("qmax", "2dftm"):
        ranked = _run("check", cover, "--library", library, "--method", method, "--json")
        assert ranked.exit_code == 0, ranked.stderr
        assert json.loads(ranked.stdout)[0]["path"].endswith(song.name), method
