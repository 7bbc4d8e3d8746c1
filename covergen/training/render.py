"""Render MIDI to audio with FluidSynth and a General MIDI SoundFont (training data, test audio, demo song).

The renderer lives in the runtime package (`covergen.arrange.render`, which the arranger uses), with
its guards against stuck notes: a minimum note length, all-notes-off on every channel, a hard
timeout and an output-size cap. This module keeps the names training code imports.
"""
from __future__ import annotations

from ..arrange.render import MIN_NOTE_S, find_soundfont, render_midi

__all__ = ["find_soundfont", "render_midi", "MIN_NOTE_S"]
