"""Solo training phrases for the shipped timbre models: music21 corpus melodies rendered with FluidR3 GM.

Each phrase is one voice of a Bach chorale (soprano, alto, tenor or bass line),
transposed into the instrument's comfortable range, played at a random tempo
with a random dynamic arc, per-note velocity jitter and articulation, so the
decoder sees the instrument's whole loudness range and legato as well as
detached notes. Chorales whose number ends in 0 or 5 (by corpus order) are held
out for evaluation and never trained on. Everything follows from the seed.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..timbre import features as feat

__all__ = ["InstrumentSpec", "INSTRUMENTS", "melodies", "render_phrases", "load_dataset", "Dataset"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InstrumentSpec:
    name: str
    gm_program: int  # 1-based General MIDI program number
    low_midi: int  # comfortable sounding range
    high_midi: int


INSTRUMENTS = {
    "tenor_sax": InstrumentSpec("tenor_sax", 67, 44, 75),
    "trumpet": InstrumentSpec("trumpet", 57, 55, 82),
    # Swift-f0 stops at 46.9 Hz (just under G1), so the bass range starts at A1.
    "upright_bass": InstrumentSpec("upright_bass", 33, 33, 62),
    "violin": InstrumentSpec("violin", 41, 55, 91),
    "nylon_guitar": InstrumentSpec("nylon_guitar", 25, 40, 76),
}


def melodies(*, max_chorales: int = 200) -> list[dict]:
    """Monophonic lines [(start_quarters, duration_quarters, midi)] from Bach chorales in music21's corpus."""
    from music21 import corpus

    out = []
    for i, path in enumerate(sorted(corpus.getComposer("bach"))[:max_chorales]):
        try:
            score = corpus.parse(path)
        except Exception as err:  # a few corpus files fail to parse in some music21 versions
            log.debug("skip %s: %s", path, err)
            continue
        for part in score.parts[:4]:
            notes = [(float(n.offset), float(n.quarterLength), int(n.pitch.midi))
                     for n in part.flatten().notes if n.isNote and n.quarterLength > 0]
            if len(notes) >= 12:
                out.append({"id": f"{Path(path).stem}-{part.partName or part.id}", "heldout": i % 5 == 0,
                            "notes": notes})
    return out


def _fit_range(notes: list, spec: InstrumentSpec, rng: np.random.Generator) -> list:
    pitches = np.array([n[2] for n in notes])
    centre = rng.uniform(spec.low_midi + 5, spec.high_midi - 5)
    shift = int(round(centre - np.median(pitches)))
    out = []
    for start, dur, p in notes:
        q = p + shift
        while q < spec.low_midi:
            q += 12
        while q > spec.high_midi:
            q -= 12
        out.append((start, dur, q))
    return out


def _phrase_midi(notes: list, spec: InstrumentSpec, rng: np.random.Generator):
    import pretty_midi

    tempo_bpm = rng.uniform(60, 150)
    s_per_q = 60.0 / tempo_bpm
    legato = rng.uniform(0.55, 1.0)
    base_vel, swing_vel = rng.uniform(45, 110), rng.uniform(5, 30)
    arc_periods = rng.uniform(0.5, 3)
    total_q = notes[-1][0] + notes[-1][1]
    midi = pretty_midi.PrettyMIDI(initial_tempo=tempo_bpm)
    inst = pretty_midi.Instrument(program=spec.gm_program - 1)
    for start, dur, p in notes:
        arc = np.sin(2 * np.pi * arc_periods * start / max(total_q, 1.0))
        vel = int(np.clip(base_vel + swing_vel * arc + rng.normal(0, 6), 20, 127))
        t0 = start * s_per_q
        t1 = t0 + max(0.06, dur * s_per_q * legato)
        inst.notes.append(pretty_midi.Note(velocity=vel, pitch=p, start=t0 + 0.2, end=t1 + 0.2))
    midi.instruments.append(inst)
    return midi


def render_phrases(spec: InstrumentSpec, out_dir: Path, *, minutes: float = 10.0, heldout_minutes: float = 1.0,
                   seed: int = 0, lines: list[dict] | None = None) -> dict:
    """Render phrases to out_dir/{train,heldout}/*.wav (16 kHz mono) until each split holds its minutes.

    Skips work already on disk (the summary JSON marks a finished render). Returns the summary.
    """
    from .render import render_midi

    out_dir = Path(out_dir)
    summary_file = out_dir / "summary.json"
    if summary_file.is_file():
        return json.loads(summary_file.read_text())
    lines = lines if lines is not None else melodies()
    rng = np.random.default_rng([seed, spec.gm_program])
    summary = {"instrument": spec.name, "gm_program": spec.gm_program, "seed": seed,
               "range_midi": [spec.low_midi, spec.high_midi], "sample_rate": feat.SAMPLE_RATE}
    for split, target_min in (("train", minutes), ("heldout", heldout_minutes)):
        (out_dir / split).mkdir(parents=True, exist_ok=True)
        pool = [m for m in lines if m["heldout"] == (split == "heldout")]
        order = rng.permutation(len(pool))
        total_s, count = 0.0, 0
        for idx in order:
            if total_s >= target_min * 60:
                break
            notes = _fit_range(pool[idx]["notes"], spec, rng)
            y = render_midi(_phrase_midi(notes, spec, rng), sample_rate=feat.SAMPLE_RATE).mean(axis=0)
            y = (y * 0.5 / max(1e-6, float(np.max(np.abs(y))))).astype(np.float32)
            sf.write(out_dir / split / f"{count:03d}-{pool[idx]['id']}.wav", y, feat.SAMPLE_RATE, subtype="FLOAT")
            total_s += len(y) / feat.SAMPLE_RATE
            count += 1
        summary[split] = {"phrases": count, "seconds": round(total_s, 1)}
        log.info("%s %s: %d phrases, %.1f min", spec.name, split, count, total_s / 60)
    summary_file.write_text(json.dumps(summary, indent=1))
    return summary


@dataclass
class Dataset:
    """Concatenated training audio and its features; clips are cut at frame boundaries."""

    audio: np.ndarray  # (samples,) float32 at 16 kHz
    f0_hz: np.ndarray  # (frames,)
    periodicity: np.ndarray
    loudness_db: np.ndarray
    files: int

    @property
    def seconds(self) -> float:
        return len(self.audio) / feat.SAMPLE_RATE


def load_dataset(files: list[Path], *, cache: Path | None = None) -> Dataset:
    """Read audio files (any format covergen.audio.load takes), mono 16 kHz, and extract features.

    Each file's features are computed alone so swift-f0 never sees a splice.
    With `cache` (an .npz path) the result is stored and reused.
    """
    from .. import audio as caudio

    if cache is not None and Path(cache).is_file():
        z = np.load(cache)
        return Dataset(z["audio"], z["f0_hz"], z["periodicity"], z["loudness_db"], int(z["files"]))
    hop = feat.HOP_SAMPLES
    parts = {"audio": [], "f0_hz": [], "periodicity": [], "loudness_db": []}
    for f in files:
        y, _ = caudio.load(Path(f), sample_rate=feat.SAMPLE_RATE, min_duration_s=0.5, allow_silence=True)
        y = caudio.to_mono(y).astype(np.float32)
        y = y[: feat.n_frames(len(y)) * hop]
        fx = feat.extract(y)
        parts["audio"].append(y)
        parts["f0_hz"].append(fx.f0_hz)
        parts["periodicity"].append(fx.periodicity)
        parts["loudness_db"].append(fx.loudness_db)
    ds = Dataset(*(np.concatenate(parts[k]).astype(np.float32) for k in parts), files=len(files))
    if cache is not None:
        np.savez(cache, audio=ds.audio, f0_hz=ds.f0_hz, periodicity=ds.periodicity,
                 loudness_db=ds.loudness_db, files=ds.files)
    return ds
