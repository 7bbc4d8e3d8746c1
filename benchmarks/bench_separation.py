"""Per-stem SDR of each available separator, beside the mix/4 floor, and its speed.

(a) held-out rendered songs (covergen.training.demo_song.held_out_songs: seeds >= 1000,
varied instruments and tempi, never used for tuning); (b) the real MUSDB18 excerpt in
../shared/data/multitrack (skipped when absent). SDR: fast_bss_eval, torch backend,
fixed stem order (covergen.evaluation.stem_sdr_db).
"""
from __future__ import annotations

import statistics
import time

import numpy as np

from covergen import audio, separate
from covergen.errors import SeparationError
from covergen.evaluation import stem_sdr_db
from covergen.training.demo_song import held_out_songs, render_stems

from .common import SHARED, write

SR = 44100


def _sets():
    for song in held_out_songs(6):
        stems = render_stems(sample_rate=SR, seed=song["seed"], bars=12, tempo_bpm=song["tempo_bpm"],
                             programs=song["programs"])
        yield "rendered", f"seed {song['seed']}", stems
    folder = SHARED / "multitrack" / "Music_Delta__80s_Rock"
    if folder.is_dir():
        stems = {s: audio.load(folder / f"{s}.flac", allow_silence=True)[0] for s in separate.STEMS}
        yield "real", "Music_Delta__80s_Rock", stems


def main() -> dict:
    rows = []
    separators = ["embedded"]
    try:
        separate.resolve_separator("htdemucs")
        separate._load_demucs(separate.DEMUCS_MODEL, separate._demucs_repo(None))
        separators.append("htdemucs")
    except SeparationError as err:
        unavailable = str(err)
    else:
        unavailable = ""
    for kind, name, stems in _sets():
        mix = sum(stems.values())
        floor = stem_sdr_db(stems, {k: mix / 4 for k in stems})
        for sep in separators:
            t0 = time.perf_counter()
            est, _ = separate.separate(mix, sample_rate=SR, separator=sep, use_cache=False)
            seconds = time.perf_counter() - t0
            rows.append({"set": kind, "song": name, "separator": sep, "sdr_db": stem_sdr_db(stems, est),
                         "floor_db": floor, "rtf": seconds / (mix.shape[1] / SR)})
    summary = {}
    for kind in ("rendered", "real"):
        for sep in separators:
            sel = [r for r in rows if r["set"] == kind and r["separator"] == sep]
            if sel:
                summary[f"{kind}/{sep}"] = {
                    s: {"median_sdr_db": statistics.median(r["sdr_db"][s] for r in sel),
                        "median_floor_db": statistics.median(r["floor_db"][s] for r in sel)}
                    for s in separate.STEMS} | {"median_rtf": statistics.median(r["rtf"] for r in sel)}
    lines = ["# Separation: SDR (dB) per stem, with the mix/4 floor", "",
             f"Separators measured: {', '.join(separators)}." + (f" htdemucs: {unavailable}" if unavailable else ""),
             "", "| set | song | separator | vocals | drums | bass | other | RTF |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = " | ".join(f"{r['sdr_db'][s]:.1f} ({r['floor_db'][s]:.1f})" for s in separate.STEMS)
        lines.append(f"| {r['set']} | {r['song']} | {r['separator']} | {cells} | {r['rtf']:.2f} |")
    lines += ["", "Cells: SDR (floor). Medians:", ""]
    for key, val in summary.items():
        cells = ", ".join(f"{s} {val[s]['median_sdr_db']:.1f} (floor {val[s]['median_floor_db']:.1f})"
                          for s in separate.STEMS)
        lines.append(f"- {key}: {cells}; RTF {val['median_rtf']:.2f}")
    write("separation", {"rows": rows, "summary": summary}, "\n".join(lines) + "\n")
    return summary


if __name__ == "__main__":
    main()
