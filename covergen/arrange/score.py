"""The score: a band's note events in beats, from a lead sheet and a style.

Everything here is in beats (fractional indices into the lead sheet's beat grid); seconds come
last, in `render.to_midi`. Each bar takes its part's pattern for the song's meter (a list of
alternatives, one picked per bar by the seeded generator), a fill in the last bar of every
phrase, extra hits on the first bar of every section, an ending in the last bar. Pitches follow
the chart: the bass plays chord degrees, walking picks and chromatic approaches; comping and
pads play voicings built only from the chord's pitch classes (after the style's extensions),
voice-led from one chord to the next. Swing moves off-beats, humanisation jitters timing and
velocity, both seeded.

The song's form frames this (`song_form`): phrases and sections count from the bar the melody comes
in on, so fills fall at the ends of the tune's 4/8-bar phrases and the crash where the tune starts.
Where a part's style gives `intro`/`outro` patterns it plays them there; otherwise, as a session band
would:
- intro: the drums keep time on the groove's hats, ride, cross-stick and hand percussion only (no kick,
  snare, toms or crash) and play their fill in the intro's last bar to bring the band in; bass,
  comping and pads play as usual.
- outro: the band plays on (grooves and phrase-end fills), with the section-start hits (a crash) on
  the outro's first bar, the bar after the tune ends, and the ending in the last bar.
A song without a tracked melody has no form, and its score is exactly what it was without one.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..leadsheet import NO_CHORD, QUALITIES, LeadSheet, chord_pitch_classes, parse_chord
from .styles import DRUMS, Part, Style

__all__ = ["Event", "Form", "score", "song_form", "swing_beat", "played_chord", "MAX_FORM_BARS"]

log = logging.getLogger(__name__)
_DRUM_LENGTH_BEATS = 0.25
MAX_FORM_BARS = 8   # a longer stretch without the tune is a solo or a lost melody, not an intro/outro
_RUN_NOTES = 3      # the tune has begun when this many notes follow each other (see song_form)
# what the drums keep of their groove in an intro without its own pattern: time, not backbeat
_INTRO_DRUMS = frozenset({"hihat_closed", "hihat_pedal", "hihat_open", "ride", "ride_bell", "cross_stick",
                          "side_stick", "tambourine", "shaker", "cabasa", "maracas", "claves", "cowbell",
                          "bongo_high", "bongo_low", "conga_high", "conga_low"})


@dataclass(frozen=True)
class Event:
    """One note: `beat` is a fractional index into the lead sheet's beats (0 = its first beat)."""
    part: str
    beat: float
    length_beats: float
    pitch: int
    velocity: int


@dataclass(frozen=True)
class Form:
    """The bars around the tune: `intro_bars` whole bars before the bar the melody comes in on (counted
    from the first downbeat; a pickup before them is played as intro too), `outro_bars` whole bars after
    the bar it ends in. Form() is a song without either."""
    intro_bars: int = 0
    outro_bars: int = 0

    def __post_init__(self):
        if self.intro_bars < 0 or self.outro_bars < 0:
            raise ValueError(f"{self}: bar counts must be >= 0")


def song_form(sheet: LeadSheet) -> Form:
    """The song's intro and outro, from where its melody comes in and where it ends.

    The tune comes in at the first note that starts a run of 3 notes, each beginning less than a bar
    after the previous one ends: a stray blip in the intro (a count-in, a tracker's false note) is not
    the tune. A first note in the last beat of a bar (bars of 3+ beats) is a pickup: the tune comes in
    on the next bar. The tune ends at the end of the last note of such a run; a note ringing less than a
    quarter beat past a barline ends in the bar before. Intro: the bars before the tune's first bar;
    outro: the whole bars after its last. More than MAX_FORM_BARS (8) is not an intro/outro but a stretch
    the band plays through (a solo, or a tune the tracker lost), so 0. No melody, or too few notes for a
    run (an instrumental, or a vocal the analysis did not track), gives Form(): without a tune there is
    nothing to frame, and guessing would thin out the drums of a song whose tune was merely missed.
    """
    notes = sorted(sheet.melody, key=lambda n: n.onset_s)
    bars = _bars_in_phrases(sheet)
    if len(notes) < _RUN_NOTES or len(sheet.beats_s) < 2 or not bars:
        return Form()
    index = np.arange(len(sheet.beats_s), dtype=float)
    on = np.interp([n.onset_s for n in notes], sheet.beats_s, index)
    off = np.interp([n.end_s for n in notes], sheet.beats_s, index)
    linked = on[1:] - off[:-1] < sheet.beats_per_bar  # note k + 1 follows note k within a bar
    runs = [k for k in range(len(notes) - _RUN_NOTES + 1) if linked[k:k + _RUN_NOTES - 1].all()]
    if not runs:
        return Form()

    def bar_of(beat: float) -> int:
        return next(i for i, (b, _) in enumerate(bars) if b[0] <= beat < b[-1] + 1 or i == len(bars) - 1)

    first = bar_of(int(on[runs[0]]))
    if len(bars[first][0]) >= 3 and int(on[runs[0]]) == bars[first][0][-1] and first + 1 < len(bars):
        first += 1  # a pickup into the next bar
    last = bar_of(int(max(off[runs[-1] + _RUN_NOTES - 1] - 0.25, on[runs[-1] + _RUN_NOTES - 1])))
    intro = max(0, bars[first][1])
    outro = sum(1 for b, n in bars[last + 1:] if len(b) == sheet.beats_per_bar and n >= 0)
    return Form(intro_bars=intro if intro <= MAX_FORM_BARS else 0,
                outro_bars=outro if outro <= MAX_FORM_BARS else 0)


def swing_beat(beat: float, ratio: float, subdivision_beats: float = 0.5) -> float:
    """Where a straight grid position lands with swing: within each pair of subdivisions the first
    is `ratio` times as long as the second (1 straight, 2 triplet swing). On-beats do not move."""
    period = 2 * subdivision_beats
    k, pos = divmod(beat, period)
    split = period * ratio / (1 + ratio)
    if pos <= subdivision_beats:
        return k * period + pos * split / subdivision_beats
    return k * period + split + (pos - subdivision_beats) * (period - split) / subdivision_beats


def _scale(key: str) -> set[int] | None:
    """Pitch classes of a `C major` / `A minor` key (natural minor plus the raised seventh)."""
    tonic, _, mode = key.strip().partition(" ")
    parsed = parse_chord(f"{tonic}:maj") if tonic else None
    if parsed is None or mode not in ("major", "minor"):
        return None
    steps = (0, 2, 4, 5, 7, 9, 11) if mode == "major" else (0, 2, 3, 5, 7, 8, 10, 11)
    return {(parsed[0] + s) % 12 for s in steps}


def played_chord(label: str, style: Style, key: str = "") -> str:
    """The chord the band plays for a chart chord: the first of the style's extensions of its quality
    (maj -> maj9, maj7...) whose added tones lie in the song's key; the chart chord when none does
    or the key is unknown."""
    parsed = parse_chord(label)
    if parsed is None or parsed[1] not in style.extensions:
        return label
    scale = _scale(key)
    if scale is None:
        return label
    root, quality, _ = parsed
    body, slash, bass = label.partition("/")
    for extended in style.extensions[quality]:
        added = {(root + i) % 12 for i in QUALITIES[extended]} - {(root + i) % 12 for i in QUALITIES[quality]}
        if added <= scale:
            return f"{body.partition(':')[0]}:{extended}{slash}{bass}"
    return label


def _place(pc: int, near: float, lo: int, hi: int) -> int:
    """The pitch of pitch class `pc` in [lo, hi] nearest to `near`."""
    candidates = [p for p in range(lo, hi + 1) if p % 12 == pc]
    return min(candidates, key=lambda p: (abs(p - near), p))


def _voicing_shapes(label: str, kind: str) -> list[list[int]]:
    """Pitch-class orders (bottom to top) a voicing may take; the first element of a fixed-bottom
    kind (shell, power, spread) is always the root."""
    pcs = list(chord_pitch_classes(label))
    root, third, fifth = pcs[0], pcs[1], pcs[2]
    seventh = pcs[3] if len(pcs) > 3 else None
    ninth = pcs[4] if len(pcs) > 4 else None
    if kind == "power":
        return [[root, fifth, root]]
    if kind == "shell":
        top = seventh if seventh is not None else fifth
        return [[root, third, top], [root, top, third]]
    if kind == "close":
        tones = pcs[:4]
    elif kind == "rootless" or kind == "spread":
        tones = [t for t in (third, fifth, seventh, ninth) if t is not None]
        if len(tones) < 3:
            tones = [third, fifth, root]
        tones = tones[:4]
    else:  # upper: three voices above a bass that has the root
        tones = [root, third, fifth] if seventh is None else [third, fifth, seventh] if ninth is None \
            else [third, seventh, ninth]
    rotations = [tones[i:] + tones[:i] for i in range(len(tones))]
    if kind == "spread":
        return [[root] + r for r in rotations]
    return rotations


def _stack(shape: list[int], bottom: int, spread: bool) -> list[int]:
    pitches = [bottom]
    for i, pc in enumerate(shape[1:]):
        floor = pitches[-1] + (7 if spread and i == 0 else 1)
        p = floor + (pc - floor) % 12
        pitches.append(p)
    return pitches


def _voice(label: str, kind: str, rng_lo: int, rng_hi: int, previous: list[int] | None) -> list[int]:
    """A voicing of `label` inside [rng_lo, rng_hi], as close as possible to `previous` (voice leading)."""
    best, best_cost = None, None
    centre = (rng_lo + rng_hi) / 2
    for shape in _voicing_shapes(label, kind):
        for bottom in range(rng_lo, rng_lo + 12):
            if bottom % 12 != shape[0]:
                continue
            pitches = _stack(shape, bottom, kind == "spread")
            if pitches[-1] > rng_hi:
                continue
            if previous and len(previous) == len(pitches):
                cost = float(np.abs(np.sort(pitches) - np.sort(previous)).sum())
            elif previous:
                cost = abs(np.mean(pitches) - np.mean(previous)) * len(pitches)
            else:
                cost = abs(np.mean(pitches) - centre)
            if best_cost is None or cost < best_cost - 1e-9:
                best, best_cost = pitches, cost
    if best is None:  # range too narrow for this shape: close position from the bottom of the range
        shape = _voicing_shapes(label, kind)[0]
        best = _stack(shape, _place(shape[0], rng_lo + 6, rng_lo, rng_lo + 11), kind == "spread")
    return sorted(best)


class _Voicings:
    """Voicing per chord segment, voice-led from the previous segment; shared by parts with the same
    voicing kind and range (the quartet's three upper parts play one four-part texture)."""

    def __init__(self, chords: list[str]):
        self.chords = chords
        self.cache: dict[tuple, dict[int, list[int]]] = {}

    def at(self, beat_index: int, kind: str, lo: int, hi: int) -> list[int]:
        key = (kind, lo, hi)
        if key not in self.cache:
            table, previous = {}, None
            i = 0
            while i < len(self.chords):
                j = i
                while j < len(self.chords) and self.chords[j] == self.chords[i]:
                    j += 1
                if self.chords[i] != NO_CHORD:
                    previous = _voice(self.chords[i], kind, lo, hi, previous)
                    table.update({b: previous for b in range(i, j)})
                i = j
            self.cache[key] = table
        return self.cache[key][beat_index]


def _pattern_bars(alternatives: tuple, beats_per_bar: int, drums: bool) -> int:
    """How many bars a pattern spans (a bossa clave takes two)."""
    last = max((s[1] if drums else s[0] for alt in alternatives for s in alt), default=0.0)
    return int(last // beats_per_bar) + 1


def _pattern(patterns: dict[int, tuple], beats_per_bar: int) -> tuple | None:
    """Alternatives for this meter; for a meter the style lacks, the nearest one's patterns cut or
    repeated to the bar (a 6/8 bar plays two 3/4 bars; a 2/4 bar the first half of a 4/4 one)."""
    if not patterns:
        return None
    if beats_per_bar in patterns:
        return patterns[beats_per_bar]
    source = 3 if beats_per_bar % 3 == 0 and 3 in patterns else 4 if 4 in patterns else max(patterns)
    out = []
    for alt in patterns[source]:
        steps = []
        for offset in range(0, beats_per_bar, source):
            for s in alt:
                beat = s[1] if isinstance(s[0], str) else s[0]
                if offset + beat < beats_per_bar:
                    steps.append((s[0], offset + s[1], s[2]) if isinstance(s[0], str) else (offset + s[0],) + s[1:])
        out.append(tuple(steps))
    return tuple(out)


class _Bass:
    """The bass line's memory: where the last note was, so the next lands near it."""

    def __init__(self, part: Part, rng: np.random.Generator):
        self.lo, self.hi = part.range
        self.previous = self.lo + 7.0
        self.rng = rng

    def pitch(self, tone: str, chord: str, next_chord: str, next_bar_chord: str) -> int:
        root, quality, bass_interval = parse_chord(chord)
        intervals = QUALITIES[quality]
        if tone == "next_root" and parse_chord(next_bar_chord) is not None:
            tone, (root, quality, bass_interval) = "root", parse_chord(next_bar_chord)
            intervals = QUALITIES[quality]
        if tone == "root" or tone == "next_root":
            pc = (root + bass_interval) % 12
        elif tone == "third":
            pc = (root + intervals[1]) % 12
        elif tone == "fifth":
            pc = (root + intervals[2]) % 12
        elif tone == "seventh":
            pc = (root + (intervals[3] if len(intervals) > 3 else 12)) % 12
        elif tone == "octave":
            low = _place(root, self.previous, self.lo, self.hi)
            p = low + 12 if low + 12 <= self.hi else low - 12 if low - 12 >= self.lo else low
            self.previous = p
            return p
        elif tone == "chord":
            pcs = {(root + i) % 12 for i in intervals[:4]}
            options = [p for p in range(self.lo, self.hi + 1) if p % 12 in pcs and 0 < abs(p - self.previous) <= 7]
            if options:
                weights = np.array([1.0 / abs(p - self.previous) for p in options])
                p = int(self.rng.choice(options, p=weights / weights.sum()))
                self.previous = p
                return p
            pc = root
        else:  # approach: a half step below or above the next chord's root (or its fifth above)
            target = parse_chord(next_chord) or parse_chord(chord)
            target_pitch = _place((target[0] + target[2]) % 12, self.previous, self.lo, self.hi)
            step = int(self.rng.choice([-1, 1, 7], p=[0.45, 0.4, 0.15]))
            p = target_pitch + step
            if not self.lo <= p <= self.hi:
                p = target_pitch - step if self.lo <= target_pitch - step <= self.hi else target_pitch
            self.previous = p
            return p
        p = _place(pc, self.previous, self.lo, self.hi)
        self.previous = p
        return p


def _bars_in_phrases(sheet: LeadSheet) -> list[tuple[list[int], int]]:
    """(beat indices, bar number) per bar; the pickup is bar -1, the first full bar is bar 0. A bar
    longer than the meter (a downbeat the analysis missed) is played as bars of the meter."""
    bars = sheet.bars()
    bpb = sheet.beats_per_bar
    starts_with_pickup = bool(bars) and bars[0][0] == 0 and bool(sheet.downbeats) and sheet.downbeats[0] > 0
    out: list[tuple[list[int], int]] = []
    number = -1 if starts_with_pickup else 0
    for i, bar in enumerate(bars):
        if i == 0 and starts_with_pickup:
            out.append((bar, -1))
            number = 0
            continue
        for k in range(0, len(bar), bpb):
            out.append((bar[k:k + bpb], number))
            number += 1
    return out


def _time_keeping(alternatives: tuple) -> tuple:
    """A drum groove's alternatives with only the time-keeping instruments (_INTRO_DRUMS)."""
    return tuple(tuple(s for s in alt if s[0] in _INTRO_DRUMS) for alt in alternatives)


def score(lead_sheet: LeadSheet, style: Style, *, seed: int, tempo_ratio: float = 1.0,
          humanise: bool = True, form: Form | None = None) -> list[Event]:
    """The band's note events for `lead_sheet` in `style`, sorted by beat.

    `tempo_ratio` (> 1 faster) is the tempo change the cover makes: it sets the tempo the style
    sees (swing ratio, brushes) and the length of a millisecond in beats. `humanise=False` gives the
    swung grid alone (for tests and for reading the score). `form` is the intro/outro to play,
    `song_form(lead_sheet)` when None; Form() plays the song through without either.
    """
    # two streams: choices (patterns, walking notes) and humanisation, so the unhumanised score has
    # exactly the humanised one's notes
    rng, jitter_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    beats = np.asarray(lead_sheet.beats_s, dtype=float)
    n_beats = len(beats)
    if n_beats < 2:
        return []
    periods_s = np.diff(beats) / tempo_ratio
    periods_s = np.append(periods_s, periods_s[-1]).tolist()
    jitter: list[list[float]] = []  # unit normal (timing, velocity) pairs, drawn in blocks
    tempo_bpm = lead_sheet.tempo_bpm * tempo_ratio
    ratio = style.swing_ratio(tempo_bpm)
    sub = style.subdivision_beats
    chords = [played_chord(c, style, lead_sheet.key) for c in lead_sheet.chords]
    voicings = _Voicings(chords)
    bpb = lead_sheet.beats_per_bar
    bars = _bars_in_phrases(lead_sheet)
    last_bar = max((number for _, number in bars), default=0)
    form = song_form(lead_sheet) if form is None else form
    last_whole = max((number for bar, number in bars if len(bar) == bpb), default=last_bar)
    first_outro = last_whole - form.outro_bars + 1 if form.outro_bars else last_bar + 1
    events: list[Event] = []

    def emit(part: Part, grid_beat: float, length: float, pitch: int, velocity: int) -> None:
        start = swing_beat(grid_beat, ratio, sub)
        end = swing_beat(grid_beat + length, ratio, sub)
        shift_ms = part.delay_ms
        if humanise:
            if not jitter:
                jitter.extend(jitter_rng.normal(0.0, 1.0, size=(4096, 2)).tolist()[::-1])
            dt, dv = jitter.pop()
            shift_ms += dt * style.humanise_ms
            velocity = round(velocity + dv * style.humanise_velocity)
        if shift_ms:
            shift_beats = shift_ms / 1000.0 / periods_s[min(int(grid_beat), n_beats - 1)]
            start, end = start + shift_beats, end + shift_beats
        events.append(Event(part.name, float(start), float(max(end - start, 0.02)), int(pitch),
                            int(min(127, max(1, velocity)))))

    for part in style.parts:
        layers_by_name = {name: _pattern(patterns, bpb) for name, patterns in
                          (("groove", part.groove), ("fill", part.fill), ("section", part.section_start),
                           ("ending", part.ending), ("intro", part.intro), ("outro", part.outro))}
        intro_default = part.is_drums and not layers_by_name["intro"]
        if intro_default:
            layers_by_name["intro"] = _time_keeping(layers_by_name["groove"])
        bass = _Bass(part, rng) if part.role == "bass" else None
        arp_index = 0
        chosen: dict[str, int] = {}
        for bar, number in bars:
            start = bar[0]
            offset = bpb - len(bar) if number < 0 else 0  # a pickup is the end of a bar
            phrase_bar = number - form.intro_bars  # phrases count from the tune's first bar
            in_intro = form.intro_bars > 0 and number < form.intro_bars
            if layers_by_name["ending"] and number == last_bar and len(bar) == bpb:
                names = ["ending"]
            elif in_intro and layers_by_name["intro"] and not intro_default:
                names = ["intro"]
            elif number >= first_outro and layers_by_name["outro"]:
                names = ["outro"]
            elif (layers_by_name["fill"] and phrase_bar % style.phrase_bars == style.phrase_bars - 1
                  and number != last_bar):
                names = ["fill"]
            elif in_intro and layers_by_name["intro"]:
                names = ["intro"]
            else:
                names = ["groove"]
            if layers_by_name["section"] and (number == first_outro or
                                              phrase_bar >= 0 and phrase_bar % style.section_bars == 0):
                names.append("section")
            for name in names:
                alternatives = layers_by_name[name]
                anchor = first_outro if name == "outro" else form.intro_bars
                cycle = (number - anchor) % _pattern_bars(alternatives, bpb, part.is_drums)
                # a groove (an intro, an outro) keeps its choice for its length
                if name not in ("groove", "intro", "outro") or name not in chosen or cycle == 0:
                    chosen[name] = int(rng.integers(len(alternatives))) if len(alternatives) > 1 else 0
                for step in alternatives[chosen[name]]:
                    local = (step[1] if part.is_drums else step[0]) - cycle * bpb - offset
                    if local < 0 or local >= len(bar):
                        continue
                    grid_beat = start + local
                    j = int(grid_beat)
                    chord = chords[j]
                    if chord == NO_CHORD and not (part.is_drums and style.drums_on_no_chord):
                        continue
                    if part.is_drums:
                        emit(part, grid_beat, _DRUM_LENGTH_BEATS, DRUMS[step[0]], step[2])
                        continue
                    length = step[1]
                    # a held note stops where the chord changes; the part re-strikes on the new chord
                    pieces = []
                    t, stop = grid_beat, min(grid_beat + length, n_beats)
                    while t < stop - 1e-9:
                        k = int(t) + 1
                        while k < stop and chords[k] == chords[int(t)]:
                            k += 1
                        pieces.append((t, min(k, stop) - t))
                        t = float(min(k, stop))
                    for piece_index, (t, piece_len) in enumerate(pieces):
                        jt = int(t)
                        if chords[jt] == NO_CHORD:
                            continue
                        velocity = step[-1] if piece_index == 0 else max(1, step[-1] - 10)
                        if bass is not None:
                            tone = step[2] if piece_index == 0 else "root"
                            nxt = min(int(t + piece_len), n_beats - 1)
                            bar_after = min(start + len(bar), n_beats - 1)
                            pitch = bass.pitch(tone, chords[jt], chords[nxt], chords[bar_after])
                            emit(part, t, piece_len, pitch, velocity)
                            continue
                        voicing = voicings.at(jt, part.voicing, *part.range)
                        if part.voice is not None:
                            notes = [voicing[min(part.voice, len(voicing) - 1)]]
                        elif part.arpeggio:
                            notes = [voicing[arp_index % len(voicing)]]
                            arp_index += 1
                        else:
                            notes = voicing
                        for pitch in notes:
                            emit(part, t, piece_len, pitch, velocity)
    events.sort(key=lambda e: (e.beat, e.part, e.pitch))
    return events
