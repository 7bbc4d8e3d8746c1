"""DDSP timbre transfer (PyTorch): re-play a monophonic stem with a trained instrument's timbre.

`synth` holds the weightless synthesizers, `net` the decoder, `features` f0/loudness,
`melody` the phrase tracking and melody notes, `transfer` the stem-level API. Instruments are
registry models named `timbre-<name>`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from .melody import melody_notes
from .transfer import Instrument, list_instruments, load_instrument, synthesize, transfer_stem

__all__ = ["Instrument", "list_instruments", "load_instrument", "melody_notes", "synthesize", "transfer_stem",
           "train_instrument"]


def train_instrument(audio_dir: Path, *, name: str, steps: int, seed: int = 0,
                     on_progress: Callable[[float], None] | None = None) -> Path:
    """Train `timbre-<name>` from a folder of monophonic recordings; saved and registered in the user models folder.

    Resumes from the checkpoint of an interrupted run with the same name. Returns the weights' path.
    """
    from ..training.train_timbre import train_user_instrument
    from .transfer import check_name, forget

    check_name(name)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    path = train_user_instrument(Path(audio_dir), name=name, steps=steps, seed=seed, on_progress=on_progress)
    forget(name)
    return path
