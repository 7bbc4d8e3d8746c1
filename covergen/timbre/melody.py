"""The melodic phrases of a stem: where one confident pitch leads, and the notes they hold.

Real singing is not one pitched line from start to end: consonants, breaths, rests, reverb
tails and, after separation, bleed from the band (a chord or a bass note the pitch tracker
jumps to for a few frames) sit between the notes. `track` finds, frame by frame on the
features' 100 frames/s grid, the frames to play: swift-f0 is confident, the energy lies on
the harmonics of the tracked pitch (`features.harmonicity_frames`), and the pitch continues
a stretch long enough to be a note. Short islands that jump far from the line around them
are bleed and are not played. `transfer_stem` plays the result; `melody_notes` cuts the same
frames into notes for the lead sheet, so the transferred audio and the lead sheet agree.

Thresholds were chosen on dev material only (synthetic sung phrases of seeds 100-111 with
breaths, consonants and chord bleed, the separated vocals of two of the shared songs, and
other-instrument stems), never on what `benchmarks/bench_melody.py` reports.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter

from ..audio import true_runs
from ..leadsheet import Note
from . import features as feat

__all__ = ["Tracking", "track", "melody_notes", "voice_gate", "notes_from_tracking", "pitch_steadiness", "held_share",
           "MIN_CONFIDENCE", "MIN_FRAME_HARMONICITY", "MIN_PHRASE_S"]

# A frame may be played when swift-f0's confidence reaches MIN_CONFIDENCE and at least
# MIN_FRAME_HARMONICITY of its 0.8*f0-5 kHz energy lies on the harmonics of the tracked f0.
# MIN_CONFIDENCE was 0.5: on the dev set (spleeter vocals of four songs inside their word spans,
# sung phrases 100-108 with consonants and chord bleed; benchmarks/dev_melody.py) swift-f0's
# confidence was what left most pyin-voiced frames unplayed (2-17 % of them). 0.4 plays 91.2 -> 94.8 %
# (min of the songs; 0.45: 93.9, 0.35: 95.4) at 0.6 points less agreement with pyin; sung phrases unchanged.
MIN_CONFIDENCE = 0.4
MIN_FRAME_HARMONICITY = 0.5
# A run of such frames is a note stretch when it lasts MIN_RUN_S; runs split where the pitch
# jumps more than _SPLIT_SEMITONES from one frame to the next (10 ms: faster than a sung glide).
MIN_RUN_S = 0.05
_SPLIT_SEMITONES = 1.0
_MIN_RUN_HARMONICITY = 0.6  # median over the run
# Runs grow into neighbouring frames that pass these laxer bounds (see track).
_GROW_CONFIDENCE = 0.3
_GROW_HARMONICITY = 0.35
# Bleed: a run shorter than _ISLAND_S whose pitch lies more than _ISLAND_SEMITONES from every
# longer run within _ISLAND_CONTEXT_S of it (the tracker jumped to a bass note or a chord tone).
_ISLAND_S = 0.2
_ISLAND_SEMITONES = 6.0
_ISLAND_CONTEXT_S = 1.0
# Gaps up to _BRIDGE_S inside a run of played frames (a tracker flicker) are played through.
_BRIDGE_S = 0.03
# Played stretches closer than PHRASE_GAP_S form one phrase (a consonant or a breath between
# notes); a longer gap is a rest. A stem is melodic when some phrase holds MIN_PHRASE_S of
# played frames.
PHRASE_GAP_S = 0.3
MIN_PHRASE_S = 0.5


@dataclass
class Tracking:
    """Per-frame analysis of one mono 16 kHz stem on the features' grid (frame k at k * hop_samples)."""

    f0_hz: np.ndarray
    confidence: np.ndarray
    loudness_db: np.ndarray
    harmonicity: np.ndarray
    sounding: np.ndarray
    played: np.ndarray
    phrases: list[tuple[int, int]]  # [start, end) frame spans
    hop_s: float

    @property
    def played_fraction(self) -> float:
        """Share of sounding frames that are played."""
        n = int(self.sounding.sum())
        return float((self.played & self.sounding).sum() / n) if n else 0.0

    def phrase_spans_s(self) -> list[tuple[float, float]]:
        return [(round(a * self.hop_s, 3), round(b * self.hop_s, 3)) for a, b in self.phrases]

    def rest_spans_s(self) -> list[tuple[float, float]]:
        """Spans between (and around) the phrases, in seconds."""
        edges, start, n = [], 0, len(self.played)
        for a, b in self.phrases:
            if a > start:
                edges.append((start, a))
            start = b
        if start < n:
            edges.append((start, n))
        return [(round(a * self.hop_s, 3), round(b * self.hop_s, 3)) for a, b in edges]


def _midi(f0_hz: np.ndarray) -> np.ndarray:
    return 69.0 + 12.0 * np.log2(np.maximum(np.asarray(f0_hz, np.float64), 1.0) / 440.0)


def track(mono: np.ndarray, *, sample_rate: int = feat.SAMPLE_RATE, hop_samples: int = feat.HOP_SAMPLES) -> Tracking:
    """Find the melodic phrases of mono 16 kHz audio [shape=(samples,)]; its features are in the result."""
    if sample_rate != feat.SAMPLE_RATE:
        raise ValueError(f"track expects {feat.SAMPLE_RATE} Hz audio, got {sample_rate}")
    frames = feat.n_frames(len(mono), hop_samples=hop_samples)
    mono = np.asarray(mono, np.float32)[:frames * hop_samples]
    fx = feat.extract(mono, sample_rate=sample_rate, hop_samples=hop_samples)
    hop_s = hop_samples / sample_rate
    harm = feat.harmonicity_frames(mono, fx.f0_hz, sample_rate=sample_rate, hop_samples=hop_samples)
    sounding = feat.sounding(fx.loudness_db)
    audible = feat.sounding(fx.loudness_db, range_db=50.0)
    midi = _midi(fx.f0_hz)
    cand = (fx.periodicity >= MIN_CONFIDENCE) & audible & (harm >= MIN_FRAME_HARMONICITY)
    # Split at pitch jumps, then keep runs long and harmonic enough to be notes.
    jump = np.zeros(frames, bool)
    jump[1:] = np.abs(np.diff(midi)) > _SPLIT_SEMITONES
    runs = []
    for a, b in true_runs(cand):
        cuts = [a] + [k for k in range(a + 1, b) if jump[k]] + [b]
        runs += [(s, e) for s, e in zip(cuts[:-1], cuts[1:])]
    min_run = max(1, int(round(MIN_RUN_S / hop_s)))
    runs = [(a, b) for a, b in runs if b - a >= min_run and np.median(harm[a:b]) >= _MIN_RUN_HARMONICITY]
    # Drop bleed islands: short runs far in pitch from every longer run nearby.
    island, context = int(round(_ISLAND_S / hop_s)), int(round(_ISLAND_CONTEXT_S / hop_s))
    pitch = [float(np.median(midi[a:b])) for a, b in runs]
    keep = []
    for i, (a, b) in enumerate(runs):
        if b - a < island:
            near = [pitch[j] for j, (c, d) in enumerate(runs)
                    if j != i and d - c >= island and c < b + context and d > a - context]
            if near and min(abs(pitch[i] - p) for p in near) > _ISLAND_SEMITONES:
                continue
        keep.append((a, b))
    # Grow each kept run while the frames stay plausible (hysteresis: strict to start, lenient to
    # continue) and the pitch stays within _SPLIT_SEMITONES of the run's edge: onsets after a
    # consonant and soft note endings are played too.
    lenient = (fx.periodicity >= _GROW_CONFIDENCE) & audible & (harm >= _GROW_HARMONICITY)
    played = np.zeros(frames, bool)
    for a, b in keep:
        played[a:b] = True
    for a, b in keep:
        k = a - 1
        while k >= 0 and lenient[k] and not played[k] and abs(midi[k] - midi[a]) <= _SPLIT_SEMITONES:
            played[k] = True
            k -= 1
        k = b
        while k < frames and lenient[k] and not played[k] and abs(midi[k] - midi[b - 1]) <= _SPLIT_SEMITONES:
            played[k] = True
            k += 1
    bridge = int(round(_BRIDGE_S / hop_s))
    for a, b in true_runs(~played):
        if 0 < a and b < frames and b - a <= bridge:
            played[a:b] = True
    # Phrases: played stretches joined across short gaps; a phrase must hold MIN_PHRASE_S of played frames.
    phrases: list[tuple[int, int]] = []
    gap = int(round(PHRASE_GAP_S / hop_s))
    for a, b in true_runs(played):
        if phrases and a - phrases[-1][1] <= gap:
            phrases[-1] = (phrases[-1][0], b)
        else:
            phrases.append((a, b))
    min_phrase = int(round(MIN_PHRASE_S / hop_s))
    short = [(a, b) for a, b in phrases if played[a:b].sum() < min_phrase]
    if len(short) < len(phrases):  # lone short phrases around real ones stay (a sung word between rests)
        short = []
    for a, b in short:
        played[a:b] = False
    phrases = [p for p in phrases if p not in short]
    return Tracking(f0_hz=fx.f0_hz, confidence=fx.periodicity, loudness_db=fx.loudness_db, harmonicity=harm,
                    sounding=sounding, played=played, phrases=phrases, hop_s=hop_s)


# Notes: the pitch median-filtered over one vibrato period; a new note where it leaves the current
# semitone by more than _NOTE_HYSTERESIS for _MIN_NOTE_S, a note shorter than _MIN_NOTE_S is
# merged into its neighbour; loudness onsets (a dip of _ONSET_DB and back) split repeated notes.
_VIBRATO_S = 0.17
_NOTE_HYSTERESIS = 0.75
_MIN_NOTE_S = 0.06
_ONSET_DB = 8.0
_DIP = 8  # frames each side of a loudness dip
_SMEAR = feat.LOUDNESS_N_FFT // feat.HOP_SAMPLES // 2  # the loudness window reaches this many frames into a neighbour


def _velocity(loudness_db: float, reference_db: float) -> int:
    """MIDI velocity from a note's median loudness: 100 at the stem's loud level, 1.5 per dB."""
    return int(np.clip(round(100 + 1.5 * (loudness_db - reference_db)), 1, 127))


def notes_from_tracking(tr: Tracking) -> list[Note]:
    """Cut the played frames of a Tracking into notes (onset, duration, MIDI pitch, velocity)."""
    midi = _midi(tr.f0_hz)
    frames = len(midi)
    width = max(1, int(round(_VIBRATO_S / tr.hop_s)))
    min_note = max(1, int(round(_MIN_NOTE_S / tr.hop_s)))
    reference_db = float(np.percentile(tr.loudness_db[tr.sounding], 95)) if tr.sounding.any() else 0.0
    notes: list[Note] = []
    for a, b in true_runs(tr.played):
        seg = midi[a:b]
        # A running median over one vibrato period: the vibrato averages out, a step stays a step.
        smooth = median_filter(seg, size=min(width, len(seg)), mode="nearest")
        cuts, current, k = [0], int(np.round(np.median(smooth[:min_note]))), 0
        while k < len(seg):
            if abs(smooth[k] - current) > _NOTE_HYSTERESIS:
                stay = smooth[k:k + min_note]
                new = int(np.round(np.median(stay)))
                if len(stay) >= min_note and np.all(np.abs(stay - current) > _NOTE_HYSTERESIS) and new != current:
                    # Onset: where the raw pitch has gone a quarter of the way to the new note (a
                    # glide's start, where the singer leaves the old note).
                    lo = max(cuts[-1] + 1, k - width)
                    below = np.flatnonzero((seg[lo:k + 1] - current) / (new - current) <= 0.25)
                    cut = lo + int(below[-1]) + 1 if len(below) else lo
                    cuts.append(cut)
                    current, k = new, max(k, cut) + min_note
                    continue
            k += 1
        cuts.append(len(seg))
        # Repeated notes: a loudness dip of _ONSET_DB between two louder frames within a note.
        ld = tr.loudness_db[a:b]
        extra = []
        for s, e in zip(cuts[:-1], cuts[1:]):
            for m in range(s + min_note + _SMEAR, e - min_note - _SMEAR):
                left, right = ld[max(s + _SMEAR, m - _DIP):m].max(), ld[m + 1:min(e - _SMEAR, m + _DIP + 1)].max()
                if ld[m] <= min(left, right) - _ONSET_DB and ld[m] == ld[m - 2:m + 3].min():
                    extra.append(m)
        # A pitch step already marks the onset: a loudness dip next to one adds no note.
        extra = [m for m in extra if min(abs(m - c) for c in cuts) > width]
        cuts = sorted(set(cuts + extra))
        spans = [(s, e) for s, e in zip(cuts[:-1], cuts[1:]) if e > s]
        merged: list[list[int]] = []
        for s, e in spans:  # a too-short piece joins the note before it (or after, at the start)
            if merged and (e - s < min_note or merged[-1][1] - merged[-1][0] < min_note):
                merged[-1][1] = e
            else:
                merged.append([s, e])
        for s, e in merged:
            if e - s < min_note:
                continue
            pitch = int(np.round(np.median(seg[s:e])))
            notes.append(Note(onset_s=round((a + s) * tr.hop_s, 3), duration_s=round((e - s) * tr.hop_s, 3),
                              pitch=pitch, velocity=_velocity(float(np.median(ld[s:e])), reference_db)))
    return notes


def pitch_steadiness(tr: Tracking, notes: list[Note] | None = None) -> float:
    """Share of the notes' frames whose pitch (median-filtered over a vibrato period) stays within
    a third of a semitone of the note's pitch: sung and played notes hold their pitch, speech glides."""
    notes = notes_from_tracking(tr) if notes is None else notes
    midi = _midi(tr.f0_hz)
    width = max(1, int(round(_VIBRATO_S / tr.hop_s)))
    held = []
    for n in notes:
        a = int(round(n.onset_s / tr.hop_s))
        seg = midi[a:a + int(round(n.duration_s / tr.hop_s))]
        if len(seg):
            smooth = median_filter(seg, size=min(width, len(seg)), mode="nearest")
            held.append(np.abs(smooth - np.median(seg)) < 0.35)
    return float(np.concatenate(held).mean()) if held else 0.0


def held_share(notes: list[Note], *, min_note_s: float = 0.2) -> float:
    """Share of the notes' time in notes of at least min_note_s: sung lines hold notes, speech syllables are short."""
    total = sum(n.duration_s for n in notes)
    return float(sum(n.duration_s for n in notes if n.duration_s >= min_note_s) / total) if total else 0.0


def melody_notes(y: np.ndarray, *, sample_rate: int) -> list[Note]:
    """The melody notes of a monophonic stem y [shape=(channels, samples)] or [shape=(samples,)], any sample rate.

    The same phrase tracking `transfer_stem` plays: onset_s and duration_s in seconds of y, MIDI
    pitch (the median over the note: vibrato and glides averaged out), velocity from the note's
    median loudness (100 at the stem's loud level, 1.5 per dB). An empty list
    when y has no melodic phrase.
    """
    from ..audio import resample, to_mono

    y = np.asarray(y)
    if y.ndim not in (1, 2) or y.shape[-1] == 0:
        raise ValueError(f"y must be [shape=(channels, samples)] with samples > 0, got shape {y.shape}")
    mono = resample(np.asarray(to_mono(y), np.float32), orig_sr=int(sample_rate), target_sr=feat.SAMPLE_RATE)
    if feat.n_frames(len(mono)) < 10:
        return []
    return notes_from_tracking(track(mono))


# The kept voice (`melody = "voice"`) sounds only in its phrases: a separated vocal stem carries the
# original band's bleed, heard alone wherever the singer rests, and pulls the cover back to the original
# genre. A phrase (notes closer than PHRASE_GAP_S, so breaths and consonants inside it stay) opens
# VOICE_PRE_S before its first note (the consonant before the voiced onset) and closes VOICE_POST_S
# after its last (the note's decay and its room), with raised-cosine ramps of VOICE_RAMP_S outside that.
VOICE_PRE_S = 0.12
VOICE_POST_S = 0.3
VOICE_RAMP_S = 0.05


def voice_gate(notes: list[Note], n_samples: int, sample_rate: int) -> np.ndarray | None:
    """0-1 gain per sample [shape=(n_samples,)] that opens on the phrases of `notes` (the lead sheet's
    melody, seconds of the stem), or None without notes (nothing says where the voice is)."""
    if not notes:
        return None
    spans: list[list[float]] = []
    for note in sorted(notes, key=lambda n: n.onset_s):
        a, b = note.onset_s - VOICE_PRE_S, note.onset_s + note.duration_s + VOICE_POST_S
        if spans and a <= spans[-1][1] + PHRASE_GAP_S:
            spans[-1][1] = max(spans[-1][1], b)
        else:
            spans.append([a, b])
    gain = np.zeros(n_samples, np.float32)
    ramp = max(1, int(round(VOICE_RAMP_S * sample_rate)))
    rise = (0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp) + 1) / (ramp + 1))).astype(np.float32)
    for a, b in spans:
        i, j = (min(n_samples, max(0, int(round(t * sample_rate)))) for t in (a, b))
        gain[i:j] = 1.0
        lo, hi = max(0, i - ramp), min(n_samples, j + ramp)
        gain[lo:i] = np.maximum(gain[lo:i], rise[ramp - (i - lo):])
        gain[j:hi] = np.maximum(gain[j:hi], rise[::-1][:hi - j])
    return gain
