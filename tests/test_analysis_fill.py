"""Filling runs of "N" (no chord) in the lead sheet, and `make`'s line when the band has no chords."""
import logging

import numpy as np
import pytest

from covergen import analysis, pipeline
from covergen.leadsheet import NO_CHORD, LeadSheet

FRAMES_PER_BEAT = 20
BEAT_S = FRAMES_PER_BEAT * analysis._HOP / analysis.ANALYSIS_RATE


def _chroma(beats: list[tuple[int, ...]], energy_per_beat: list[float] | None = None):
    """(chroma, energy, beats_s, end_s) with each beat's frames sounding the given pitch classes."""
    n = len(beats)
    chroma = np.full((12, n * FRAMES_PER_BEAT), 0.05)
    energy = np.ones(n * FRAMES_PER_BEAT)
    for i, pcs in enumerate(beats):
        frames = slice(i * FRAMES_PER_BEAT, (i + 1) * FRAMES_PER_BEAT)
        for pc in pcs:
            chroma[pc, frames] = 1.0
        if energy_per_beat is not None:
            energy[frames] = energy_per_beat[i]
    return chroma, energy, np.arange(n) * BEAT_S, n * BEAT_S


C, G, A_MIN = (0, 4, 7), (7, 11, 2), (9, 0, 4)


def test_a_chordal_run_of_n_gets_the_triads_it_sounds():
    chroma, energy, beats_s, end_s = _chroma([C] * 8 + [G] * 4 + [A_MIN] * 4)
    out = analysis._fill_no_chord([NO_CHORD] * 16, chroma, energy, beats_s, end_s, "C major")
    assert out == ["C:maj"] * 8 + ["G:maj"] * 4 + ["A:min"] * 4


def test_silent_and_flat_beats_stay_n_so_the_band_rests():
    flat = tuple(range(12))  # drums, noise: every pitch class alike
    beats = [C] * 4 + [C] * 4 + [flat] * 4
    chroma, energy, beats_s, end_s = _chroma(beats, [1.0] * 4 + [0.0] * 4 + [1.0] * 4)
    out = analysis._fill_no_chord([NO_CHORD] * 12, chroma, energy, beats_s, end_s, "C major")
    assert out[:4] == ["C:maj"] * 4
    assert out[4:] == [NO_CHORD] * 8


def test_a_lone_sung_line_is_not_harmonised_by_guesswork():
    line = [(pc,) for pc in (0, 2, 4, 5, 7, 5, 4, 2, 0, 4, 7, 0)]
    chroma, energy, beats_s, end_s = _chroma(line)
    out = analysis._fill_no_chord([NO_CHORD] * 12, chroma, energy, beats_s, end_s, "C major")
    assert out == [NO_CHORD] * 12


def test_short_gaps_and_recognised_chords_are_left_alone():
    chroma, energy, beats_s, end_s = _chroma([G] * 12)
    chords = ["F:maj"] * 4 + [NO_CHORD] * 3 + ["F:maj"] * 5  # a 3-beat gap: shorter than a bar
    assert analysis._fill_no_chord(chords, chroma, energy, beats_s, end_s, "C major") == chords
    chords = ["F:maj"] * 4 + [NO_CHORD] * 4 + ["F:maj"] * 4
    out = analysis._fill_no_chord(chords, chroma, energy, beats_s, end_s, "C major")
    assert out == ["F:maj"] * 4 + ["G:maj"] * 4 + ["F:maj"] * 4


def test_diatonic_triads_of_a_minor_key_include_both_dominants():
    triads = analysis._diatonic_triads("A minor")
    assert (4, "maj") in triads and (4, "min") in triads and (9, "min") in triads
    assert all(q in ("maj", "min") for _, q in triads)


def _sheet(chords: list[str], filled: int = 0) -> LeadSheet:
    n = len(chords)
    return LeadSheet(beats_s=[0.5 * i for i in range(n)], downbeats=list(range(0, n, 4)), beats_per_bar=4,
                     chords=chords, key="C major", melody=[], swing_ratio=1.0, duration_s=0.5 * n,
                     source={"filled_beats": filled})


@pytest.mark.parametrize("chords, filled, key", [([NO_CHORD] * 16, 0, "no_chords"),
                                                  (["C:maj"] * 8 + ["G:maj"] * 8, 8, "filled_warning")])
def test_make_says_in_one_line_when_the_band_has_no_or_guessed_chords(caplog, chords, filled, key):
    report = {"lead_sheet": {}}
    with caplog.at_level(logging.WARNING, logger="covergen.pipeline"):
        pipeline._chord_warnings(_sheet(chords, filled), report, "song.wav")
    other = {"no_chords", "filled_warning"} - {key}
    assert key in report["lead_sheet"] and not other & set(report["lead_sheet"])
    assert len(caplog.records) == 1 and "\n" not in caplog.records[0].getMessage()


def test_recognised_chords_give_no_warning(caplog):
    report = {"lead_sheet": {}}
    with caplog.at_level(logging.WARNING, logger="covergen.pipeline"):
        pipeline._chord_warnings(_sheet(["C:maj"] * 15 + [NO_CHORD], 0), report, "song.wav")
    assert report["lead_sheet"] == {"filled_beats": 0} and not caplog.records
