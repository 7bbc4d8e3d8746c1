"""The lead sheet as plain data: files a musician opens elsewhere, chord labels, the chart, the grid.
Also the rendered-song generator (benchmark data): its ground truth must be self-consistent and sound
where it says."""
from __future__ import annotations

from pathlib import Path

import mir_eval
import numpy as np
import pretty_midi
import pytest

from covergen.leadsheet import (QUALITIES, LeadSheet, Note, beat_to_seconds, chord_label, chord_pitch_classes,
                                parse_chord)


def _sheet(beats_per_bar: int = 4, *, pickup: int = 0, n_bars: int = 4, drift: float = 0.0,
           chords: list[str] | None = None) -> LeadSheet:
    """A sheet on a drifting grid starting at 0.37 s, 100 BPM, with a melody note on every other beat."""
    n = pickup + n_bars * beats_per_bar
    period_s = 0.6 * (1 + drift * np.sin(np.linspace(0, np.pi, n)))
    beats = 0.37 + np.concatenate([[0.0], np.cumsum(period_s[:-1])])
    if chords is None:
        cycle = ["C:maj", "A:min7", "F:maj7", "G:7"]
        chords = ["N"] * pickup + [cycle[(i // beats_per_bar) % 4] for i in range(n_bars * beats_per_bar)]
    melody = [Note(round(float(beats[i]) + 0.013, 4), 0.41, 60 + (i * 5) % 17, 70 + i % 40)
              for i in range(0, n, 2)]
    return LeadSheet(beats_s=[float(b) for b in beats], downbeats=list(range(pickup, n, beats_per_bar)),
                     beats_per_bar=beats_per_bar, chords=chords, key="A minor", melody=melody, swing_ratio=1.73,
                     duration_s=float(beats[-1] + 2.0), source={"test": [1, 2.5, "x"]})


def test_json_round_trip_is_lossless():
    sheet = _sheet(3, pickup=1, drift=0.07)
    back = LeadSheet.from_json(sheet.to_json())
    assert back == sheet
    assert back.to_json() == sheet.to_json()
    assert all(isinstance(n, Note) for n in back.melody)
    with pytest.raises(ValueError, match="not a covergen lead sheet"):
        LeadSheet.from_dict({"format": "something-else"})


def test_lab_parses_and_validates_with_mir_eval(tmp_path):
    sheet = _sheet(4, pickup=2)
    path = tmp_path / "song.lab"
    path.write_text(sheet.lab_text())
    intervals, labels = mir_eval.io.load_labeled_intervals(str(path))
    mir_eval.util.validate_intervals(intervals)
    mir_eval.chord.validate(labels, labels)
    # the silence before the first beat and the pickup are N; the segments tile the song without gaps
    assert labels[0] == "N" and intervals[0, 0] == 0.0
    assert labels[1:5] == ["C:maj", "A:min7", "F:maj7", "G:7"]
    np.testing.assert_allclose(intervals[1:, 0], intervals[:-1, 1], atol=1e-9)
    assert intervals[-1, 1] == pytest.approx(sheet.duration_s, abs=1e-3)
    # a chord's segment starts on its first beat (3 decimals in the file)
    assert intervals[1, 0] == pytest.approx(sheet.beats_s[2], abs=6e-4)
    # scoring the sheet against itself is perfect
    scores = mir_eval.chord.evaluate(intervals, labels, intervals, labels)
    assert scores["sevenths"] == pytest.approx(1.0)


@pytest.mark.parametrize("beats_per_bar,pickup", [(4, 0), (3, 1), (4, 3)])
def test_midi_keeps_melody_times_and_time_signature(tmp_path, beats_per_bar, pickup):
    sheet = _sheet(beats_per_bar, pickup=pickup, drift=0.08)
    path = tmp_path / "song.mid"
    sheet.to_midi().write(str(path))
    midi = pretty_midi.PrettyMIDI(str(path))
    melody = next(inst for inst in midi.instruments if inst.name == "melody")
    assert len(melody.notes) == len(sheet.melody)
    for got, want in zip(sorted(melody.notes, key=lambda n: n.start), sheet.melody):
        assert got.pitch == want.pitch
        assert got.start == pytest.approx(want.onset_s, abs=0.002)
        assert got.end == pytest.approx(want.end_s, abs=0.002)
    assert [ts.numerator for ts in midi.time_signature_changes] == [beats_per_bar]
    assert midi.time_signature_changes[0].denominator == 4
    # the tempo map puts the sheet's downbeats on the DAW's bar lines
    bar_lines = np.asarray(midi.get_downbeats())
    for d in sheet.downbeats:
        assert np.min(np.abs(bar_lines - sheet.beats_s[d])) < 0.002
    chords = next(inst for inst in midi.instruments if inst.name == "chords")
    first = sorted(n.pitch % 12 for n in chords.notes if abs(n.start - sheet.beats_s[pickup]) < 0.002)
    assert first == sorted(chord_pitch_classes("C:maj"))


@pytest.mark.parametrize("quality", list(QUALITIES))
def test_parse_chord_knows_every_quality(quality):
    for root_name, root in (("C", 0), ("F#", 6), ("Bb", 10), ("Ab", 8)):
        label = f"{root_name}:{quality}"
        assert parse_chord(label) == (root, quality, 0)
        assert parse_chord(chord_label(root, quality)) == (root, quality, 0)
        pcs = chord_pitch_classes(label)
        assert pcs[0] == root and len(pcs) == len(QUALITIES[quality])
    mir_eval.chord.validate([f"C:{quality}"], [f"C:{quality}"])  # every quality is valid Harte syntax


def test_parse_chord_bass_no_chord_and_junk():
    assert parse_chord("C") == (0, "maj", 0)
    assert parse_chord("F:maj/3") == (5, "maj", 4)
    assert parse_chord("G:7/b7") == (7, "7", 10)
    assert parse_chord("N") is None and parse_chord("X") is None
    assert chord_pitch_classes("N") == ()
    for junk in ("H:maj", "C:major", "C:maj/13", "Cx:min", "C:min7/b9", ":maj", "c#:min?"):
        with pytest.raises(ValueError):
            parse_chord(junk)
    with pytest.raises(ValueError):
        chord_label(0, "minor")
    with pytest.raises(ValueError, match="one per beat"):
        LeadSheet(beats_s=[0.0, 0.5], downbeats=[0], beats_per_bar=4, chords=["C:maj"], key="C major")
    with pytest.raises(ValueError, match="unknown quality"):
        LeadSheet(beats_s=[0.0, 0.5], downbeats=[0], beats_per_bar=4, chords=["C:maj", "C:weird"], key="C major")


def test_chart_one_cell_per_bar_in_four_and_three():
    four = _sheet(4, n_bars=3, chords=["C:maj"] * 4 + ["A:min"] * 4 + ["F:maj", "F:maj", "G:maj", "G:maj"])
    assert four.chart() == "| C | Am | F G |"
    three = _sheet(3, n_bars=5, chords=["C:maj"] * 3 + ["A:min7"] * 3 + ["D:min", "G:7", "G:7"]
                   + ["C:maj7"] * 3 + ["N"] * 3)
    lines = three.chart(bars_per_line=4).splitlines()
    assert lines == ["| C | Am7 | Dm G7 | Cmaj7 |", "| N.C. |"]
    assert len(three.bars()) == 5 and all(len(bar) == 3 for bar in three.bars())
    pickup = _sheet(4, pickup=1, n_bars=2, chords=["N"] + ["F#:min"] * 4 + ["B:sus4", "B:sus4", "E:maj/3", "E:maj/3"])
    assert pickup.chart() == "| N.C. | F#m | Bsus4 E/G# |"
    assert [len(bar) for bar in pickup.bars()] == [1, 4, 4]


def test_beat_to_seconds_interpolates_and_extrapolates():
    grid = np.array([1.0, 1.5, 2.1, 2.6])
    assert beat_to_seconds(0, grid) == pytest.approx(1.0)
    assert beat_to_seconds(0.5, grid) == pytest.approx(1.25)
    assert beat_to_seconds(1.5, grid) == pytest.approx(1.8)
    assert beat_to_seconds(3, grid) == pytest.approx(2.6)
    assert beat_to_seconds(-1, grid) == pytest.approx(0.5)       # first period before beat 0
    assert beat_to_seconds(4.5, grid) == pytest.approx(3.35)     # last period after the last beat
    np.testing.assert_allclose(beat_to_seconds(np.array([-0.5, 2.25, 5.0]), grid), [0.75, 2.225, 3.6])
    with pytest.raises(ValueError):
        beat_to_seconds(1.0, np.array([1.0]))


def test_tempo_curve_and_bars():
    sheet = _sheet(4, n_bars=2)
    np.testing.assert_allclose(sheet.tempo_curve_bpm, 100.0)
    assert sheet.tempo_bpm == pytest.approx(100.0)
    assert sheet.bars() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    with pytest.raises(ValueError, match="increase"):
        LeadSheet(beats_s=[0.0, 0.5, 0.5], downbeats=[0], beats_per_bar=4, chords=["N"] * 3, key="C major")


@pytest.mark.parametrize("seed", [0, 1, 2, 5, 1003])
def test_generated_song_ground_truth_is_consistent(seed):
    """The generator's score and grid, without rendering: chords on the beats, bars of the meter, the
    melody on the grid after swing, drift within its bounds."""
    from covergen.training import leadsheet_songs as songs

    plan = songs.plan(seed)
    sc = songs.score(plan)
    grid = songs.beat_grid(plan, sc.n_beats + 8)
    sheet = songs._leadsheet(sc, grid, float(grid[-1]))
    assert sheet.beats_per_bar == (3 if seed % 4 == 1 else 4)
    assert np.all(np.diff(sheet.downbeats) == sheet.beats_per_bar) and sheet.downbeats[0] == plan.pickup_beats
    assert all(label == "N" for label in sheet.chords[:plan.pickup_beats])
    assert "N" not in sheet.chords[plan.pickup_beats:]
    qualities = {parse_chord(c)[1] for c in sheet.chords if c != "N"}
    assert qualities <= {"maj", "min", "7", "maj7", "min7", "dim", "sus4"}
    tonic = sheet.key.split()[0]
    assert sheet.chords[-1].split(":")[0] == tonic  # ends on the tonic
    beats = np.asarray(sheet.beats_s)
    ratio = (60.0 / ((beats[8:] - beats[:-8]) / 8)) / plan.tempo_bpm  # 8-beat average: jitter averages out
    if plan.drift_pct:  # the drift is there and bounded
        assert ratio.max() - ratio.min() > 0.03
        assert np.all(np.abs(ratio - 1) < plan.drift_pct / 100 + 0.03)
    else:
        np.testing.assert_allclose(sheet.tempo_curve_bpm / plan.tempo_bpm, 1.0, atol=1e-4)
    # every chord's pitch classes sound in the comping/bass on its first beat
    comp_bass = [e for e in sc.events if e.part in ("comp", "bass")]
    for i in sheet.downbeats:
        pcs = set(chord_pitch_classes(sheet.chords[i]))
        heard = {e.pitch % 12 for e in comp_bass if abs(e.beat - i) < 1e-6}
        assert heard and heard <= pcs, (i, sheet.chords[i], heard)
    # melody: monophonic, onsets on eighths after swing
    onsets = np.array([n.onset_s for n in sheet.melody])
    ends = np.array([n.end_s for n in sheet.melody])
    assert np.all(onsets[1:] >= ends[:-1] - 1e-6)
    s = plan.swing_ratio / (1 + plan.swing_ratio)
    lead = [e for e in sc.events if e.part == "lead"]
    for e, note in zip(lead, sheet.melody):
        whole, frac = divmod(e.beat, 1.0)
        warped = whole + (s if abs(frac - 0.5) < 1e-9 else frac)
        assert note.onset_s == pytest.approx(float(beat_to_seconds(warped, grid)), abs=2e-5)


def test_rendered_song_sounds_on_its_ground_truth():
    """A short render: the backing starts on the first downbeat and the lead on its first note, within the
    SoundFont's attack, and the mixture is exactly lead + backing."""
    import shutil

    from covergen.training import leadsheet_songs as songs

    if shutil.which("fluidsynth") is None or not any(Path(p).is_file() for p in songs.SOUNDFONTS):
        pytest.skip("fluidsynth or a GM SoundFont is not installed")
    rendered = songs.song(2, duration_s=6.0, cache=False, with_lead=True)  # piano only, FluidR3
    sheet = rendered.leadsheet
    assert rendered.audio.shape[0] == 2 and rendered.audio.dtype == np.float32
    assert rendered.audio.shape[1] / songs.SAMPLE_RATE == pytest.approx(sheet.duration_s, abs=1e-3)
    assert sheet.duration_s > sheet.beats_s[-1] > 4.0
    backing = np.abs(rendered.audio - rendered.lead).max(axis=0)
    lead = np.abs(rendered.lead).max(axis=0)
    first_backing_s = np.argmax(backing > 1e-3) / songs.SAMPLE_RATE
    first_lead_s = np.argmax(lead > 1e-3) / songs.SAMPLE_RATE
    assert 0.0 <= first_backing_s - sheet.beats_s[sheet.downbeats[0]] < 0.01
    assert 0.0 <= first_lead_s - sheet.melody[0].onset_s < 0.01
    assert np.max(np.abs(rendered.audio)) < 1.0
