"""The song's form in the arrangement: an intro before the tune comes in, an outro after it ends, phrases
counted from the tune's first bar; what the band plays there is the style's (`intro.N`, `outro.N`)."""
from __future__ import annotations

import hashlib

import pytest

from covergen import arrange
from covergen.arrange.score import Form, song_form
from covergen.errors import PresetError
from covergen.leadsheet import LeadSheet, Note

from .test_arrange import sheet

KICK, SNARE, HAT, RIDE, CRASH, TOMS = 36, 38, 42, 51, 49, {41, 45, 47, 50}
# A small band of our own, so the shipped styles can change without touching these tests.
BAND = """
name = "formtest"
phrase_bars = 4
section_bars = 8

[parts.drums]
role = "drums"
groove.4 = { kick = [[0, 100], [2, 96]], snare = [[1, 100], [3, 100]], hihat_closed = [[0, 80], [1, 70], [2, 80], [3, 70]] }
fill.4 = { kick = [[0, 100]], snare = [[1, 100], [2, 96]], tom_high = [[3, 100]], tom_floor = [[3.5, 104]] }
section_start.4 = { crash = [[0, 110]] }
ending.4 = { crash = [[0, 120]], kick = [[0, 110]] }
{drums_extra}

[parts.bass]
role = "bass"
instrument = "Acoustic Bass"
range = [28, 55]
groove.4 = [[[0, 1, "root", 96], [1, 1, "chord", 84], [2, 1, "fifth", 88], [3, 1, "approach", 84]]]
ending.4 = [[0, 4, "root", 100]]
{bass_extra}

[parts.piano]
role = "comping"
instrument = "Acoustic Grand Piano"
range = [52, 76]
groove.4 = [[[0, 1, 70], [2, 1, 66]], [[0.5, 1, 68], [2.5, 1, 64]]]
"""


def band(tmp_path, drums_extra="", bass_extra=""):
    file = tmp_path / "formtest.toml"
    file.write_text(BAND.replace("{drums_extra}", drums_extra).replace("{bass_extra}", bass_extra))
    return arrange.load_style(file)


def with_tune(s: LeadSheet, first_bar: int, last_bar: int, *, extra: tuple[Note, ...] = ()) -> LeadSheet:
    """`s` with a melody of a note on every beat of bars first_bar..last_bar (0 = the first full bar)."""
    beats, bar0 = s.beats_s, s.downbeats[0]
    notes = [Note(beats[i], 0.8 * (beats[i + 1] - beats[i]), 64) for i in range(len(beats) - 1)
             if bar0 + first_bar * s.beats_per_bar <= i < bar0 + (last_bar + 1) * s.beats_per_bar]
    s.melody = sorted(notes + list(extra), key=lambda n: n.onset_s)
    return s


def drums_by_bar(events, bpb=4) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    for e in events:
        if e.part == "drums":
            out.setdefault(int(round(e.beat, 6)) // bpb, set()).add(e.pitch)
    return out


def digest(events) -> str:
    rows = [(e.part, round(e.beat, 6), round(e.length_beats, 6), e.pitch, e.velocity) for e in events]
    return hashlib.sha256(repr(rows).encode()).hexdigest()[:16]


def test_song_form_counts_the_bars_around_the_tune():
    assert song_form(with_tune(sheet(bars=16), 2, 13)) == Form(intro_bars=2, outro_bars=2)
    assert song_form(with_tune(sheet(bars=16), 0, 15)) == Form()
    assert song_form(sheet(bars=16)) == Form()  # no melody: nothing to frame
    # a pickup bar before the intro is not one of its bars
    assert song_form(with_tune(sheet(bars=16, pickup=2), 3, 15)) == Form(intro_bars=3)


def test_song_form_ignores_strays_and_hears_pickups():
    s = sheet(bars=16)
    blip = Note(s.beats_s[1], 0.06, 70)  # a lone short note in bar 0, then the tune in bar 2
    last = Note(s.beats_s[62], 0.06, 70)  # a lone note in the last bar after the tune ends in bar 13
    assert song_form(with_tune(s, 2, 13, extra=(blip, last))) == Form(2, 2)
    pickup = Note(s.beats_s[7], 0.4, 62)  # on the last beat of bar 1, into bar 2
    assert song_form(with_tune(sheet(bars=16), 2, 13, extra=(pickup,))) == Form(2, 2)
    held = Note(sheet(bars=16).beats_s[52], 2.0, 60)  # held from bar 13 to exactly bar 14's downbeat
    tune = with_tune(sheet(bars=16), 2, 12)
    tune.melody.append(held)
    assert song_form(tune) == Form(2, 2)


def test_a_long_instrumental_stretch_is_not_an_intro_or_outro():
    assert song_form(with_tune(sheet(bars=24), 9, 14)) == Form(intro_bars=0, outro_bars=0)  # 9 bars each
    assert song_form(with_tune(sheet(bars=24), 8, 15)) == Form(intro_bars=8, outro_bars=8)
    two_notes = with_tune(sheet(bars=16), 2, 2)
    two_notes.melody = two_notes.melody[:2]
    assert song_form(two_notes) == Form()  # too few notes to be a tune


def test_intro_drums_keep_time_then_fill_the_band_in(tmp_path):
    style = band(tmp_path)
    s = with_tune(sheet(bars=16), 2, 15)
    events = arrange.score(s, style, seed=0, humanise=False)
    drums = drums_by_bar(events)
    assert drums[0] == {HAT}  # no kick, snare or crash before the tune
    assert drums[1] & TOMS and SNARE in drums[1]  # the fill into the tune's first bar
    assert {KICK, SNARE, HAT, CRASH} <= drums[2]  # the band comes in, with a crash, where the tune does
    fills = {b for b, pitches in drums.items() if pitches & TOMS}
    assert fills == {1, 5, 9, 13}  # phrase ends counted from the tune's first bar, not the song's
    crashes = {b for b, pitches in drums.items() if CRASH in pitches}
    assert crashes == {2, 10, 15}  # sections from the tune's first bar, and the ending
    bass_bars = {int(e.beat) // 4 for e in events if e.part == "bass"}
    assert {0, 1} <= bass_bars  # the rest of the band plays the intro as usual


def test_outro_plays_on_with_a_crash_after_the_tune_and_the_ending(tmp_path):
    style = band(tmp_path)
    s = with_tune(sheet(bars=16), 0, 13)
    assert song_form(s) == Form(0, 2)
    drums = drums_by_bar(arrange.score(s, style, seed=0, humanise=False))
    assert {KICK, SNARE, HAT, CRASH} <= drums[14]  # the groove, marked where the tune stops
    assert drums[15] == {KICK, CRASH}  # the ending
    assert CRASH not in drums[13] and CRASH not in drums[12]


def test_a_style_intro_and_outro_pattern_is_played(tmp_path):
    style = band(tmp_path, drums_extra="intro.4 = { ride = [[0, 70], [2, 66]] }",
                 bass_extra='outro.4 = [[0, 4, "root", 80]]')
    assert style.part("drums").intro[4] == ((("ride", 0.0, 70), ("ride", 2.0, 66)),)
    s = with_tune(sheet(bars=16), 2, 13)
    events = arrange.score(s, style, seed=0, humanise=False)
    intro_drums = [e for e in events if e.part == "drums" and e.beat < 8]
    assert [(e.pitch, e.beat) for e in intro_drums] == [(RIDE, 0.0), (RIDE, 2.0), (RIDE, 4.0), (RIDE, 6.0)]
    bass_outro = [e for e in events if e.part == "bass" and 56 <= e.beat < 60]
    # the outro's whole note, struck again on the bar's second chord (F, G7)
    assert [(e.beat, e.length_beats, e.velocity) for e in bass_outro] == [(56.0, 2.0, 80), (58.0, 2.0, 70)]
    last_bar = [e for e in events if e.part == "bass" and e.beat >= 60]
    assert [(e.beat, e.length_beats, e.velocity) for e in last_bar] == [(60.0, 2.0, 100), (62.0, 2.0, 90)]  # the ending


# the score of BAND on sheet(bars=16), seed 3, humanised, made by the arranger before it knew about form
BEFORE_FORM = {(): "9a7f2eca15329a54", (("pickup", 1),): "1b05faf786ae5ce9", (("beats_per_bar", 3),): "7ec31080fa652111"}


@pytest.mark.parametrize("kwargs", [{}, {"pickup": 1}, {"beats_per_bar": 3}])
def test_a_song_without_intro_or_outro_scores_as_before(tmp_path, kwargs):
    style = band(tmp_path)
    plain = arrange.score(sheet(bars=16, **kwargs), style, seed=3)
    assert digest(plain) == BEFORE_FORM[tuple(kwargs.items())]
    through = with_tune(sheet(bars=16, **kwargs), 0, 15)  # a tune from the first bar to the last
    assert arrange.score(through, style, seed=3) == plain
    framed = with_tune(sheet(bars=16, **kwargs), 2, 15)
    assert arrange.score(framed, style, seed=3, form=Form()) == plain  # form=Form() turns the frame off
    assert arrange.score(framed, style, seed=3) != plain


def test_same_seed_same_framed_score(tmp_path):
    style = band(tmp_path)
    s = with_tune(sheet(bars=16), 2, 13)
    assert arrange.score(s, style, seed=4) == arrange.score(s, style, seed=4)
    assert arrange.score(s, style, seed=4) != arrange.score(s, style, seed=5)


@pytest.mark.parametrize(("extra", "words"), [
    ("intro.4 = { kick = [[0]] }", ["formtest.toml", "parts.drums.intro.4", "[beat, velocity]"]),
    ("intro.4 = { cowbel = [[0, 80]] }", ["formtest.toml", "parts.drums.intro.4", "cowbel"]),
    ("outro.x = { kick = [[0, 80]] }", ["formtest.toml", "parts.drums.outro.x", "beats per bar"]),
    ("intro = 3", ["formtest.toml", "parts.drums.intro", "table of meter"]),
])
def test_a_malformed_intro_or_outro_fails_in_one_line(tmp_path, extra, words):
    with pytest.raises(PresetError) as err:
        band(tmp_path, drums_extra=extra)
    message = str(err.value)
    assert "\n" not in message and all(w in message for w in words), message


def test_arrange_reports_the_form_it_played(tmp_path):
    s = with_tune(sheet(bars=8), 2, 5)
    _, events, facts = arrange.arrange(s, band(tmp_path), seed=0, sample_rate=22050)
    assert facts["form"] == {"intro_bars": 2, "outro_bars": 2}
    # and the score it played is the framed one (humanised: a bar's edge moves by a few ms)
    assert not [e for e in events if e.part == "drums" and e.pitch == KICK and e.beat < 3.5]
