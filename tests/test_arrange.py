"""The arranger: scores in beats on the song's grid and chords, styles as data, the rendered band in time."""
from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from covergen import arrange, presets
from covergen.arrange import styles as styles_mod
from covergen.arrange.render import find_soundfont, render_midi
from covergen.arrange.score import played_chord
from covergen.cli import app
from covergen.errors import PresetError
from covergen.leadsheet import LeadSheet, chord_pitch_classes

STYLES = ("jazz", "bossa_nova", "rock", "classical", "lofi")
needs_fluidsynth = pytest.mark.skipif(shutil.which("fluidsynth") is None or find_soundfont() is None,
                                      reason="fluidsynth or a General MIDI SoundFont is not installed")


POP = (("C:maj",), ("A:min",), ("F:maj", "G:7"), ("E:min7", "A:7"))


def sheet(*, beats_per_bar=4, bars=16, period_s=0.5, chords_per_bar=POP,
          key="C major", drift=0.0, pickup=0) -> LeadSheet:
    """A lead sheet with a pickup, two chords in some bars, slash chords possible, an optional tempo drift
    (period grows by `drift` per beat) and `N` where the list says so."""
    n = pickup + bars * beats_per_bar
    periods = period_s * (1 + drift * np.arange(n))
    beats = 0.4 + np.concatenate([[0.0], np.cumsum(periods[:-1])])
    chords = []
    for i in range(n):
        bar = max(0, (i - pickup)) // beats_per_bar
        pos = (i - pickup) % beats_per_bar if i >= pickup else 0
        cell = chords_per_bar[bar % len(chords_per_bar)]
        chords.append(cell[min(len(cell) - 1, pos * len(cell) // beats_per_bar)])
    return LeadSheet(beats_s=beats.tolist(), downbeats=list(range(pickup, n, beats_per_bar)),
                     beats_per_bar=beats_per_bar, chords=chords, key=key, duration_s=float(beats[-1] + 1.0))


def delay_beats(style, part_name, sheet_: LeadSheet, beat: float) -> float:
    period = np.diff(sheet_.beats_s)[min(int(beat), len(sheet_.beats_s) - 2)]
    return style.part(part_name).delay_ms / 1000.0 / period


@pytest.mark.parametrize("name", STYLES)
def test_unhumanised_events_fall_on_the_swung_grid(name):
    style = arrange.load_style(name)
    s = sheet()
    ratio = style.swing_ratio(s.tempo_bpm)
    sub = style.subdivision_beats
    events = arrange.score(s, style, seed=3, humanise=False)
    assert len(events) > 100
    for e in events:
        at = e.beat - delay_beats(style, e.part, s, e.beat)
        k = round(at / sub)
        nearest = min((arrange.swing_beat(j * sub, ratio, sub) for j in range(k - 2, k + 3)), key=lambda b: abs(b - at))
        assert abs(nearest - at) < 1e-6, (e, nearest)


@pytest.mark.parametrize("name", STYLES)
def test_humanised_events_stay_within_a_few_ms_of_the_grid(name):
    style = arrange.load_style(name)
    s = sheet()
    exact = arrange.score(s, style, seed=5, humanise=False)
    loose = arrange.score(s, style, seed=5)
    assert len(exact) == len(loose)
    key = lambda e: (e.part, e.pitch, e.beat)  # noqa: E731 - same notes, each moved by a few ms at most
    period_s = np.median(np.diff(s.beats_s))
    pairs = zip(sorted(exact, key=key), sorted(loose, key=key))
    shift_ms = np.array([(b.beat - a.beat) * period_s * 1000 for a, b in pairs])
    assert np.median(np.abs(shift_ms)) < style.humanise_ms
    assert np.abs(shift_ms).max() < 5 * style.humanise_ms + 1
    assert np.abs(shift_ms).max() > 0.1  # humanised at all


@pytest.mark.parametrize("name", STYLES)
def test_comping_plays_only_the_bars_chord_tones(name):
    style = arrange.load_style(name)
    s = sheet(chords_per_bar=(("C:maj",), ("A:min",), ("F:maj/3", "G:7"), ("D:min7", "G:sus4"), ("Bb:maj",), ("N",)))
    harmony = {p.name for p in style.parts if p.role in ("comping", "pad")}
    events = [e for e in arrange.score(s, style, seed=1, humanise=False) if e.part in harmony]
    assert events
    for e in events:
        chart = s.chords[int(e.beat)]
        assert chart != "N", e  # the band rests where nothing harmonic sounds
        played = played_chord(chart, style, s.key)
        assert set(chord_pitch_classes(chart)) <= set(chord_pitch_classes(played))  # extensions only add tones
        assert e.pitch % 12 in chord_pitch_classes(played), (e, chart, played)
        if not style.extensions:
            assert e.pitch % 12 in chord_pitch_classes(chart)
    # Bb is not in C major: no extension may add a tone outside the key (Bb:maj7 would add A, fine; maj9 adds C)
    assert all(set(chord_pitch_classes(played_chord(c, style, s.key))) - set(chord_pitch_classes(c))
               <= {0, 2, 4, 5, 7, 9, 11} for c in set(s.chords))


def test_comping_voicings_are_voice_led():
    """Successive chords move the upper voices by small steps (a few semitones in total), not by jumps."""
    style = arrange.load_style("classical")
    s = sheet(bars=8)
    violins = [e for e in arrange.score(s, style, seed=0, humanise=False) if e.part in ("viola", "violin2", "violin1")]
    by_beat: dict[float, list[int]] = {}
    for e in violins:
        by_beat.setdefault(round(e.beat, 6), []).append(e.pitch)
    chords = [sorted(p) for _, p in sorted(by_beat.items()) if len(p) == 3]
    moves = [sum(abs(a - b) for a, b in zip(x, y)) for x, y in zip(chords, chords[1:]) if x != y]
    assert moves and np.median(moves) <= 5


@pytest.mark.parametrize(("name", "tempo_bpm"), [("jazz", 80), ("jazz", 130), ("jazz", 210), ("lofi", 85)])
def test_swing_ratio_measured_on_ride_and_hihat(name, tempo_bpm):
    style = arrange.load_style(name)
    s = sheet(period_s=60.0 / tempo_bpm, bars=24)
    sub = style.subdivision_beats
    cymbals = {51, 42}  # ride, closed hi-hat
    ratios = []
    for e in arrange.score(s, style, seed=2):
        if e.part != "drums" or e.pitch not in cymbals:
            continue
        at = e.beat - delay_beats(style, "drums", s, e.beat)
        pair = math.floor(at / (2 * sub) + 0.1)  # the on-subdivision of this pair (jitter may put it just before)
        first, second = pair * 2 * sub, (pair + 1) * 2 * sub
        if first + 0.25 * sub < at < second - 0.25 * sub:  # the off-subdivision
            ratios.append((at - first) / (second - at))
    assert len(ratios) > 30
    assert abs(np.median(ratios) - style.swing_ratio(tempo_bpm)) <= 0.05
    if name == "jazz":
        assert style.swing_ratio(80) > style.swing_ratio(210) + 0.3  # swing depends on tempo


def test_jazz_hihat_on_two_and_four_and_brushes_when_slow():
    style = arrange.load_style("jazz")
    s = sheet(bars=8)
    pedal = [e.beat for e in arrange.score(s, style, seed=0, humanise=False) if e.part == "drums" and e.pitch == 44]
    assert pedal and {round(b) % 4 for b in pedal} == {1, 3}
    slow, fast = sheet(period_s=60 / 80), sheet(period_s=60 / 160)
    kit = {m.instruments[0].program for m in [arrange.to_midi([], x, style=style) for x in (slow, fast)]}
    assert kit == {style.part("drums").slow_program, style.part("drums").program}


@pytest.mark.parametrize("name", STYLES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bass_on_a_chord_tone_on_every_first_beat(name, seed):
    style = arrange.load_style(name)
    s = sheet(pickup=1, chords_per_bar=(("C:maj",), ("A:min",), ("F:maj/3", "G:7"), ("D:min7", "G:7"), ("E:hdim7",),
                                        ("A:7",)))
    bass_part = next(p.name for p in style.parts if p.role == "bass")
    bass = [e for e in arrange.score(s, style, seed=seed, humanise=False) if e.part == bass_part]
    for bar in s.bars()[1:]:
        first = [e for e in bass if abs(e.beat - delay_beats(style, bass_part, s, e.beat) - bar[0]) < 1e-9]
        assert first, f"no bass note on the downbeat of bar at beat {bar[0]}"
        assert all(e.pitch % 12 in chord_pitch_classes(s.chords[bar[0]]) for e in first), (first, s.chords[bar[0]])
    if name == "jazz":  # walking: a note on every beat, and some notes outside the chord (chromatic approaches)
        assert len(bass) >= len(s.beats_s) - 2
        outside = [e for e in bass
                   if e.pitch % 12 not in chord_pitch_classes(played_chord(s.chords[int(e.beat)], style, s.key))]
        assert outside and all(int(e.beat) + 1 in {b[0] for b in s.bars()} for e in outside)


@pytest.mark.parametrize("name", ["jazz", "rock", "lofi", "bossa_nova", "classical"])
def test_a_waltz_gets_a_three_four_groove(name):
    style = arrange.load_style(name)
    s = sheet(beats_per_bar=3, bars=16)
    events = [replace(e, beat=e.beat - delay_beats(style, e.part, s, e.beat))
              for e in arrange.score(s, style, seed=0, humanise=False)]
    bars = s.bars()
    starts = [b[0] for b in bars]
    for e in events:  # nothing in a 4/4 pattern's last beat: every bar-relative position is inside 3 beats
        bar_start = max(b for b in starts if b <= e.beat + 1e-9)
        assert e.beat - bar_start < 3
    rhythm = {p.name: [] for p in style.parts}
    for b in starts:
        for p in style.parts:
            rhythm[p.name].append(tuple(sorted({round(e.beat - b, 4) for e in events
                                                if e.part == p.name and b - 1e-9 <= e.beat < b + 3})))
    lead = style.parts[0].name
    # bar-periodic with period 3: every bar starts with a hit, the bar's rhythm recurs, and the 3/4
    # groove is what plays (its hits, not a 4/4 pattern's, in the groove bars)
    assert all(r and r[0] == 0 for r in rhythm[lead][:-1])
    common = max(set(rhythm[lead]), key=rhythm[lead].count)
    assert rhythm[lead].count(common) >= 4
    beats_hit = sorted({math.floor(x + 1e-9) for r in rhythm[lead] for x in r})
    assert beats_hit[-1] == 2


@pytest.mark.parametrize("beats_per_bar", [2, 5, 6])
def test_other_meters_play_whole_bars_of_their_own_length(beats_per_bar):
    """Meters the styles have no pattern for play the nearest one cut or repeated to the bar."""
    style = arrange.load_style("rock")
    s = sheet(beats_per_bar=beats_per_bar, bars=8)
    events = arrange.score(s, style, seed=0, humanise=False)
    for bar in s.bars()[:-1]:  # the last bar plays the ending
        inside = [e for e in events if bar[0] <= e.beat < bar[0] + beats_per_bar]
        assert any(e.part == "bass" and abs(e.beat - bar[0]) < 1e-9 for e in inside)
        assert {math.floor(e.beat - bar[0]) for e in inside if e.part == "drums"} >= set(range(min(beats_per_bar, 3)))


def test_a_bar_longer_than_the_meter_is_played_as_bars_of_the_meter():
    """A downbeat the analysis missed leaves an 8-beat bar in 4/4; the band keeps playing through it."""
    style = arrange.load_style("jazz")
    s = sheet(bars=6)
    s.downbeats = [d for d in s.downbeats if d != 8]
    bass = [e for e in arrange.score(s, style, seed=0, humanise=False) if e.part == "bass"]
    assert {round(e.beat) for e in bass} >= set(range(4, 16))


def test_a_recorded_kit_soundfont_falls_back_to_the_general_midi_kit(tmp_path):
    from covergen.arrange.render import part_soundfont

    drums = arrange.load_style("jazz").part("drums")
    gm = tmp_path / "gm.sf2"
    missing = replace(drums, soundfont=("Not_A_Kit_LV2.sf2",))
    assert part_soundfont(missing, gm, drums.program) == (gm, False)
    (tmp_path / "kit.sf2").write_bytes(b"")
    own = replace(drums, soundfont=(str(tmp_path / "kit.sf2"),))
    assert part_soundfont(own, gm, drums.program) == (tmp_path / "kit.sf2", True)
    assert part_soundfont(own, gm, drums.slow_program) == (gm, False)  # brushes come from the GM SoundFont


def test_a_part_plays_the_first_of_its_soundfonts_that_is_installed(tmp_path):
    from covergen.arrange.render import part_soundfont

    piano = arrange.load_style("jazz").part("piano")
    gm, lossy = tmp_path / "gm.sf2", tmp_path / "piano.sf3"
    lossy.write_bytes(b"")
    listed = replace(piano, soundfont=(str(tmp_path / "piano.sf2"), str(lossy)))
    assert part_soundfont(listed, gm, piano.program) == (lossy, False)  # a melodic part: not a kit
    (tmp_path / "piano.sf2").write_bytes(b"")
    assert part_soundfont(listed, gm, piano.program) == (tmp_path / "piano.sf2", False)
    assert part_soundfont(replace(piano, soundfont=()), gm, piano.program) == (gm, False)


def test_a_style_part_takes_a_soundfont_or_a_list_of_them(tmp_path):
    base = (styles_mod.styles_dir() / "bossa_nova.toml").read_text()
    nylon = 'instrument = "Acoustic Guitar (nylon)"'
    for value, expected in (('"A.sf2"', ("A.sf2",)), ('["A.sf2", "A.sf3"]', ("A.sf2", "A.sf3"))):
        (tmp_path / "mine.toml").write_text(base.replace(nylon, f"{nylon}\nsoundfont = {value}", 1))
        assert arrange.load_style(tmp_path / "mine.toml").part("guitar").soundfont == expected


def test_a_missing_soundfont_is_one_line_naming_the_package(tmp_path):
    from covergen.errors import SynthError

    midi = arrange.to_midi(arrange.score(sheet(bars=1), arrange.load_style("rock"), seed=0), sheet(bars=1),
                           style=arrange.load_style("rock"))
    with pytest.raises(SynthError) as err:
        render_midi(midi, soundfont=tmp_path / "missing.sf2")
    assert "\n" not in str(err.value) and ("fluid-soundfont-gm" in str(err.value) or "fluidsynth" in str(err.value))


def test_same_seed_same_score_other_seed_other_score():
    style = arrange.load_style("jazz")
    s = sheet()
    assert arrange.score(s, style, seed=7) == arrange.score(s, style, seed=7)
    assert arrange.score(s, style, seed=7) != arrange.score(s, style, seed=8)


def test_phrase_ends_get_fills_and_sections_a_crash():
    style = arrange.load_style("rock")
    s = sheet(bars=16)
    events = [e for e in arrange.score(s, style, seed=0, humanise=False) if e.part == "drums"]
    toms_bars = {int(e.beat) // 4 for e in events if e.pitch in (41, 45, 47, 50)}
    snare_bars = {int(e.beat) // 4 for e in events if e.pitch == 38 and e.beat % 1 == 0.5}
    fill_bars = toms_bars | snare_bars
    assert fill_bars and all(b % style.phrase_bars == style.phrase_bars - 1 for b in fill_bars)
    crash_bars = {int(e.beat) // 4 for e in events if e.pitch == 49}
    assert crash_bars >= {0, 8} and crash_bars <= {0, 8, 15}  # section starts and the ending


def test_no_chord_beats_rest():
    style = arrange.load_style("jazz")
    s = sheet(chords_per_bar=(("N",), ("N",), ("C:maj",), ("G:7",)))
    events = arrange.score(s, style, seed=0, humanise=False)
    assert events and all(s.chords[int(e.beat)] != "N" for e in events)


def test_to_midi_puts_beats_on_the_stretched_grid():
    style = arrange.load_style("rock")
    s = sheet(drift=0.004)  # the song slows down a little
    events = arrange.score(s, style, seed=0, humanise=False)
    grid = arrange.stretched_grid(s, 0.8)
    midi = arrange.to_midi(events, grid, style=style, beats_per_bar=4)
    assert [i.name for i in midi.instruments] == [p.name for p in style.parts]
    assert midi.instruments[0].is_drum and not midi.instruments[1].is_drum
    bass = sorted(midi.instruments[1].notes, key=lambda n: n.start)
    on_beats = [n.start for n in bass if abs(n.start - grid[np.argmin(np.abs(grid - n.start))]) < 1e-6]
    assert len(on_beats) >= len(s.beats_s) - 8
    downbeats = midi.get_downbeats()
    assert all(np.min(np.abs(downbeats - t)) < 1e-3 for t in grid[[0, 4, 8, 12]])  # a DAW shows the song's bars


def _preset(tmp_path, band: str, name="p.toml"):
    file = tmp_path / name
    file.write_text(f'name = "p"\n\n[band]\n{band}\n')
    return file


@pytest.mark.parametrize(("band", "words"), [
    ('style = "polka"', ["p.toml", "band.style", "polka"]),
    ('style = "jazz"\ninstruments = { piano = "Kazoo" }', ["p.toml", "band.instruments.piano", "Kazoo"]),
    ('style = "jazz"\ninstruments = { tuba = "Tuba" }', ["p.toml", "band.instruments.tuba", "no part"]),
    ('style = "jazz"\ncolour = "blue"', ["p.toml", "band", "colour"]),
])
def test_a_preset_naming_an_unknown_style_or_instrument_fails_in_one_line(tmp_path, band, words):
    with pytest.raises(PresetError) as err:
        presets.load(_preset(tmp_path, band))
    message = str(err.value)
    assert "\n" not in message and all(w in message for w in words), message


@pytest.mark.parametrize(("edit", "words"), [
    (('instrument = "Acoustic Bass"', 'instrument = "Kazoo Bass"'), ["mine.toml", "parts.bass.instrument", "Kazoo"]),
    (("hihat_pedal = [[1, 78]", "cowbel = [[1, 78]"), ["mine.toml", "parts.drums.groove.4", "cowbel"]),
    (('voicing = "shell"', 'voicing = "cluster"'), ["mine.toml", "parts.piano.voicing", "cluster"]),
    (('role = "bass"', 'role = "bass"\nvolume = 3'), ["mine.toml", "parts.bass", "volume"]),
    (('role = "bass"', 'role = "bass"\nsoundfont = "bass.wav"'), ["mine.toml", "parts.bass.soundfont", "bass.wav"]),
    (('[0, 1, "root", 100]', '[0, 1, "tonic", 100]'), ["mine.toml", "parts.bass.groove.4", "tonic"]),
])
def test_a_style_file_with_a_bad_key_fails_in_one_line(tmp_path, edit, words):
    text = (styles_mod.styles_dir() / "jazz.toml").read_text()
    assert edit[0] in text
    (tmp_path / "mine.toml").write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(PresetError) as err:
        presets.load(_preset(tmp_path, 'style = "mine.toml"'))
    message = str(err.value)
    assert "\n" not in message and all(w in message for w in words), message


def test_a_user_style_next_to_the_preset_and_instrument_overrides(tmp_path):
    text = (styles_mod.styles_dir() / "rock.toml").read_text().replace('name = "rock"', 'name = "surf"')
    (tmp_path / "surf.toml").write_text(text)
    p = presets.load(_preset(tmp_path, 'style = "surf.toml"\ninstruments = { guitar = "Electric Guitar (clean)" }',
                             name="surf_preset.toml"))
    assert p.band.resolved.name == "surf" and p.band.resolved.part("guitar").program == 27
    for name in presets.available():  # every shipped preset has a band
        assert presets.load(name).band.resolved.name == name


def _onsets_s(y: np.ndarray, sample_rate: int) -> np.ndarray:
    """Onset times (s): spectral-flux peaks at a 2.9 ms hop, moved back to the start of their energy rise
    (the peak itself lags a bass note's start by about 10 ms)."""
    import librosa

    hop = 64
    env = librosa.onset.onset_strength(y=y.mean(axis=0), sr=sample_rate, hop_length=hop, n_fft=512)
    frames = librosa.onset.onset_detect(onset_envelope=env, sr=sample_rate, hop_length=hop, backtrack=True)
    return frames * hop / sample_rate


@needs_fluidsynth
@pytest.mark.parametrize(("part", "pitches"), [("drums", {36}), ("bass", None)])
def test_rendered_kick_and_bass_onsets_sit_on_the_grid(part, pitches):
    """Render the rock kick and bass alone on a drifting grid; detected onsets within 20 ms of the notes' grid times."""
    sr = 22050
    style = arrange.load_style("rock")
    s = sheet(bars=6, drift=0.003, chords_per_bar=(("E:min",), ("C:maj",), ("G:maj",), ("D:maj",)))
    exact = [e for e in arrange.score(s, style, seed=0, humanise=False) if e.part == part]
    events = [e for e in arrange.score(s, style, seed=0) if e.part == part and (pitches is None or e.pitch in pitches)]
    grid_beats = sorted({round(e.beat * 2) / 2 for e in exact if pitches is None or e.pitch in pitches})
    if part == "bass":  # repeated eighths of one pitch blur; keep the notes that change pitch or follow a rest
        events = [e for i, e in enumerate(events) if i == 0 or e.pitch != events[i - 1].pitch]
        grid_beats = sorted({round(e.beat * 2) / 2 for e in events})
    midi = arrange.to_midi(events, s, style=style)
    track = next(i for i in midi.instruments if i.name == part)
    inst, font = arrange.render.playable_part(style.part(part), track, find_soundfont())  # as render_band
    midi.instruments = [inst]
    y = render_midi(midi, sample_rate=sr, soundfont=font)
    expected_s = arrange.render.beat_to_seconds(np.array(grid_beats), np.asarray(s.beats_s))
    found = _onsets_s(y, sr)
    errors_ms = np.array([np.min(np.abs(found - t)) * 1000 for t in expected_s])
    assert len(found) >= 0.8 * len(expected_s)
    assert np.median(errors_ms) < 20, errors_ms
    assert np.mean(errors_ms < 30) > 0.8, errors_ms


def _sound_starts_s(y: np.ndarray, sample_rate: int, note_starts_s) -> np.ndarray:
    """Where each note's sound begins: its envelope (1 ms mean of |y|) reaching -20 dB of its peak in 0.3 s."""
    env = np.convolve(np.abs(y.mean(axis=0)), np.ones(22) / 22, mode="same")
    out = []
    for t in note_starts_s:
        a = int(round((t - 0.05) * sample_rate))  # from 50 ms before the grid time: an early note is seen
        w = env[a:a + int(0.35 * sample_rate)]
        out.append((a + int(np.argmax(w >= 0.1 * w.max()))) / sample_rate)
    return np.array(out)


@needs_fluidsynth
def test_a_late_sample_is_played_early_so_it_sounds_on_the_grid():
    """FluidR3's picked bass sounds 18-50 ms after its note-on: the band plays each note earlier by its
    pitch's measured latency, so its sound begins within 3 ms of the grid; the MIDI file keeps grid times."""
    import pretty_midi

    sr, font = 22050, find_soundfont()
    if "FluidR3" not in font.name:
        pytest.skip("the latencies asserted are FluidR3's")
    rng = np.random.default_rng(1)
    grid_s = 0.3 + 0.45 * np.arange(16)
    inst = pretty_midi.Instrument(program=34, name="bass")  # Electric Bass (pick)
    inst.notes = [pretty_midi.Note(int(rng.integers(70, 120)), int(rng.integers(28, 53)), t, t + 0.3) for t in grid_s]
    midi = pretty_midi.PrettyMIDI()
    midi.instruments = [inst]
    late_ms = (_sound_starts_s(render_midi(midi, sample_rate=sr, soundfont=font), sr, grid_s) - grid_s) * 1000
    played, used = arrange.render.playable_part(arrange.load_style("rock").part("bass"), inst, font)
    assert [n.start for n in inst.notes] == grid_s.tolist()  # the part's own track is not moved
    midi.instruments = [played]
    on_ms = (_sound_starts_s(render_midi(midi, sample_rate=sr, soundfont=used), sr, grid_s) - grid_s) * 1000
    assert np.median(late_ms) > 15, late_ms
    assert np.max(np.abs(on_ms)) < 3, on_ms


@needs_fluidsynth
@pytest.mark.parametrize("name", ["jazz", "lofi"])
def test_the_band_streamed_in_blocks_is_the_band_rendered_whole(name, monkeypatch):
    """Each part goes from FluidSynth's file through its chain into the bus block by block (a long song's parts
    are never held whole): the sum does not depend on the block size, and the same seed gives the same band.
    (lofi's tape hiss and crackle are drawn block by block, so only its reproducibility is compared.)"""
    from covergen import mix

    sr = 22050
    style = arrange.load_style(name)
    s = sheet(bars=4)
    events = arrange.score(s, style, seed=3)
    monkeypatch.setattr(mix, "CHUNK_SAMPLES", 10 ** 9)
    whole, facts = arrange.render_band(events, s, style=style, sample_rate=sr, seed=3, duration_s=s.duration_s)
    monkeypatch.setattr(mix, "CHUNK_SAMPLES", 8192 * 2)
    blocks, _ = arrange.render_band(events, s, style=style, sample_rate=sr, seed=3, duration_s=s.duration_s)
    again, _ = arrange.render_band(events, s, style=style, sample_rate=sr, seed=3, duration_s=s.duration_s)
    assert whole.shape == blocks.shape == (2, round(s.duration_s * sr)) and len(facts["parts"]) >= 3
    assert np.array_equal(blocks, again)
    if name == "jazz":
        assert np.array_equal(whole, blocks)
    assert mix.integrated_lufs(blocks, sample_rate=sr) == pytest.approx(style.master.target_lufs, abs=0.5)


@needs_fluidsynth
def test_cli_arrange_writes_the_band_and_its_midi(tmp_path):
    import pretty_midi
    import soundfile as sf

    s = sheet(beats_per_bar=3, bars=4, chords_per_bar=(("D:min",), ("G:7",), ("C:maj",), ("A:7",)))
    (tmp_path / "song.json").write_text(s.to_json())
    out, mid, rep = tmp_path / "band.wav", tmp_path / "band.mid", tmp_path / "r.json"
    result = CliRunner().invoke(app, ["arrange", str(tmp_path / "song.json"), "--to", "jazz", "-o", str(out),
                                      "--midi", str(mid), "--report", str(rep)])
    assert result.exit_code == 0, result.output
    y, sr = sf.read(out, always_2d=True)
    assert sr == 44100 and y.shape[1] == 2 and np.sqrt(np.mean(y ** 2)) > 0.01
    midi = pretty_midi.PrettyMIDI(str(mid))
    assert sorted(i.name for i in midi.instruments) == ["bass", "drums", "piano"]
    assert midi.time_signature_changes[0].numerator == 3
    report = json.loads(rep.read_text())
    assert report["lead_sheet"]["meter"] == "3/4" and report["band"]["style"] == "jazz"
    assert "| Dm | G7 | C | A7 |" in report["lead_sheet"]["chart"]
    assert report["band"]["tempo_bpm"] == pytest.approx(s.tempo_bpm - 15, abs=0.5)  # the preset's tempo change
    bad = CliRunner().invoke(app, ["arrange", str(tmp_path / "song.json"), "--to", "polka", "-o", str(out)])
    assert bad.exit_code == 1 and "polka" in bad.output and len(bad.output.strip().splitlines()) == 1


def test_a_style_edit_changes_the_score_without_code():
    """A user's style edit changes the score without code: a style whose drums play only a kick."""
    style = arrange.load_style("rock")
    drums = style.part("drums")
    kick_only = replace(drums, groove={4: (((("kick", 0.0, 100),)),)}, fill={}, section_start={}, ending={})
    style2 = replace(style, parts=(kick_only,) + style.parts[1:])
    events = [e for e in arrange.score(sheet(bars=4), style2, seed=0, humanise=False) if e.part == "drums"]
    assert {e.pitch for e in events} == {36} and [e.beat for e in events] == [0.0, 4.0, 8.0, 12.0]


def test_a_vocal_stem_far_under_the_song_is_reported_as_an_instrumental(caplog):
    """A lead sheet read from a file whose melody came from the vocal stem: 20 LU under the song (an
    instrumental's stem) gets a one-line warning and a note in the report; 5 LU under (a sung song's) only the
    measured level. With the melody from the lead line of `other` (what the analysis picks for an
    instrumental) there is nothing to warn of."""
    from covergen import mix, pipeline

    rng = np.random.default_rng(0)
    stem = (0.1 * rng.standard_normal((2, 44100 * 4))).astype(np.float32)
    level = mix.integrated_lufs(stem, sample_rate=44100)
    for under, melody_stem, warned in ((20.0, "vocals", True), (5.0, "vocals", False),
                                       (20.0, pipeline.LEAD_LINE, False)):
        report, entry = {"input": {"lufs": level + under}}, {}
        caplog.clear()
        pipeline._instrumental_warning(stem, 44100, report, entry, "song.wav", melody_stem)
        assert entry["vocals_under_song_lu"] == pytest.approx(under, abs=0.1)
        assert ("warning" in entry) == warned
        assert ("an instrumental?" in caplog.text) == warned


def test_fluidsynth_keeps_the_grid_with_a_tempo_change_on_every_beat():
    """The band's MIDI carries the song's tempo map (one tempo change per beat, a short lead-in); FluidSynth
    plays such a file ahead of time, about 1 ms more per change (a band 0.25 s ahead of the singer after 3
    minutes). Rendered at one tempo, a kick on each of 32 beats lands where its note starts: no drift."""
    import librosa
    import pretty_midi

    from covergen.arrange import render
    from covergen.leadsheet import midi_on_grid

    if shutil.which("fluidsynth") is None or render.find_soundfont() is None:
        pytest.skip("fluidsynth or a General MIDI SoundFont is not installed")
    sr = 22050
    beats = np.concatenate([[0.052, 0.389], 0.877 + 0.48 * np.arange(30)])
    midi = midi_on_grid(beats, beats_per_bar=4)
    kick = pretty_midi.Instrument(program=0, is_drum=True, name="kick")
    kick.notes = [pretty_midi.Note(110, 36, t, t + 0.1) for t in beats]
    midi.instruments = [kick]
    y = render.render_midi(midi, sample_rate=sr)
    env = librosa.onset.onset_strength(y=y.mean(axis=0), sr=sr, hop_length=64, n_fft=512)
    found = librosa.onset.onset_detect(onset_envelope=env, sr=sr, hop_length=64, backtrack=True) * 64 / sr
    err_ms = np.array([1000 * (found[np.argmin(np.abs(found - t))] - t) for t in beats])
    assert np.median(np.abs(err_ms)) < 10, err_ms
    assert np.ptp(err_ms) < 5, err_ms  # the same small detector lag on every beat, not a growing lead
