"""The lead sheet: what a cover keeps of a song (its grid, key, chords and melody), as plain data.

Everything the analysis finds and the arranger needs, and nothing else. Times are seconds
in the original recording; the grid is the list of beat times, and chords are given per
beat (Harte syntax, as mir_eval and Sonic Visualiser read them: `C:maj`, `A:min7`, `N`).
The arranger works in beats and maps back to seconds with `beat_to_seconds` on the song's
own (possibly stretched) grid, so swing, tempo drift and rubato cost nothing extra.

File formats a musician opens elsewhere:
- JSON (`to_json` / `from_json`): the whole lead sheet, lossless.
- .lab (`write_lab`): `start end label` per chord change, for mir_eval and Sonic Visualiser.
- MIDI (`to_midi`): melody on track 1, block chords on track 2, tempo map from the beats.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Note", "LeadSheet", "parse_chord", "chord_pitch_classes", "chord_label", "QUALITIES",
           "PITCH_NAMES", "NO_CHORD", "FORMAT", "beat_to_seconds", "read_lab", "midi_on_grid"]

FORMAT = "covergen-leadsheet-1"
NO_CHORD = "N"
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_NOTE_VALUES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
# Harte shorthand -> intervals in semitones above the root. The analysis emits these; the arranger
# voices them. `7` is the dominant seventh, `hdim7` the half-diminished (m7b5).
QUALITIES: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "7": (0, 4, 7, 10), "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10), "dim": (0, 3, 6), "dim7": (0, 3, 6, 9), "hdim7": (0, 3, 6, 10),
    "aug": (0, 4, 8), "sus4": (0, 5, 7), "sus2": (0, 2, 7), "maj6": (0, 4, 7, 9), "min6": (0, 3, 7, 9),
    "9": (0, 4, 7, 10, 14), "maj9": (0, 4, 7, 11, 14), "min9": (0, 3, 7, 10, 14), "minmaj7": (0, 3, 7, 11),
}
_CHART_NAMES = {"maj": "", "min": "m", "7": "7", "maj7": "maj7", "min7": "m7", "dim": "dim", "dim7": "dim7",
                "hdim7": "m7b5", "aug": "+", "sus4": "sus4", "sus2": "sus2", "maj6": "6", "min6": "m6",
                "9": "9", "maj9": "maj9", "min9": "m9", "minmaj7": "m(maj7)"}


def _pitch_class(name: str) -> int:
    if not name or name[0].upper() not in _NOTE_VALUES:
        raise ValueError(f"not a note name: {name!r}")
    pc = _NOTE_VALUES[name[0].upper()]
    for accidental in name[1:]:
        if accidental == "#":
            pc += 1
        elif accidental == "b":
            pc -= 1
        else:
            raise ValueError(f"not a note name: {name!r}")
    return pc % 12


def parse_chord(label: str) -> tuple[int, str, int] | None:
    """Harte label -> (root pitch class 0-11, quality shorthand, bass interval in semitones), None for `N`/`X`.

    `C` alone is `C:maj`; `F:maj/3` has its third in the bass (bass interval 4). Unknown
    shorthands raise ValueError naming the label.
    """
    if label in (NO_CHORD, "X", ""):
        return None
    body, _, bass = label.partition("/")
    root_name, _, quality = body.partition(":")
    quality = quality or "maj"
    if quality not in QUALITIES:
        raise ValueError(f"chord {label!r}: unknown quality {quality!r} (known: {', '.join(QUALITIES)})")
    root = _pitch_class(root_name)
    bass_interval = 0
    if bass:
        degrees = {"1": 0, "b3": 3, "3": 4, "4": 5, "b5": 6, "5": 7, "6": 9, "b7": 10, "7": 11, "9": 2}
        if bass not in degrees:
            raise ValueError(f"chord {label!r}: unknown bass degree {bass!r}")
        bass_interval = degrees[bass]
    return root, quality, bass_interval


def chord_label(root: int, quality: str) -> str:
    """(root pitch class, quality) -> Harte label, e.g. (9, 'min7') -> 'A:min7'."""
    if quality not in QUALITIES:
        raise ValueError(f"unknown chord quality {quality!r}")
    return f"{PITCH_NAMES[root % 12]}:{quality}"


def chord_pitch_classes(label: str) -> tuple[int, ...]:
    """The chord's pitch classes, root first (`A:min7` -> (9, 0, 4, 7)); () for no chord."""
    parsed = parse_chord(label)
    if parsed is None:
        return ()
    root, quality, _ = parsed
    return tuple((root + i) % 12 for i in QUALITIES[quality])


def _chart_name(label: str) -> str:
    parsed = parse_chord(label)
    if parsed is None:
        return "N.C."
    root, quality, bass = parsed
    root_name = label.partition(":")[0].partition("/")[0]  # the label's own spelling (Db stays Db)
    name = root_name[0].upper() + root_name[1:] + _CHART_NAMES[quality]
    if not bass:
        return name
    # spell the bass by its degree above the root: E:maj/3 -> E/G# (not E/Ab)
    letters = "CDEFGAB"
    degree = label.partition("/")[2]
    letter = letters[(letters.index(root_name[0].upper()) + int(degree.lstrip("b#")) - 1) % 7]
    offset = ((root + bass) - _NOTE_VALUES[letter] + 6) % 12 - 6
    return f"{name}/{letter}{'#' * offset if offset > 0 else 'b' * -offset}"


@dataclass(frozen=True)
class Note:
    """One melody note. onset_s and duration_s in seconds of the original recording; pitch a MIDI
    number (60 = middle C); velocity 1-127 from the note's loudness."""
    onset_s: float
    duration_s: float
    pitch: int
    velocity: int = 80

    @property
    def end_s(self) -> float:
        return self.onset_s + self.duration_s


def beat_to_seconds(beat: np.ndarray | float, beat_times_s: np.ndarray) -> np.ndarray:
    """Fractional beat index -> seconds on a grid of beat times, linear between beats and
    extrapolated at the ends with the first/last beat period. beat 0 is beat_times_s[0]."""
    grid = np.asarray(beat_times_s, dtype=float)
    if grid.size < 2:
        raise ValueError("a beat grid needs at least two beats")
    b = np.asarray(beat, dtype=float)
    idx = np.arange(grid.size, dtype=float)
    inside = np.interp(b, idx, grid)
    before = grid[0] + b * (grid[1] - grid[0])
    after = grid[-1] + (b - idx[-1]) * (grid[-1] - grid[-2])
    return np.where(b < 0, before, np.where(b > idx[-1], after, inside))


@dataclass
class LeadSheet:
    """A song's structure, as the analysis heard it.

    beats_s: time of every beat, seconds, increasing.
    downbeats: indices into beats_s where a bar starts (the first may be > 0: a pickup).
    beats_per_bar: the meter's numerator (3 for a waltz, 4 for most pop); the beat is a quarter note.
    chords: one Harte label per beat (len == len(beats_s)); `N` where nothing harmonic sounds.
    key: e.g. `A minor` / `Eb major` (mir_eval.key format).
    melody: the lead line's notes, seconds.
    swing_ratio: long/short ratio of off-beat eighths measured on the song (1.0 straight, ~2 triplet swing).
    duration_s: length of the recording.
    """
    beats_s: list[float]
    downbeats: list[int]
    beats_per_bar: int
    chords: list[str]
    key: str
    melody: list[Note] = field(default_factory=list)
    swing_ratio: float = 1.0
    duration_s: float = 0.0
    source: dict = field(default_factory=dict)  # what made it: models, versions, content hash

    def __post_init__(self):
        if len(self.chords) != len(self.beats_s):
            raise ValueError(f"{len(self.chords)} chords for {len(self.beats_s)} beats; need one per beat")
        if self.beats_per_bar < 1:
            raise ValueError(f"beats_per_bar={self.beats_per_bar} must be >= 1")
        if any(np.diff(self.beats_s) <= 0):
            raise ValueError("beats_s must increase")
        for label in set(self.chords):
            parse_chord(label)

    # -- derived facts -------------------------------------------------------------------------
    @property
    def tempo_curve_bpm(self) -> np.ndarray:
        """Local tempo at each beat interval (len(beats_s) - 1 values), BPM."""
        return 60.0 / np.diff(np.asarray(self.beats_s))

    @property
    def tempo_bpm(self) -> float:
        """The song's tempo: the median of the tempo curve."""
        curve = self.tempo_curve_bpm
        return float(np.median(curve)) if curve.size else 0.0

    def bars(self) -> list[list[int]]:
        """Beat indices of each complete or partial bar, from the first downbeat; a pickup before
        it is its own (short) bar."""
        starts = [d for d in self.downbeats if 0 <= d < len(self.beats_s)] or [0]
        bars = [list(range(0, starts[0]))] if starts[0] > 0 else []
        edges = list(starts) + [len(self.beats_s)]
        bars += [list(range(a, b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]
        return bars

    def chord_segments(self) -> list[tuple[float, float, str]]:
        """(start_s, end_s, label) per run of equal chords; the last runs to the end of the song."""
        beats = list(self.beats_s)
        end = max(self.duration_s, beats[-1] + (beats[-1] - beats[-2] if len(beats) > 1 else 0.5))
        segments: list[tuple[float, float, str]] = []
        if beats and beats[0] > 0:
            segments.append((0.0, beats[0], NO_CHORD))
        for i, label in enumerate(self.chords):
            stop = beats[i + 1] if i + 1 < len(beats) else end
            if segments and segments[-1][2] == label:
                segments[-1] = (segments[-1][0], stop, label)
            else:
                segments.append((beats[i], stop, label))
        return segments

    def chart(self, bars_per_line: int = 4) -> str:
        """A readable chord chart, one bar per cell: `| C | Am | F G |`. A chord repeated within a
        bar is written once; a bar of one chord shows it once."""
        lines, cells = [], []
        for bar in self.bars():
            names: list[str] = []
            for b in bar:
                name = _chart_name(self.chords[b])
                if not names or names[-1] != name:
                    names.append(name)
            cells.append(" ".join(names))
            if len(cells) == bars_per_line:
                lines.append("| " + " | ".join(cells) + " |")
                cells = []
        if cells:
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    # -- files ---------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        d["format"] = FORMAT
        d["tempo_bpm"] = round(self.tempo_bpm, 3)
        d["tempo_curve_bpm"] = [round(float(t), 3) for t in self.tempo_curve_bpm]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> LeadSheet:
        if d.get("format") != FORMAT:
            raise ValueError(f"not a covergen lead sheet (format {d.get('format')!r}, expected {FORMAT!r})")
        fields = {k: v for k, v in d.items() if k not in ("format", "tempo_bpm", "tempo_curve_bpm")}
        fields["melody"] = [Note(**n) for n in fields.get("melody", [])]
        return cls(**fields)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str) -> LeadSheet:
        return cls.from_dict(json.loads(text))

    def lab_text(self) -> str:
        """Chord segments as `start end label` lines (seconds, Harte labels)."""
        return "".join(f"{a:.3f}\t{b:.3f}\t{label}\n" for a, b, label in self.chord_segments())

    def to_midi(self):
        """A pretty_midi.PrettyMIDI: melody (track 'melody', program 0) and block chords (track
        'chords', program 0, one octave below middle C), with a tempo map that follows the beats so
        a DAW's bar lines sit on the song's bars."""
        import pretty_midi

        first_downbeat = self.downbeats[0] if self.downbeats else 0
        midi = midi_on_grid(self.beats_s, beats_per_bar=self.beats_per_bar, first_downbeat=first_downbeat)
        melody = pretty_midi.Instrument(program=0, name="melody")
        for n in self.melody:
            melody.notes.append(pretty_midi.Note(int(np.clip(n.velocity, 1, 127)), int(n.pitch), float(n.onset_s),
                                                 float(max(n.end_s, n.onset_s + 0.03))))
        chords = pretty_midi.Instrument(program=0, name="chords")
        for start, stop, label in self.chord_segments():
            pcs = chord_pitch_classes(label)
            pitch = 48 + pcs[0] if pcs else 0
            for pc in pcs[:4]:  # close position from the root up (C3 octave)
                while pitch % 12 != pc:
                    pitch += 1
                chords.notes.append(pretty_midi.Note(60, int(pitch), float(start), float(max(stop, start + 0.03))))
        midi.instruments = [melody, chords]
        return midi


def midi_on_grid(beats_s, *, beats_per_bar: int = 4, first_downbeat: int = 0):
    """An empty pretty_midi.PrettyMIDI whose tempo map puts one MIDI quarter note on each beat of
    `beats_s` (a tempo change per beat) and the first downbeat on a bar line, so a DAW shows the
    song's own bars. Notes are still added in seconds."""
    import pretty_midi

    beats = np.asarray(beats_s, dtype=float)
    midi = pretty_midi.PrettyMIDI(initial_tempo=float(60.0 / np.median(np.diff(beats))) if beats.size > 1 else 120.0)
    midi.time_signature_changes = [pretty_midi.TimeSignature(int(beats_per_bar), 4, 0.0)]
    if beats.size < 2:
        return midi
    res, bar_ticks = midi.resolution, midi.resolution * beats_per_bar
    periods = np.diff(beats)
    # the lead-in (silence before beat 0, plus a pickup) fills whole bars at about the song's tempo
    first_tick = ((-first_downbeat) % beats_per_bar) * res
    first_tick += bar_ticks * max(0, round((beats[0] / periods[0] * res - first_tick) / bar_ticks))
    if first_tick == 0 and beats[0] > 1e-3:
        first_tick = bar_ticks
    lead_in = (0, max(beats[0], 1e-3) / first_tick) if first_tick else (0, periods[0] / res)
    midi._tick_scales = [lead_in] + [(first_tick + i * res, p / res) for i, p in enumerate(periods)]
    midi._update_tick_to_time(first_tick + (beats.size + 100) * res)
    return midi


def read_lab(path: Path) -> list[tuple[float, float, str]]:
    """Read a `start end label` .lab file (whitespace-separated) back into segments."""
    rows = []
    for line in Path(path).read_text().splitlines():
        if line.strip():
            a, b, label = line.split(None, 2)
            rows.append((float(a), float(b), label.strip()))
    return rows
