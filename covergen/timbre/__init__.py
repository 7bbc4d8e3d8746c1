"""DDSP timbre transfer (PyTorch): re-play a monophonic stem with a trained instrument's timbre.

`synth` holds the weightless synthesizers, `net` the decoder, `features` f0/loudness,
`melody` the phrase tracking and melody notes, `transfer` the stem-level API. Instruments are
registry models named `timbre-<name>`.
"""
from __future__ import annotations

from .melody import melody_notes, voice_gate
from .transfer import Instrument, list_instruments, load_instrument, synthesize, transfer_stem

__all__ = ["Instrument", "list_instruments", "load_instrument", "melody_notes", "synthesize", "transfer_stem",
           "voice_gate"]
