"""Rendered multi-instrument songs with ground-truth lead sheets, for measuring the analysis (issue #18).

Each seed makes one song (~20-30 s, 44.1 kHz stereo): a random diatonic progression in a major or
minor key (maj, min, 7, maj7, min7, dim, sus4), a melody on chord and passing tones, a bass line,
comping and drums, rendered with FluidSynth (`render.render_midi`). The score is written in beats
and mapped to seconds on the song's own beat grid at the very end, so the ground truth is exact:
the beats are the rendered beat times after tempo drift and jitter, the chords are the chords
that sound on each beat, the melody notes are the notes the lead instrument plays.

**Seed split (never mix them):**
  * `DEV_SEEDS` = 0-99: for tuning the analysis (`python -m benchmarks.bench_analysis --dev` scores 0-15);
  * `HELD_OUT_SEEDS` = 1000 and up: for reporting only (`make bench` scores 1000-1015). Never tune
    a threshold, a template or a model on them.
  * 2000 and up: long songs for the speed measurement (`song(SPEED_SEED, duration_s=180)`).

Categories, chosen from the seed so that any 16 consecutive seeds hold every one:
  * meter 3/4 when seed % 4 == 1, else 4/4;
  * swung eighths (ratio 1.5-2.2) when seed % 3 == 0, else straight;
  * arrangement: piano only when seed % 7 == 2, string ensemble only when seed % 7 == 5 (both
    without drums), else a band (lead, comping on piano/guitar/strings/organ, bass, GM drums);
  * tempo drift (a slow sinusoidal tempo curve of +/-5-8 % and 4-10 ms random beat jitter) when
    seed % 5 in (0, 2, 4), else a steady tempo;
  * minor key when seed % 8 in (1, 4, 6), else major;
  * a pickup (anacrusis of 1-3 beats, melody only, chord `N`) when seed % 10 in (3, 6, 9);
the rest from a seeded generator: the tonic, tempo 60-180 BPM, chord rhythm (every bar, every half
bar, sometimes every beat), how many chords are sevenths, an intro of comping without melody,
comping/bass/drum patterns and instruments. The SoundFont alternates, FluidR3 GM when
(seed + seed // 4) is even, else MuseScore General, so nothing is tuned to one SoundFont.

Renders are cached under $COVERGEN_CACHE/leadsheet_songs (default ~/.cache/covergen/...), keyed by
generator version, seed and length: the lead and the backing are rendered separately and the
mixture is their sum, so the bench can hand the analysis the true lead stem for the melody.

`python -m covergen.training.leadsheet_songs --write DIR --seeds 0-9` writes NAME.flac,
NAME.leadsheet.json and NAME.lab per song, to listen to and to open in Sonic Visualiser.
"""
from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pretty_midi
import soundfile as sf

from .. import folders
from ..audio import atomic_path
from ..leadsheet import PITCH_NAMES, QUALITIES, LeadSheet, Note, beat_to_seconds, chord_label
from .render import render_midi

__all__ = ["DEV_SEEDS", "HELD_OUT_SEEDS", "SPEED_SEED", "SAMPLE_RATE", "SOUNDFONTS", "SongPlan", "Score",
           "Event", "RenderedSong", "plan", "score", "beat_grid", "to_midi", "render", "song", "write", "main",
           "parse_seeds", "cache_dir"]

log = logging.getLogger(__name__)

GENERATOR_VERSION = 2  # part of the cache key: bump when a seed would make a different song
SAMPLE_RATE = 44100
DEV_SEEDS = range(0, 100)
HELD_OUT_SEEDS = range(1000, 2000)
SPEED_SEED = 2002  # a 4/4 band song with drift
SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf3/MuseScore_General.sf3")

# scale degree -> (semitones above the tonic, triad quality, seventh quality)
_MAJOR_DEGREES = [(0, "maj", "maj7"), (2, "min", "min7"), (4, "min", "min7"), (5, "maj", "maj7"),
                  (7, "maj", "7"), (9, "min", "min7"), (11, "dim", "dim")]
# natural minor, with the harmonic-minor dominant (V, V7) as degree 4 and v kept as degree 7
_MINOR_DEGREES = [(0, "min", "min7"), (2, "dim", "dim"), (3, "maj", "maj7"), (5, "min", "min7"),
                  (7, "maj", "7"), (8, "maj", "maj7"), (10, "maj", "7"), (7, "min", "min7")]
_MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
_MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)
# four-chord loops (degree indices into the tables above)
_MAJOR_LOOPS = [(0, 4, 5, 3), (0, 5, 3, 4), (1, 4, 0, 0), (0, 3, 4, 0), (5, 3, 0, 4), (0, 2, 3, 4),
                (0, 5, 1, 4), (3, 4, 2, 5), (0, 3, 5, 4), (0, 3, 0, 4)]
_MINOR_LOOPS = [(0, 5, 2, 6), (0, 3, 7, 0), (0, 6, 5, 6), (0, 3, 6, 2), (5, 6, 0, 0), (0, 3, 4, 0),
                (1, 4, 0, 0), (0, 5, 3, 4)]
# functional moves for the random walk: degree -> next degrees (weights follow the order)
_MAJOR_MOVES = {0: (3, 4, 5, 1, 2), 1: (4, 6, 3), 2: (5, 3), 3: (4, 0, 1, 6), 4: (0, 5, 3), 5: (1, 3, 4),
                6: (0, 2)}
_MINOR_MOVES = {0: (3, 5, 6, 4, 2, 7), 1: (4,), 2: (5, 3, 6), 3: (4, 0, 6, 1), 4: (0, 5), 5: (6, 3, 1, 4),
                6: (2, 0, 5), 7: (0, 5, 3)}

# GM programs. Lead: (program, centre MIDI pitch of its line)
_LEADS = [(73, 79), (65, 70), (66, 63), (52, 67), (53, 67), (71, 67), (56, 70), (40, 74), (68, 74),
          (80, 72), (81, 67), (11, 74), (22, 72), (54, 67)]
_COMPS = [0, 0, 1, 4, 5, 24, 25, 26, 27, 48, 49, 16]
_BASSES = [32, 33, 34, 35, 38, 43]
_KICK, _SNARE, _STICK, _HAT, _PEDAL, _OPEN, _RIDE, _CRASH = 36, 38, 37, 42, 44, 46, 51, 49


@dataclass(frozen=True)
class SongPlan:
    """Everything the seed decides before a note is written."""
    seed: int
    key_pc: int
    minor: bool
    beats_per_bar: int
    tempo_bpm: float
    swing_ratio: float          # 1.0 straight; long/short ratio of the off-beat eighth
    drift_pct: float            # amplitude of the slow tempo curve, percent of tempo_bpm
    drift_cycles: float         # periods of the tempo curve over the song
    drift_phase: float
    jitter_ms: float            # std of the random beat displacement
    arrangement: str            # band | piano | strings
    pickup_beats: int           # anacrusis before the first downbeat (melody only, chord N)
    intro_bars: int             # bars of accompaniment before the melody enters
    n_bars: int                 # bars from the first downbeat, the final tonic bar included
    chord_rhythm: str           # bar | half | beat
    seventh_rate: float
    lead_in_s: float            # silence before the first beat
    soundfont: str
    lead_program: int
    lead_centre: int
    comp_program: int
    bass_program: int
    comp_style: str
    bass_style: str
    drum_style: str

    @property
    def key(self) -> str:
        return f"{PITCH_NAMES[self.key_pc]} {'minor' if self.minor else 'major'}"

    @property
    def categories(self) -> tuple[str, ...]:
        cats = [f"{self.beats_per_bar}/4", "swing" if self.swing_ratio > 1 else "straight",
                "drift" if self.drift_pct > 0 else "steady", "band" if self.arrangement == "band" else "no-drums",
                *([] if self.arrangement == "band" else [self.arrangement]), "minor" if self.minor else "major",
                Path(self.soundfont).stem.split("_")[0]]
        if self.pickup_beats:
            cats.append("pickup")
        return tuple(cats)


@dataclass(frozen=True)
class Event:
    """One note of the score. beat: position in beats from the first beat of the song (the first
    pickup beat when there is one), before swing; length_beats likewise."""
    part: str       # lead | comp | bass | drums
    beat: float
    length_beats: float
    pitch: int
    velocity: int


@dataclass(frozen=True)
class Score:
    plan: SongPlan
    events: tuple[Event, ...]
    chords: tuple[str, ...]     # one Harte label per beat (n_beats)
    downbeats: tuple[int, ...]  # beat indices where bars start

    @property
    def n_beats(self) -> int:
        return len(self.chords)


@dataclass
class RenderedSong:
    audio: np.ndarray           # float32 (2, samples): lead + backing
    lead: np.ndarray            # float32 (2, samples): the lead instrument alone
    leadsheet: LeadSheet
    plan: SongPlan
    sample_rate: int = SAMPLE_RATE


def _choose(rng: np.random.Generator, options, weights=None):
    weights = None if weights is None else np.asarray(weights, float) / np.sum(weights)
    return options[int(rng.choice(len(options), p=weights))]


def plan(seed: int, *, duration_s: float | None = None) -> SongPlan:
    """The song's parameters from its seed. duration_s: target length (default 20-28 s, drawn)."""
    rng = np.random.default_rng([seed, GENERATOR_VERSION])
    bpb = 3 if seed % 4 == 1 else 4
    swing = float(rng.uniform(1.5, 2.2)) if seed % 3 == 0 else 1.0
    arrangement = {2: "piano", 5: "strings"}.get(seed % 7, "band")
    drifting = seed % 5 in (0, 2, 4)
    tempo = float(rng.uniform(60, 180))
    minor = seed % 8 in (1, 4, 6)
    key_pc = int(rng.integers(12))
    target_s = float(duration_s if duration_s is not None else rng.uniform(20, 28))
    pickup = int(rng.integers(1, bpb)) if seed % 10 in (3, 6, 9) else 0
    n_bars = max(4, int(round(target_s * tempo / 60 / bpb)) - (1 if pickup else 0))
    intro = int(_choose(rng, [0, 1, 2], [0.5, 0.35, 0.15])) if n_bars >= 8 else 0
    chord_rhythm = _choose(rng, ["bar", "half", "beat"], [0.45, 0.4, 0.15])
    if tempo < 80 and chord_rhythm == "bar" and rng.random() < 0.5:
        chord_rhythm = "half"
    lead_program, lead_centre = _LEADS[int(rng.integers(len(_LEADS)))]
    comp_program = _COMPS[int(rng.integers(len(_COMPS)))]
    bass_program = _BASSES[int(rng.integers(len(_BASSES)))]
    if arrangement == "piano":
        lead_program, lead_centre, comp_program, bass_program = (_choose(rng, [0, 1]), 74, 0, 0)
        comp_program = bass_program = lead_program
    elif arrangement == "strings":
        lead_program, lead_centre = _choose(rng, [(40, 76), (48, 74), (49, 74)])
        comp_program, bass_program = _choose(rng, [48, 49]), _choose(rng, [42, 43])
    swung = swing > 1
    if bpb == 3:
        comp_styles = ["waltz", "block", "arpeggio", "pulse"]
        drum_style = _choose(rng, ["jazz_waltz", "waltz"]) if swung else _choose(rng, ["waltz", "waltz_rock"])
    else:
        comp_styles = ["block", "pulse", "offbeat", "arpeggio", "syncopated", "strum"]
        drum_style = (_choose(rng, ["jazz", "shuffle"]) if swung
                      else _choose(rng, ["rock", "pop", "ballad", "disco"]))
    if arrangement == "strings":
        comp_styles = ["block", "pulse", "arpeggio"] + (["waltz"] if bpb == 3 else [])
    comp_style = _choose(rng, comp_styles)
    bass_style = _choose(rng, ["root", "root_fifth", "walking", "eighths"] if bpb == 4 else
                         ["root", "root_fifth", "walking"])
    if swung and bass_style == "eighths":
        bass_style = "walking"
    return SongPlan(
        seed=seed, key_pc=key_pc, minor=minor, beats_per_bar=bpb, tempo_bpm=round(tempo, 2),
        swing_ratio=round(swing, 3), drift_pct=round(float(rng.uniform(5, 8)), 2) if drifting else 0.0,
        drift_cycles=round(float(rng.uniform(0.5, 1.5)), 3), drift_phase=round(float(rng.uniform(0, 2 * np.pi)), 3),
        jitter_ms=round(float(rng.uniform(4, 10)), 2) if drifting else 0.0, arrangement=arrangement,
        pickup_beats=pickup, intro_bars=intro, n_bars=n_bars, chord_rhythm=chord_rhythm,
        seventh_rate=float(_choose(rng, [0.1, 0.3, 0.7])), lead_in_s=round(float(rng.uniform(0.2, 1.0)), 3),
        soundfont=SOUNDFONTS[(seed + seed // 4) % 2], lead_program=int(lead_program), lead_centre=int(lead_centre),
        comp_program=int(comp_program), bass_program=int(bass_program), comp_style=comp_style,
        bass_style=bass_style, drum_style=drum_style if arrangement == "band" else "none")


# -- harmony ---------------------------------------------------------------------------------------
def _bar_changes(rng, p: SongPlan) -> list[int]:
    """Beat offsets within a bar where the chord changes."""
    bpb = p.beats_per_bar
    if p.chord_rhythm == "bar":
        return [0, 2] if bpb == 4 and rng.random() < 0.1 else [0]
    if p.chord_rhythm == "half":
        return [0] if rng.random() < 0.25 else [0, 2]
    options = [[0, 1, 2, 3], [0, 2, 3], [0, 1, 2], [0, 2]] if bpb == 4 else [[0, 1, 2], [0, 2], [0]]
    return _choose(rng, options)


def _progression(rng, p: SongPlan, n_slots: int) -> list[int]:
    degrees = _MINOR_DEGREES if p.minor else _MAJOR_DEGREES
    loops, moves = (_MINOR_LOOPS, _MINOR_MOVES) if p.minor else (_MAJOR_LOOPS, _MAJOR_MOVES)
    if rng.random() < 0.5:
        loop = loops[int(rng.integers(len(loops)))]
        seq = [loop[i % 4] for i in range(n_slots)]
        for i in range(1, n_slots):
            if rng.random() < 0.15:
                seq[i] = _choose(rng, moves[seq[i - 1]])
    else:
        seq = [0]
        while len(seq) < n_slots:
            options = moves[seq[-1]]
            seq.append(_choose(rng, options, [1.0 / (k + 1) for k in range(len(options))]))
    if n_slots >= 2:  # cadence: dominant, then tonic
        seq[-2] = 4
    seq[-1] = 0
    assert all(0 <= d < len(degrees) for d in seq)
    return seq


def _chord_of(rng, p: SongPlan, degree: int) -> tuple[int, str]:
    semis, triad, seventh = (_MINOR_DEGREES if p.minor else _MAJOR_DEGREES)[degree]
    quality = seventh if rng.random() < p.seventh_rate else triad
    return (p.key_pc + semis) % 12, quality


def _harmony(rng, p: SongPlan) -> list[tuple[int, int, int, str]]:
    """(first beat, n beats, root pc, quality) per chord from the first downbeat, beats counted from
    the first downbeat; the last bar holds the tonic."""
    bpb = p.beats_per_bar
    slots: list[tuple[int, int]] = []  # (start beat, length)
    for bar in range(p.n_bars - 1):
        changes = _bar_changes(rng, p) + [bpb]
        slots += [(bar * bpb + a, b - a) for a, b in zip(changes[:-1], changes[1:])]
    degrees = _progression(rng, p, len(slots) + 1)
    chords = []
    for (start, length), degree in zip(slots, degrees[:-1]):
        root, quality = _chord_of(rng, p, degree)
        if quality in ("maj", "7") and length >= 2 and rng.random() < 0.1:  # sus4 resolving
            half = length // 2
            chords += [(start, half, root, "sus4"), (start + half, length - half, root, quality)]
            continue
        if quality == "maj" and rng.random() < 0.04:
            quality = "sus4"
        chords.append((start, length, root, quality))
    tonic_quality = "min" if p.minor else "maj"
    chords.append(((p.n_bars - 1) * bpb, bpb + 1, p.key_pc, tonic_quality))  # +1: the final hit
    return chords


# -- parts -----------------------------------------------------------------------------------------
def _voicing(pcs: tuple[int, ...], prev: list[int] | None, low: int = 53, high: int = 74) -> list[int]:
    """A close-position voicing of the pitch classes in [low, high], nearest to the previous one."""
    candidates = []
    for inversion in range(len(pcs)):
        order = pcs[inversion:] + pcs[:inversion]
        for base in range(low, high):
            if base % 12 != order[0]:
                continue
            voice = [base]
            for pc in order[1:]:
                nxt = voice[-1] + 1
                while nxt % 12 != pc:
                    nxt += 1
                voice.append(nxt)
            if voice[-1] <= high:
                candidates.append(voice)
    target = np.mean(prev) if prev else (low + high) / 2
    return min(candidates, key=lambda v: abs(np.mean(v) - target))


def _comp(rng, p: SongPlan, chords, offset: int) -> list[Event]:
    events, prev = [], None
    bpb = p.beats_per_bar
    for start, length, root, quality in chords:
        pcs = tuple((root + i) % 12 for i in QUALITIES[quality])
        voice = _voicing(pcs, prev)
        prev = voice
        final = start + length > (p.n_bars - 1) * bpb + bpb
        hits: list[tuple[float, float]] = []  # (beat offset in the chord, length)
        style = "block" if final else p.comp_style
        for k in range(length):
            pos = (start + k) % bpb
            if style == "block":
                if k == 0 or pos == 0:
                    run = min(length - k, bpb - pos)
                    hits.append((k, run * 0.97))
            elif style == "pulse":
                hits.append((k, 0.85))
            elif style == "offbeat":
                hits.append((k + 0.5, 0.4))
                if k == 0:
                    hits.append((k, 0.4))
            elif style == "syncopated":
                if pos == 0 or k == 0:
                    hits.append((k, 1.4))
                elif pos == 1:
                    hits.append((k + 0.5, 0.9))
                elif pos == 3 and rng.random() < 0.5:
                    hits.append((k + 0.5, 0.45))
            elif style == "strum":
                hits.append((k, 0.45))
                if rng.random() < 0.7:
                    hits.append((k + 0.5, 0.4))
            elif style == "waltz":
                if pos == 0 and k == 0:
                    hits.append((k, 0.9))
                elif pos != 0:
                    hits.append((k, 0.8))
            elif style == "arpeggio":
                for half in (0, 0.5):
                    idx = int((2 * k + 2 * half)) % len(voice)
                    events.append(Event("comp", offset + start + k + half, 0.9, voice[idx],
                                        int(rng.integers(55, 75))))
        for at, dur in hits:
            vel = int(rng.integers(50, 72))
            spread = 0.02 if style in ("strum",) else 0.0
            for j, pitch in enumerate(voice):
                events.append(Event("comp", offset + start + at + j * spread, dur, pitch, vel))
    return events


def _bass(rng, p: SongPlan, chords, offset: int) -> list[Event]:
    events = []
    bpb = p.beats_per_bar
    scale = _MINOR_SCALE if p.minor else _MAJOR_SCALE
    for n, (start, length, root, quality) in enumerate(chords):
        low = 31 + (root - 31) % 12  # root in [31, 42]
        fifth = low + 7 if 7 in QUALITIES[quality] else low + QUALITIES[quality][2]
        nxt_root = chords[n + 1][2] if n + 1 < len(chords) else root
        final = n == len(chords) - 1
        style = "root" if final else p.bass_style
        for k in range(length):
            pos = (start + k) % bpb
            vel = int(rng.integers(75, 100))
            if style == "root":
                if k == 0 or pos == 0:
                    events.append(Event("bass", offset + start + k, min(length - k, bpb - pos) * 0.95, low, vel))
            elif style == "root_fifth":
                if k == 0 or pos == 0:
                    events.append(Event("bass", offset + start + k, 0.95, low, vel))
                elif pos == 2:
                    events.append(Event("bass", offset + start + k, 0.95, fifth if rng.random() < 0.8 else low + 12,
                                        vel - 10))
            elif style == "eighths":
                for half in (0, 0.5):
                    events.append(Event("bass", offset + start + k + half, 0.45, low, vel - int(20 * half)))
            elif style == "walking":
                if k == 0:
                    pitch = low
                elif k == length - 1:  # chromatic or scale approach to the next root
                    target = 31 + (nxt_root - 31) % 12
                    pitch = target + int(_choose(rng, [-1, 1, -2, 2]))
                else:
                    tones = [low + i for i in QUALITIES[quality][1:]] + \
                            [31 + (p.key_pc + s - 31) % 12 + 12 * o for s in scale for o in (0, 1)]
                    pitch = _choose(rng, tones)
                events.append(Event("bass", offset + start + k, 0.9, int(np.clip(pitch, 28, 55)), vel))
    return events


def _drums(rng, p: SongPlan, offset: int, n_body_beats: int) -> list[Event]:
    bpb = p.beats_per_bar
    patterns = {  # (instrument, beat offset in the bar, velocity)
        "rock": [(_KICK, 0, 100), (_KICK, 2, 95), (_SNARE, 1, 95), (_SNARE, 3, 95)]
        + [(_HAT, h / 2, 70 if h % 2 else 80) for h in range(8)],
        "pop": [(_KICK, 0, 100), (_KICK, 1.5, 80), (_KICK, 2, 95), (_SNARE, 1, 95), (_SNARE, 3, 95)]
        + [(_HAT, h / 2, 65 if h % 2 else 80) for h in range(8)],
        "ballad": [(_KICK, 0, 90), (_KICK, 2.5, 70), (_STICK, 1, 80), (_STICK, 3, 80)]
        + [(_HAT, h, 70) for h in range(4)],
        "disco": [(_KICK, h, 100) for h in range(4)] + [(_SNARE, 1, 90), (_SNARE, 3, 90)]
        + [(_OPEN, h + 0.5, 70) for h in range(4)],
        "jazz": [(_RIDE, 0, 85), (_RIDE, 1, 80), (_RIDE, 1.5, 65), (_RIDE, 2, 85), (_RIDE, 3, 80),
                 (_RIDE, 3.5, 65), (_PEDAL, 1, 70), (_PEDAL, 3, 70), (_KICK, 0, 60)],
        "shuffle": [(_KICK, 0, 100), (_KICK, 2, 90), (_SNARE, 1, 95), (_SNARE, 3, 95)]
        + [(_HAT, h / 2, 65 if h % 2 else 80) for h in range(8)],
        "waltz": [(_KICK, 0, 100), (_HAT, 1, 70), (_HAT, 2, 70), (_STICK, 1, 60), (_STICK, 2, 60)],
        "waltz_rock": [(_KICK, 0, 100), (_SNARE, 1, 80), (_SNARE, 2, 80)] + [(_HAT, h / 2, 70) for h in range(6)],
        "jazz_waltz": [(_RIDE, 0, 85), (_RIDE, 1, 75), (_RIDE, 1.5, 60), (_RIDE, 2, 80), (_PEDAL, 1, 65),
                       (_KICK, 0, 60)],
    }[p.drum_style]
    events = []
    n_bars = n_body_beats // bpb
    for bar in range(n_bars):
        base = offset + bar * bpb
        if bar in (0, n_bars - 1) or (bar % 8 == 0 and rng.random() < 0.6):
            events.append(Event("drums", base, 1.0, _CRASH, 95))
        fill = bar % 4 == 3 and rng.random() < 0.35 and bar < n_bars - 1
        for inst, at, vel in patterns:
            if fill and at >= bpb - 1 and inst != _KICK:
                continue
            events.append(Event("drums", base + at, 0.25, inst, int(np.clip(vel + rng.integers(-8, 8), 30, 127))))
        if fill:
            for s in range(4):
                events.append(Event("drums", base + bpb - 1 + s / 4, 0.2, _SNARE, 70 + 8 * s))
    events.append(Event("drums", offset + n_bars * bpb, 1.0, _CRASH, 100))  # the final hit
    events.append(Event("drums", offset + n_bars * bpb, 1.0, _KICK, 100))
    return events


def _melody(rng, p: SongPlan, chords, offset: int) -> list[Event]:
    """A lead line: chord tones on the beats, passing and neighbour tones between, two-bar phrases."""
    bpb = p.beats_per_bar
    scale = _MINOR_SCALE if p.minor else _MAJOR_SCALE
    lo, hi = p.lead_centre - 8, p.lead_centre + 9
    scale_pitches = [n for n in range(lo - 2, hi + 3) if (n - p.key_pc) % 12 in scale]
    chord_at = {}
    for start, length, root, quality in chords:
        for k in range(length):
            chord_at[start + k] = tuple((root + i) % 12 for i in QUALITIES[quality])
    fast = p.tempo_bpm > 140
    events: list[Event] = []
    prev = p.lead_centre

    def chord_tone(beat: int) -> int:
        pcs = chord_at.get(beat, chord_at[max(chord_at)])
        pool = [n for n in range(lo, hi + 1) if n % 12 in pcs]
        return min(pool, key=lambda n: abs(n - prev) + rng.random() * 5 + (3 if n == prev else 0))

    def passing(a: int, b: int) -> int:
        between = [n for n in scale_pitches if min(a, b) < n < max(a, b)]
        if between:
            return _choose(rng, between)
        return _choose(rng, [n for n in scale_pitches if 0 < abs(n - a) <= 2] or [a])

    melody_start = p.intro_bars * bpb
    last_bar = p.n_bars - 1
    # pickup: eighths or quarters rising to the first downbeat's chord tone
    if p.pickup_beats:
        first = chord_tone(melody_start) if melody_start == 0 else p.lead_centre
        for i in range(p.pickup_beats):
            beat = offset - p.pickup_beats + i
            pitch = first - 2 * (p.pickup_beats - i) + (1 if rng.random() < 0.3 else 0)
            pitch = min(scale_pitches, key=lambda n: abs(n - pitch))
            events.append(Event("lead", beat, 0.9, pitch, int(rng.integers(80, 100))))
            prev = pitch
    for bar in range(p.intro_bars, last_bar):
        phrase_end = (bar - p.intro_bars) % 2 == 1
        b = 0
        while b < bpb:
            beat = bar * bpb + b
            if phrase_end and b >= bpb - 1 and rng.random() < 0.7:  # breathe at the end of a phrase
                break
            r = rng.random()
            vel = int(rng.integers(80, 112) - (8 if b % 2 else 0))
            if phrase_end and b == 0 and rng.random() < 0.6:  # a long note closes the phrase
                pitch = chord_tone(beat)
                length = bpb - 1 if bpb > 2 else 1
                events.append(Event("lead", offset + beat, length * 0.95, pitch, vel))
                prev, b = pitch, b + length
                continue
            if r < (0.35 if fast else 0.45) and b + 1 <= bpb:  # two eighths: chord tone + passing tone
                pitch = chord_tone(beat)
                nxt = chord_tone(beat + 1) if beat + 1 in chord_at else pitch
                events.append(Event("lead", offset + beat, 0.45, pitch, vel))
                pas = passing(pitch, nxt)
                events.append(Event("lead", offset + beat + 0.5, 0.45, pas, vel - 12))
                prev, b = pas, b + 1
            elif r < 0.8 or b + 2 > bpb:  # a quarter
                pitch = chord_tone(beat)
                events.append(Event("lead", offset + beat, 0.9, pitch, vel))
                prev, b = pitch, b + 1
            elif r < 0.9:  # a half note
                pitch = chord_tone(beat)
                events.append(Event("lead", offset + beat, 1.9, pitch, vel))
                prev, b = pitch, b + 2
            else:  # a rest, or a syncopated eighth
                if rng.random() < 0.5:
                    pitch = chord_tone(beat + 1) if beat + 1 in chord_at else prev
                    events.append(Event("lead", offset + beat + 0.5, 0.45, pitch, vel - 5))
                    prev = pitch
                b += 1
    tonic = min((n for n in range(lo, hi + 1) if n % 12 == p.key_pc), key=lambda n: abs(n - prev))
    events.append(Event("lead", offset + last_bar * bpb, bpb + 0.9, tonic, 95))
    return events


def score(p: SongPlan) -> Score:
    """The song in beats: events of every part, a chord per beat, the downbeats."""
    rng = np.random.default_rng([p.seed, GENERATOR_VERSION, 1])
    chords = _harmony(rng, p)
    offset = p.pickup_beats
    events = _melody(rng, p, chords, offset)
    events += _comp(rng, p, chords, offset)
    events += _bass(rng, p, chords, offset)
    if p.arrangement == "band":
        events += _drums(rng, p, offset, (p.n_bars) * p.beats_per_bar)
    n_beats = offset + p.n_bars * p.beats_per_bar + 1  # + the final hit's downbeat
    labels = ["N"] * n_beats
    for start, length, root, quality in chords:
        for k in range(length):
            if offset + start + k < n_beats:
                labels[offset + start + k] = chord_label(root, quality)
    downbeats = tuple(range(offset, n_beats, p.beats_per_bar))
    return Score(p, tuple(sorted(events, key=lambda e: (e.beat, e.part, e.pitch))), tuple(labels), downbeats)


# -- time ------------------------------------------------------------------------------------------
def beat_grid(p: SongPlan, n_beats: int) -> np.ndarray:
    """Seconds of beats 0..n_beats-1: the tempo curve (drift) integrated, plus jitter."""
    rng = np.random.default_rng([p.seed, GENERATOR_VERSION, 2])
    i = np.arange(n_beats, dtype=float)
    curve = 1.0 + (p.drift_pct / 100) * np.sin(2 * np.pi * p.drift_cycles * i / max(n_beats, 1) + p.drift_phase)
    periods = 60.0 / (p.tempo_bpm * curve)
    times = p.lead_in_s + np.concatenate([[0.0], np.cumsum(periods[:-1])])
    if p.jitter_ms > 0:
        times = times + np.clip(rng.normal(0, p.jitter_ms / 1000, n_beats), -0.025, 0.025)
        times[0] = max(times[0], 0.05)
    assert np.all(np.diff(times) > 0.2)
    return times


def _swing(beat: np.ndarray | float, ratio: float) -> np.ndarray:
    """Move off-beat eighths to ratio/(1+ratio) of the beat, piecewise linearly (quarters stay)."""
    b = np.asarray(beat, dtype=float)
    if ratio == 1.0:
        return b
    whole = np.floor(b + 1e-9)
    frac = b - whole
    s = ratio / (1 + ratio)
    warped = np.where(frac <= 0.5, frac * 2 * s, s + (frac - 0.5) * 2 * (1 - s))
    return whole + warped


def _seconds(beats, p: SongPlan, grid_s: np.ndarray) -> np.ndarray:
    return beat_to_seconds(_swing(beats, p.swing_ratio), grid_s)


def to_midi(sc: Score, grid_s: np.ndarray, parts: tuple[str, ...]) -> pretty_midi.PrettyMIDI:
    """The score's `parts` as MIDI in seconds on the grid (swing applied)."""
    p = sc.plan
    midi = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=120.0)
    programs = {"lead": p.lead_program, "comp": p.comp_program, "bass": p.bass_program, "drums": 0}
    pans = {"lead": 64, "comp": 40, "bass": 64, "drums": 70}
    volumes = {"lead": 110, "comp": 80, "bass": 95, "drums": 85}
    for part in parts:
        notes = [e for e in sc.events if e.part == part]
        if not notes:
            continue
        inst = pretty_midi.Instrument(program=programs[part], is_drum=part == "drums", name=part)
        inst.control_changes += [pretty_midi.ControlChange(7, volumes[part], 0.0),
                                 pretty_midi.ControlChange(10, pans[part], 0.0)]
        starts = _seconds(np.array([e.beat for e in notes]), p, grid_s)
        ends = _seconds(np.array([e.beat + e.length_beats for e in notes]), p, grid_s)
        for e, a, b in zip(notes, starts, ends):
            inst.notes.append(pretty_midi.Note(int(e.velocity), int(e.pitch), float(a), float(max(b, a + 0.05))))
        midi.instruments.append(inst)
    return midi


def _leadsheet(sc: Score, grid_s: np.ndarray, duration_s: float) -> LeadSheet:
    p = sc.plan
    lead = [e for e in sc.events if e.part == "lead"]
    starts = _seconds(np.array([e.beat for e in lead]), p, grid_s)
    ends = _seconds(np.array([e.beat + e.length_beats for e in lead]), p, grid_s)
    melody = [Note(round(float(a), 5), round(float(b - a), 5), int(e.pitch), int(e.velocity))
              for e, a, b in zip(lead, starts, ends)]
    source = {"generator": "covergen.training.leadsheet_songs", "version": GENERATOR_VERSION, "seed": p.seed,
              "split": "dev" if p.seed in DEV_SEEDS else "held-out" if p.seed in HELD_OUT_SEEDS else "other",
              "categories": list(p.categories), "plan": asdict(p)}
    return LeadSheet(beats_s=[round(float(t), 5) for t in grid_s[:sc.n_beats]], downbeats=list(sc.downbeats),
                     beats_per_bar=p.beats_per_bar, chords=list(sc.chords), key=p.key, melody=melody,
                     swing_ratio=p.swing_ratio, duration_s=round(duration_s, 5), source=source)


def render(seed: int, *, duration_s: float | None = None) -> RenderedSong:
    """Render the song of `seed` (no cache). The mixture is lead + backing."""
    p = plan(seed, duration_s=duration_s)
    sc = score(p)
    n_grid = sc.n_beats + 2 * p.beats_per_bar  # room for note ends past the last beat
    grid_s = beat_grid(p, n_grid)
    soundfont = Path(p.soundfont)
    if not soundfont.is_file():
        soundfont = Path(SOUNDFONTS[0])
    lead = render_midi(to_midi(sc, grid_s, ("lead",)), sample_rate=SAMPLE_RATE, soundfont=soundfont)
    backing = render_midi(to_midi(sc, grid_s, ("comp", "bass", "drums")), sample_rate=SAMPLE_RATE,
                          soundfont=soundfont)
    n = max(lead.shape[1], backing.shape[1])
    lead, backing = (np.pad(x, ((0, 0), (0, n - x.shape[1]))) for x in (lead, backing))
    peak = float(np.max(np.abs(lead + backing))) or 1.0
    gain = 0.89 / peak  # about -1 dBFS
    lead, backing = (lead * gain).astype(np.float32), (backing * gain).astype(np.float32)
    sheet = _leadsheet(sc, grid_s, n / SAMPLE_RATE)
    return RenderedSong(audio=lead + backing, lead=lead, leadsheet=sheet, plan=p)


def cache_dir() -> Path:
    """$COVERGEN_CACHE/leadsheet_songs or the user cache folder's (covergen.folders)."""
    return folders.cache_dir("leadsheet_songs")


def _read_cached(stem: Path, seed: int) -> RenderedSong | None:
    paths = [stem.with_name(stem.name + s) for s in (".lead.flac", ".backing.flac", ".leadsheet.json")]
    if not all(x.is_file() for x in paths):
        return None
    lead, sr = sf.read(paths[0], dtype="float32", always_2d=True)
    backing, _ = sf.read(paths[1], dtype="float32", always_2d=True)
    sheet = LeadSheet.from_json(paths[2].read_text())
    p = SongPlan(**sheet.source["plan"])
    lead, backing = np.ascontiguousarray(lead.T), np.ascontiguousarray(backing.T)
    return RenderedSong(audio=lead + backing, lead=lead, leadsheet=sheet, plan=p, sample_rate=sr)


def song(seed: int, *, duration_s: float | None = None, cache: bool = True,
         with_lead: bool = False) -> tuple[np.ndarray, LeadSheet] | RenderedSong:
    """(audio float32 (2, samples) at SAMPLE_RATE, ground-truth LeadSheet) of `seed`, rendered once and
    cached. with_lead=True returns the RenderedSong (mixture, lead stem, lead sheet, plan)."""
    stem = cache_dir() / f"v{GENERATOR_VERSION}-seed{seed}" if duration_s is None else \
        cache_dir() / f"v{GENERATOR_VERSION}-seed{seed}-{duration_s:g}s"
    rendered = _read_cached(stem, seed) if cache else None
    if rendered is None:
        rendered = render(seed, duration_s=duration_s)
        if cache:
            stem.parent.mkdir(parents=True, exist_ok=True)
            for suffix, x in ((".lead.flac", rendered.lead), (".backing.flac", rendered.audio - rendered.lead)):
                with atomic_path(stem.with_name(stem.name + suffix)) as tmp:  # unique temp: concurrent renders don't collide
                    sf.write(tmp, x.T, SAMPLE_RATE, subtype="PCM_24", format="FLAC")
            with atomic_path(stem.with_name(stem.name + ".leadsheet.json")) as tmp:
                tmp.write_text(rendered.leadsheet.to_json())
            rendered = _read_cached(stem, seed)  # what a later call gets: the 24-bit files
    return rendered if with_lead else (rendered.audio, rendered.leadsheet)


def parse_seeds(text: str) -> list[int]:
    """`0-9,1000,1003-1005` -> the seeds."""
    seeds: list[int] = []
    for part in text.split(","):
        a, _, b = part.strip().partition("-")
        seeds += list(range(int(a), int(b) + 1)) if b else [int(a)]
    return seeds


def write(out_dir: Path, seeds: list[int], *, duration_s: float | None = None) -> list[Path]:
    """NAME.flac + NAME.leadsheet.json + NAME.lab per seed into out_dir. Returns the .flac paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for seed in seeds:
        audio, sheet = song(seed, duration_s=duration_s)
        name = f"leadsheet-song-{seed:04d}-" + "-".join(c.replace("/", "") for c in sheet.source["categories"][:4])
        sf.write(out_dir / f"{name}.flac", audio.T, SAMPLE_RATE, subtype="PCM_24")
        (out_dir / f"{name}.leadsheet.json").write_text(sheet.to_json())
        (out_dir / f"{name}.lab").write_text(sheet.lab_text())
        written.append(out_dir / f"{name}.flac")
        log.info("%s: %s, %.0f BPM, %s", name, sheet.key, sheet.tempo_bpm, sheet.chart().splitlines()[0])
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m covergen.training.leadsheet_songs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", type=Path, required=True, metavar="DIR", help="folder for the songs")
    parser.add_argument("--seeds", default="0-9", help="e.g. 0-9 or 1000-1015 (dev: 0-99, held-out: 1000-1999)")
    parser.add_argument("--duration-s", type=float, default=None, help="target length (default 20-28 s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for path in write(args.write, parse_seeds(args.seeds), duration_s=args.duration_s):
        sheet = LeadSheet.from_json(path.with_name(path.name[:-5] + ".leadsheet.json").read_text())
        print(f"{path}  {sheet.key}, {sheet.beats_per_bar}/4, {sheet.tempo_bpm:.0f} BPM, "
              f"swing {sheet.swing_ratio:.2f}\n{sheet.chart()}\n")


if __name__ == "__main__":
    main()
