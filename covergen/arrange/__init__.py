"""The arranger: a new band in the target style, on the song's own beat grid and chords.

    events = arrange.score(lead_sheet, style, seed=0)           # [Event(part, beat, length_beats, pitch, velocity)]
    midi = arrange.to_midi(events, grid_s, style=style)         # one track per part, on the song's beats
    band, facts = arrange.render_band(events, grid_s, style=style, sample_rate=44100)

or all three at once with `arrange.arrange`. Styles are data (`presets/styles/*.toml`, see
`styles`); a preset's `[band]` table names one.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..leadsheet import LeadSheet
from .render import find_soundfont, render_band, render_midi, to_midi
from .score import Event, played_chord, score, song_form, swing_beat
from .styles import Style, load_style

__all__ = ["Event", "Style", "arrange", "score", "to_midi", "render_band", "render_midi", "load_style",
           "find_soundfont", "stretched_grid", "played_chord", "swing_beat"]


def stretched_grid(lead_sheet: LeadSheet, tempo_ratio: float = 1.0) -> np.ndarray:
    """The song's beat times at the cover's tempo (`tempo_ratio` > 1 is faster): the original
    recording time-stretched by the same ratio keeps its beats on this grid."""
    if tempo_ratio <= 0:
        raise ValueError(f"tempo_ratio={tempo_ratio} must be > 0")
    return np.asarray(lead_sheet.beats_s, dtype=float) / tempo_ratio


def arrange(lead_sheet: LeadSheet, style: Style | str | Path, *, seed: int = 0, tempo_ratio: float = 1.0,
            sample_rate: int = 44100, soundfont: Path | None = None) -> tuple[np.ndarray, list[Event], dict]:
    """The band for `lead_sheet` in `style` (a Style, a style name or a .toml path) at the cover's tempo.

    Returns (stereo float32 audio [shape=(2, samples)] as long as the song at the new tempo,
    the events in beats, facts: style, tempo, swing ratio, form (intro/outro bars), parts, render
    times, loudness).
    """
    if not isinstance(style, Style):
        style = load_style(style)
    form = song_form(lead_sheet)
    events = score(lead_sheet, style, seed=seed, tempo_ratio=tempo_ratio, form=form)
    grid = stretched_grid(lead_sheet, tempo_ratio)
    end_s = max(lead_sheet.duration_s, lead_sheet.beats_s[-1]) / tempo_ratio
    audio, facts = render_band(events, grid, style=style, sample_rate=sample_rate, soundfont=soundfont, seed=seed,
                               duration_s=end_s + 1.0)
    tempo_bpm = lead_sheet.tempo_bpm * tempo_ratio
    facts.update(tempo_bpm=round(tempo_bpm, 2), tempo_ratio=tempo_ratio,
                 swing_ratio=round(style.swing_ratio(tempo_bpm), 3), form=asdict(form), events=len(events))
    return audio, events, facts
