"""Why are voiced frames not played? A per-cause breakdown of melody.track on vocal stems (dev tool).

Run `python -m benchmarks.dev_melody [--set dev|report] [--separators spleeter ...]`. For each stem,
the frames voiced in the clean vocal (pyin, as bench_melody) that track() does not play are put
under the first rule that drops them: not audible (50 dB), swift-f0 confidence, frame
harmonicity, the run (too short or its median harmonicity), the bleed-island rule, the
short-phrase rule. Also: the share of reference-voiced frames where swift-f0 is an octave
(or more) away from pyin.

Dev set (choose thresholds here): the separated vocals of bench_melody.DEV_SONGS (four of the five
Jamendo songs with word times), and the known-f0 sung phrases of seeds 100-111 with consonants and chord bleed. Report
set (look, do not tune): the multitracks. Separated vocals are cached by covergen's stem cache.
"""
from __future__ import annotations

import argparse

import numpy as np

from covergen.timbre import features as feat
from covergen.timbre import melody

from .bench_melody import (DEV_SONGS, MULTITRACKS, _load, _output_sounds, _separated_vocals, _words_mask,
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


def materials(which: str, separators: tuple[str, ...], with_input: bool = False):
    """Yield (label, mono 16 kHz, ref_voiced, ref_f0) for the dev or report set; with_input: also pyin on
    the stem itself when it is not the clean vocal (a separated multitrack vocal), else None."""
    for item in _materials(which, separators):
        if with_input:
            yield item + ((_pyin_hz(item[1]) if (" / " in item[0] and which == "report") or "bleed" in item[0] else None),)
        else:
            yield item


def _materials(which: str, separators: tuple[str, ...]):
    from .sung_phrases import REGISTERS, sung_phrase

    if which == "dev":
        for song in DEV_SONGS:
            path = SHARED / "songs" / f"{song}.ogg"
            for sep in separators:
                v = _separated_vocals(path, sep)
                f = _pyin_hz(v)
                yield f"{song} / {sep}", v, np.isfinite(f) & _words_mask(path.with_suffix(".words.csv"), len(f)), f
        for seed in range(12):  # seeds 100-111
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


MISS_CATEGORIES = {
    "hit": "within 50 cents of the clean vocal",
    "a_octave": "(a) played frame, swift-f0 an octave or more from pyin on the clean vocal",
    "a_interp": "(a) played frame where swift-f0's confidence < 0.5: its f0 is interpolated from other frames",
    "a_input": "(a) played frame, swift-f0 follows the input stem's own pitch (pyin on the input agrees), "
               "which differs from the clean vocal (separation, bleed)",
    "a_other": "(a) played frame, swift-f0 off from pyin on both the clean vocal and the input",
    "b_release": "(b) release tail: not played, after a played stretch (the synth glides to the next played f0)",
    "b_attack": "(b) attack: not played, before a played stretch",
    "c_octave": "(c) the synth played the clean vocal's pitch; pyin on the output is an octave or more off",
    "c_other": "(c) the synth played the clean vocal's pitch; pyin on the output is off by less",
    "d_window": "(d) the synth played the clean vocal's pitch at the pyin frame's centre, but its f0 changes "
                "inside the 40 ms frame (a note change or glide) and the output's pyin matches another value",
    "d_lag": "(d) played frame, the synth's f0 is off at the frame's centre but right within 20 ms of it "
             "(the trackers disagree on when the note changes)",
}


def _cents(a, b) -> np.ndarray:
    return 1200 * np.log2(np.maximum(np.asarray(a, np.float64), 1e-6) / np.maximum(np.asarray(b, np.float64), 1e-6))


def transfer_traced(mono: np.ndarray, inst) -> tuple[np.ndarray | None, dict]:
    """transfer_stem on mono 16 kHz audio, with what it handed the synth: (output, trace).

    trace: info (transfer's report), tracking (melody.Tracking), f0_synth (Hz per feature frame,
    in the input's octave), played and gate (per feature frame)."""
    from covergen.errors import TransferError
    from covergen.timbre import transfer

    trace: dict = {}
    real_track, real_synth = melody.track, transfer.synthesize

    def track(*a, **k):
        trace["tracking"] = real_track(*a, **k)
        return trace["tracking"]

    def synthesize(inst_, f0_hz, loudness_db, voiced, **k):
        trace["f0_shifted"], trace["played"] = np.asarray(f0_hz, np.float64), np.asarray(voiced, bool)
        audible = feat.sounding(loudness_db, range_db=transfer._PLAY_RANGE_DB)
        trace["gate"] = transfer._gate(trace["played"] & audible)
        return real_synth(inst_, f0_hz, loudness_db, voiced, **k)

    melody.track, transfer.synthesize = track, synthesize
    try:
        z, info = transfer.transfer_stem(mono[None], sample_rate=SR, instrument=inst)
    except TransferError as err:
        return None, {"info": {"refused": str(err)}}
    finally:
        melody.track, transfer.synthesize = real_track, real_synth
    trace["info"] = info
    trace["f0_synth"] = trace["f0_shifted"] / 2.0 ** info["octave_shift"]
    return z[0], trace


def miss_categories(mono: np.ndarray, ref_voiced: np.ndarray, ref_f0: np.ndarray, inst,
                    f_input: np.ndarray | None = None) -> dict:
    """Per pyin frame voiced in both the clean vocal and the transfer's output, its MISS_CATEGORIES key.

    ref_voiced / ref_f0: the clean vocal on the pyin grid; f_input: pyin on the transfer's input
    (None: the input is the clean vocal). Returns counts per category, frames voiced in both, pitch %."""
    z, trace = transfer_traced(mono, inst)
    if z is None:
        return {"refused": trace["info"]["refused"]}
    n = len(ref_voiced)
    f_out = _pyin_hz(z)[:n]
    f_out = np.pad(f_out, (0, n - len(f_out)), constant_values=np.nan)
    f_in = ref_f0 if f_input is None else np.pad(f_input[:n], (0, max(0, n - len(f_input))), constant_values=np.nan)
    tr, fs, played = trace["tracking"], trace["f0_synth"], trace["played"]
    frames = len(fs)
    shift = 2.0 ** trace["info"]["octave_shift"]
    both = ref_voiced & np.isfinite(ref_f0) & np.isfinite(f_out)
    played_idx = np.flatnonzero(played)
    counts = dict.fromkeys(MISS_CATEGORIES, 0)
    fixes = dict.fromkeys(("b_hold_fixes", "b_n", "interp_raw_fixes", "interp_n"), 0)
    raw = _swift_raw(mono, frames)
    for t in np.flatnonzero(both):
        ref, out = ref_f0[t], f_out[t] / shift
        if abs(_cents(out, ref)) <= 50:
            counts["hit"] += 1
            continue
        k = min(frames - 1, int(round(t * PYIN_HOP / feat.HOP_SAMPLES)))
        # pyin's 40 ms frame reaches 20 ms (2 feature frames) each side of its centre.
        win = np.arange(max(0, k - 2), min(frames, k + 3))
        if abs(_cents(fs[k], ref)) <= 50:  # the synth played the clean vocal's pitch at the frame's centre
            if np.any(np.abs(_cents(fs[win], ref)) > 50) and np.any(np.abs(_cents(out, fs[win])) <= 50):
                counts["d_window"] += 1
            else:
                counts["c_octave" if abs(_cents(out, ref)) >= 600 else "c_other"] += 1
        elif not played[k]:
            before = played_idx[played_idx < k]
            after = played_idx[played_idx > k]
            d_before = k - before[-1] if len(before) else np.inf
            d_after = after[0] - k if len(after) else np.inf
            cat = "b_release" if d_before <= d_after else "b_attack"
            counts[cat] += 1
            held = fs[before[-1]] if cat == "b_release" else fs[after[0]]
            fixes["b_hold_fixes"] += abs(_cents(held, ref)) <= 50
            fixes["b_n"] += 1
        elif np.any(np.abs(_cents(fs[win], ref)) <= 50):
            counts["d_lag"] += 1
        elif abs(_cents(fs[k], ref)) >= 600:
            counts["a_octave"] += 1
        elif tr.confidence[k] < 0.5:
            counts["a_interp"] += 1
            fixes["interp_raw_fixes"] += abs(_cents(raw[k], ref)) <= 50
            fixes["interp_n"] += 1
        elif np.isfinite(f_in[t]) and abs(_cents(fs[k], f_in[t])) <= 50:
            counts["a_input"] += 1
        else:
            counts["a_other"] += 1
    n_both = int(both.sum())
    sounds = _output_sounds(z, n)
    return {"played_pct": round(100 * float(sounds[ref_voiced].mean()), 1) if ref_voiced.any() else None,
            "voiced_in_both": n_both, "pitch_pct": round(100 * counts["hit"] / max(n_both, 1), 1),
            **{c: round(100 * v / max(n_both, 1), 1) for c, v in counts.items() if c != "hit"},
            "played_tail_pct": round(100 * float(np.mean(~played[np.minimum(
                np.round(np.flatnonzero(both) * PYIN_HOP / feat.HOP_SAMPLES).astype(int), frames - 1)])), 1)
            if n_both else 0.0,
            "tails_hold_would_hit": f"{fixes['b_hold_fixes']}/{fixes['b_n']}",
            "interp_raw_would_hit": f"{fixes['interp_raw_fixes']}/{fixes['interp_n']}"}


def _swift_raw(mono: np.ndarray, frames: int) -> np.ndarray:
    """swift-f0's own pitch on every frame (also where its confidence is under 0.5), on the feature grid."""
    res = feat._detector().detect(np.asarray(mono, np.float32), feat.SAMPLE_RATE)
    t = np.arange(frames) * feat.HOP_SAMPLES / feat.SAMPLE_RATE
    return 2.0 ** np.interp(t, res.timestamps, np.log2(np.maximum(res.pitch_hz, 1.0)))


def misses(which: str, separators: tuple[str, ...]) -> None:
    from covergen import timbre

    from .bench_melody import INSTRUMENT

    inst = timbre.load_instrument(INSTRUMENT)
    keys = ["played_pct", "voiced_in_both", "pitch_pct"] + [c for c in MISS_CATEGORIES if c != "hit"] + ["played_tail_pct", "tails_hold_would_hit", "interp_raw_would_hit"]
    print("Misses (> 50 cents) as % of the frames voiced in both; played_tail_pct: share of those frames "
          "the transfer did not play (tails).")
    for c, text in MISS_CATEGORIES.items():
        print(f"- {c}: {text}")
    print("\n| material | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    total: dict = {}
    for label, mono, ref_voiced, ref_f0, f_input in materials(which, separators, with_input=True):
        row = miss_categories(mono, ref_voiced, ref_f0, inst, f_input)
        if "refused" in row:
            print(f"| {label} | refused: {row['refused'][:80]} |", flush=True)
            continue
        for c in keys[3:-3]:
            total[c] = total.get(c, 0.0) + row[c] * row["voiced_in_both"] / 100
        total["voiced_in_both"] = total.get("voiced_in_both", 0) + row["voiced_in_both"]
        total["hit"] = total.get("hit", 0.0) + row["pitch_pct"] * row["voiced_in_both"] / 100
        print(f"| {label} | " + " | ".join(str(row[k]) for k in keys) + " |", flush=True)
    n = max(total.get("voiced_in_both", 0), 1)
    print(f"| all (frame-weighted) | | {n} | {100 * total.get('hit', 0) / n:.1f} | "
          + " | ".join(f"{100 * total.get(c, 0) / n:.1f}" for c in keys[3:-3]) + " | | | |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=["dev", "report"], default="dev")
    parser.add_argument("--separators", nargs="+", default=["spleeter"])
    parser.add_argument("--agreement", action="store_true", help="only pyin vs swift-f0 on the true vocal stems")
    parser.add_argument("--misses", action="store_true",
                        help="transfer each stem and attribute its pitch misses (> 50 cents) to a cause")
    args = parser.parse_args(argv)
    if args.misses:
        misses(args.set, tuple(args.separators))
        return
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
