"""The bundled demo song: an original tune composed here, rendered with FluidSynth.

It is licence-clean (composition: this project, MIT; sounds: FluidR3 GM SoundFont, MIT)
and has the four stems covergen separates, each rendered on its own as well, so tests
can measure separation against ground truth. `python -m covergen.training.demo_song`
rewrites covergen/data/demo_song.flac.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pretty_midi

from .render import render_midi

__all__ = ["compose", "render_stems", "held_out_songs", "STEM_PROGRAMS"]

TEMPO_BPM = 120.0
# stem -> (GM program, is_drum, pan -1..1)
STEM_PROGRAMS = {"vocals": (53, False, 0.0), "drums": (0, True, 0.0), "bass": (33, False, 0.0),
                 "other": (0, False, -0.3)}
_PROGRESSION = [(0, "maj"), (9, "min"), (5, "maj"), (7, "maj")]  # C Am F G
_TRIAD = {"maj": (0, 4, 7), "min": (0, 3, 7)}
_SCALE = (0, 2, 4, 5, 7, 9, 11)
_RHYTHMS = ((1, 1, 1, 1), (1.5, 0.5, 1, 1), (2, 1, 1), (1, 1, 2), (0.5, 0.5, 1, 2), (3, 1))


def _melody_bar(rng, bar_start_s, root, quality, beat_s, low, high, prev):
    notes = []
    t = 0.0
    for dur in _RHYTHMS[rng.integers(len(_RHYTHMS))]:
        chord_tones = [60 + root + i for i in _TRIAD[quality]]
        pool = [p + 12 * o for p in chord_tones for o in (-1, 0, 1)]
        if rng.random() < 0.3:
            pool += [60 + s + 12 * o for s in _SCALE for o in (-1, 0, 1)]
        pool = [p for p in pool if low <= p <= high]
        pitch = min(pool, key=lambda p: abs(p - prev) + rng.random() * 4)
        start = bar_start_s + t * beat_s
        notes.append(pretty_midi.Note(int(88 + rng.integers(-10, 10)), pitch, start, start + dur * beat_s * 0.92))
        prev, t = pitch, t + dur
    return notes, prev


def compose(seed: int = 7, bars: int = 22, *, tempo_bpm: float = TEMPO_BPM,
            programs: dict[str, int] | None = None) -> dict[str, pretty_midi.PrettyMIDI]:
    """One PrettyMIDI per stem (same timeline): intro 2 bars, verse, chorus an octave-ish up, outro.

    `programs` overrides the GM program (0-based) of any pitched stem, for varied test songs.
    """
    rng = np.random.default_rng(seed)
    beat_s = 60.0 / tempo_bpm
    programs = {stem: prog for stem, (prog, _, _) in STEM_PROGRAMS.items()} | (programs or {})
    parts = {stem: pretty_midi.Instrument(program=programs[stem], is_drum=drum, name=stem)
             for stem, (_, drum, _) in STEM_PROGRAMS.items()}
    prev = 64
    for bar in range(bars):
        root, quality = _PROGRESSION[bar % 4]
        t0 = bar * 4 * beat_s
        # drums: kick 1 & 3, snare 2 & 4, closed hat on eighths, crash on section starts
        for beat in range(4):
            tb = t0 + beat * beat_s
            parts["drums"].notes.append(pretty_midi.Note(100, 36 if beat % 2 == 0 else 38, tb, tb + 0.1))
            for half in (0, 0.5):
                parts["drums"].notes.append(pretty_midi.Note(70 + 10 * (half == 0), 42, tb + half * beat_s,
                                                             tb + half * beat_s + 0.05))
        if bar in (0, 2, 10, bars - 2):
            parts["drums"].notes.append(pretty_midi.Note(90, 49, t0, t0 + 0.5))
        # bass: root, fifth, octave walk
        for beat, step in enumerate((0, 7, 12, 7)):
            tb = t0 + beat * beat_s
            parts["bass"].notes.append(pretty_midi.Note(95, 36 + root + step, tb, tb + beat_s * 0.85))
        # piano comping: chord on beats 1 and 3 (+ a push on 2.5)
        for beat in (0.0, 1.5, 2.0):
            tb = t0 + beat * beat_s
            for i in _TRIAD[quality]:
                parts["other"].notes.append(pretty_midi.Note(64, 48 + root + i + 12 * (i < 4 and root < 5),
                                                             tb, tb + beat_s * 0.9))
        # lead voice from bar 2 to the last two bars; chorus (bars 10..19) sits higher
        if 2 <= bar < bars - 2:
            low, high = (60, 74) if bar < 10 else (64, 79)
            notes, prev = _melody_bar(rng, t0, root, quality, beat_s, low, high, prev)
            parts["vocals"].notes.extend(notes)
    out = {}
    for stem, inst in parts.items():
        midi = pretty_midi.PrettyMIDI(initial_tempo=tempo_bpm)
        midi.instruments.append(inst)
        out[stem] = midi
    return out


# Varied arrangements for measuring separation on songs nobody tuned on (0-based GM programs).
_LEADS = (53, 52, 73, 65, 85, 56)        # voice oohs, choir aahs, flute, alto sax, voice lead, trumpet
_BASSES = (33, 32, 34, 35, 38)           # finger, acoustic, pick, fretless, synth bass
_OTHERS = (0, 4, 24, 16, 48)             # piano, e-piano, nylon guitar, organ, strings


def held_out_songs(count: int = 6, *, first_seed: int = 1000) -> list[dict]:
    """Settings of `count` test songs (seed, tempo, programs); seeds >= 1000 are never used for tuning."""
    rng = np.random.default_rng(first_seed)
    songs = []
    for i in range(count):
        songs.append({"seed": first_seed + i, "tempo_bpm": float(rng.integers(90, 141)),
                      "programs": {"vocals": int(rng.choice(_LEADS)), "bass": int(rng.choice(_BASSES)),
                                   "other": int(rng.choice(_OTHERS))}})
    return songs


def _pan(y_mono: np.ndarray, pan: float) -> np.ndarray:
    angle = (pan + 1) * np.pi / 4
    return np.stack([np.cos(angle) * y_mono, np.sin(angle) * y_mono]).astype(np.float32)


def render_stems(*, sample_rate: int = 44100, seed: int = 7, bars: int = 22, tempo_bpm: float = TEMPO_BPM,
                 programs: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    """Render each stem [shape=(2, samples)], all the same length; their sum is the song."""
    stems = {}
    for stem, midi in compose(seed=seed, bars=bars, tempo_bpm=tempo_bpm, programs=programs).items():
        y = render_midi(midi, sample_rate=sample_rate, gain=0.6)
        stems[stem] = _pan(y.mean(axis=0), STEM_PROGRAMS[stem][2])
    n = max(s.shape[1] for s in stems.values())
    return {k: np.pad(v, ((0, 0), (0, n - v.shape[1]))) for k, v in stems.items()}


def main() -> None:
    import soundfile as sf

    stems = render_stems()
    mix = sum(stems.values())
    mix *= 0.5 / np.max(np.abs(mix))
    out = Path(__file__).resolve().parents[1] / "data" / "demo_song.flac"
    out.parent.mkdir(exist_ok=True)
    sf.write(out, mix.T, 44100, subtype="PCM_16")
    print(f"wrote {out} ({mix.shape[1] / 44100:.1f} s)")


if __name__ == "__main__":
    main()
