"""Render MIDI to audio with FluidSynth and a General MIDI SoundFont.

Used to make training data, test audio and the bundled demo song from scores
whose licence we control. FluidSynth's `-F` mode renders until every voice is
silent, so a stuck note renders forever: every note gets a minimum length,
every channel ends with all-notes-off, and the process has a hard timeout and
an output-size cap.
"""
from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pretty_midi
import soundfile as sf

__all__ = ["find_soundfont", "render_midi", "MIN_NOTE_S"]

log = logging.getLogger(__name__)

MIN_NOTE_S = 0.03
_TAIL_S = 1.5
_SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf2/MuseScore_General.sf2",
    "/usr/share/sounds/sf3/MuseScore_General.sf3",
)


def find_soundfont() -> Path | None:
    """The first General MIDI SoundFont installed from Debian, or None."""
    for candidate in _SOUNDFONTS:
        if Path(candidate).is_file():
            return Path(candidate)
    return None


def _sanitise(midi: pretty_midi.PrettyMIDI) -> float:
    """Drop zero-length notes, clamp velocities, add all-notes-off. Returns end time in s."""
    end_s = 0.0
    for inst in midi.instruments:
        notes = []
        for note in inst.notes:
            if note.end - note.start < MIN_NOTE_S:
                note.end = note.start + MIN_NOTE_S
            note.velocity = int(np.clip(note.velocity, 1, 127))
            note.pitch = int(np.clip(note.pitch, 0, 127))
            notes.append(note)
        inst.notes = notes
        if notes:
            end_s = max(end_s, max(n.end for n in notes))
    for inst in midi.instruments:
        for cc in (64, 120, 123):  # sustain off, all sound off, all notes off
            inst.control_changes.append(pretty_midi.ControlChange(cc, 0, end_s + 0.05))
    return end_s


def render_midi(
    midi: pretty_midi.PrettyMIDI,
    *,
    sample_rate: int = 44100,
    soundfont: Path | None = None,
    gain: float = 0.5,
) -> np.ndarray:
    """Render `midi` to float32 audio [shape=(2, samples)] at `sample_rate`.

    The result is cut to the last note end plus a short release tail.
    """
    if shutil.which("fluidsynth") is None:
        raise RuntimeError("fluidsynth is not installed (Debian package `fluidsynth`; run `make install`)")
    soundfont = soundfont or find_soundfont()
    if soundfont is None:
        raise RuntimeError("no General MIDI SoundFont found (Debian package `fluid-soundfont-gm`)")
    end_s = _sanitise(midi)
    max_samples = int((end_s + _TAIL_S) * sample_rate)
    with tempfile.TemporaryDirectory() as tmp:
        mid_path, wav_path = Path(tmp) / "in.mid", Path(tmp) / "out.wav"
        midi.write(str(mid_path))
        cmd = ["fluidsynth", "-ni", "-q", "-g", str(gain), "-r", str(sample_rate),
               "-o", "synth.reverb.active=0", "-o", "synth.chorus.active=0",
               "-o", "synth.dynamic-sample-loading=1",  # load only the samples used: 3x faster on .sf3
               "-F", str(wav_path), "-T", "wav", "-O", "float", str(soundfont), str(mid_path)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60 + 4 * end_s)
        size_cap = max_samples * 2 * 4 * 4 + 1_000_000
        if wav_path.stat().st_size > size_cap:
            raise RuntimeError(f"fluidsynth wrote {wav_path.stat().st_size} bytes, expected < {size_cap}")
        y, sr = sf.read(wav_path, dtype="float32", always_2d=True)
    assert sr == sample_rate, (sr, sample_rate)
    return np.ascontiguousarray(y[:max_samples].T)
