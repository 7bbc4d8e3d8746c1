"""Why are voiced frames not played? A per-cause breakdown of melody.track on vocal stems (dev tool).

Run `python -m benchmarks.dev_melody [--set dev|report] [--separators spleeter ...]`. For each stem,
the frames voiced in the clean vocal (pyin, as bench_melody) that track() does not play are put
under the first rule that drops them: not audible (50 dB), swift-f0 confidence, frame
harmonicity, the run (too short or its median harmonicity), the bleed-island rule, the
short-phrase rule. Also: the share of reference-voiced frames where swift-f0 is an octave
(or more) away from pyin.

Dev set (choose thresholds here): the separated vocals of bench_melody.DEV_SONGS (four of the five
Jamendo songs with word times), and the known-f0 sung phrases with consonants and chord bleed. Report
set (look, do not tune): the multitracks. Separated vocals are cached by covergen's stem cache.
"""
from __future__ import annotations

import argparse

import numpy as np

from covergen.timbre import features as feat
from covergen.timbre import melody

from .bench_melody import (DEV_SONGS, KNOWN_F0_SEEDS, MULTITRACKS, _load, _separated_vocals, _words_mask,
                           with_consonants_and_bleed)
from .bench_timbre import PYIN_HOP, SR, _pyin_hz
from .common import SHARED

CAUSES = ("inaudible", "confidence", "harmonicity", "run", "island", "phrase", "played")


def _causes(mono: np.ndarray) -> tuple[np.ndarray, melody.Tracking]:
    """Per feature frame, the index into CAUSES of the first rule that drops it (or 'played')."""
    tr = melody.track(mono)
    audible = feat.sounding(tr.loudness_db, range_db=50.0)
    cause = np.full(len(tr.played), CAUSES.index("run"))
    cause[~audible] = CAUSES.index("inaudible")
    cause[audible & (tr.confidence < melody.MIN_CONFIDENCE)] = CAUSES.index("confidence")
    rest = audible & (tr.confidence >= melody.MIN_CONFIDENCE)
    cause[rest & (tr.harmonicity < melody.MIN_FRAME_HARMONICITY)] = CAUSES.index("harmonicity")
    # The island and short-phrase rules: frames that track() plays once the rule is switched off.
    for name, constant, off in (("phrase", "MIN_PHRASE_S", 0.0), ("island", "_ISLAND_SEMITONES", np.inf)):
        saved = getattr(melody, constant)
        setattr(melody, constant, off)
        try:
            cause[melody.track(mono).played & (cause == CAUSES.index("run"))] = CAUSES.index(name)
        finally:
            setattr(melody, constant, saved)
    cause[tr.played] = CAUSES.index("played")
    return cause, tr


def diagnose(label: str, mono: np.ndarray, ref_voiced: np.ndarray, ref_f0: np.ndarray) -> dict:
    """ref_voiced / ref_f0 on the pyin grid (PYIN_HOP) of mono [shape=(samples,)] at 16 kHz."""
    cause, tr = _causes(mono)
    idx = np.minimum((np.arange(len(ref_voiced)) * PYIN_HOP / feat.HOP_SAMPLES).astype(int), len(cause) - 1)
    c = cause[idx][ref_voiced]
    share = {name: round(100 * float(np.mean(c == k)), 1) for k, name in enumerate(CAUSES)}
    f_swift = tr.f0_hz[idx][ref_voiced]
    cents = 1200 * np.log2(np.maximum(f_swift, 1.0) / ref_f0[ref_voiced])
    conf = tr.confidence[idx][ref_voiced] >= melody.MIN_CONFIDENCE
    octave = np.abs(cents) > 600
    out = {"material": label, "ref_voiced": int(ref_voiced.sum()), **share,
           "octave_off_pct": round(100 * float(np.mean(octave)), 1),
           "octave_off_confident_pct": round(100 * float(np.mean(octave & conf)), 1),
           "played_but_off_50c_pct": round(100 * float(np.mean((c == CAUSES.index("played")) & (np.abs(cents) > 50))), 1),
           "harm_median_unplayed": round(float(np.median(tr.harmonicity[idx][ref_voiced][c != 6])), 2)
           if np.any(c != 6) else None}
    return out


def materials(which: str, separators: tuple[str, ...]):
    """Yield (label, mono 16 kHz, ref_voiced, ref_f0) for the dev or report set."""
    from .sung_phrases import REGISTERS, sung_phrase

    if which == "dev":
        for song in DEV_SONGS:
            path = SHARED / "songs" / f"{song}.ogg"
            for sep in separators:
                v = _separated_vocals(path, sep)
                f = _pyin_hz(v)
                yield f"{song} / {sep}", v, np.isfinite(f) & _words_mask(path.with_suffix(".words.csv"), len(f)), f
        for seed in KNOWN_F0_SEEDS:
            low, high = REGISTERS[seed % len(REGISTERS)]
            y, f0, voiced = sung_phrase(100 + seed, low_midi=low, high_midi=high)
            y, voiced, _ = with_consonants_and_bleed(y, voiced, 100 + seed)
            i = np.minimum(np.arange(len(y) // PYIN_HOP + 1) * PYIN_HOP, len(y) - 1)
            yield f"sung phrase {100 + seed} + bleed", y, voiced[i], f0[i]
    else:
        for name in MULTITRACKS:
            folder = SHARED / "multitrack" / name
            clean = _load(folder / "vocals.flac")
            f = _pyin_hz(clean)
            yield f"{name} true", clean, np.isfinite(f), f
            for sep in separators:
                yield f"{name} / {sep}", _separated_vocals(folder / "mixture.flac", sep)[: len(clean)], np.isfinite(f), f


def tracker_agreement() -> None:
    """pyin vs swift-f0 on each true vocal stem: is its ground-truth pitch one line? (Britpop has two singers.)"""
    for name in MULTITRACKS:
        y = _load(SHARED / "multitrack" / name / "vocals.flac")
        f = _pyin_hz(y)
        fx = feat.extract(y[: feat.n_frames(len(y)) * feat.HOP_SAMPLES])
        idx = np.minimum((np.arange(len(f)) * PYIN_HOP / feat.HOP_SAMPLES).astype(int), len(fx.f0_hz) - 1)
        both = np.isfinite(f) & (fx.periodicity[idx] >= melody.MIN_CONFIDENCE)
        cents = np.abs(1200 * np.log2(fx.f0_hz[idx][both] / f[both]))
        print(f"{name}: {both.sum()} frames voiced by both; within 50 cents {100 * np.mean(cents < 50):.1f} %, "
              f">= 600 cents apart {100 * np.mean(cents >= 600):.1f} %")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=["dev", "report"], default="dev")
    parser.add_argument("--separators", nargs="+", default=["spleeter"])
    parser.add_argument("--agreement", action="store_true", help="only pyin vs swift-f0 on the true vocal stems")
    args = parser.parse_args(argv)
    if args.agreement:
        tracker_agreement()
        return
    keys = ("ref_voiced",) + CAUSES + ("octave_off_pct", "octave_off_confident_pct", "played_but_off_50c_pct",
                                      "harm_median_unplayed")
    print("| material | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for label, mono, ref_voiced, ref_f0 in materials(args.set, tuple(args.separators)):
        row = diagnose(label, mono, ref_voiced, ref_f0)
        print(f"| {label} | " + " | ".join(str(row[k]) for k in keys) + " |", flush=True)


if __name__ == "__main__":
    main()
