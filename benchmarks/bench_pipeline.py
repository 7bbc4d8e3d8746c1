"""Wall time and peak memory per stage of `covergen make`, and the real-time factor.

On the bundled demo song and the ../shared/data/real clips that are music (skipped when absent).
RTF = processing seconds / audio seconds (lower is faster). Run twice per song: the first
run separates, the second hits the stem cache; both are reported.
"""
from __future__ import annotations

import json
import os
import statistics
import tempfile
from unittest import mock

from covergen import pipeline
from covergen.errors import CovergenError

from .common import OUT, SHARED, PeakRSS, REPO, write

SONGS = [REPO / "covergen" / "data" / "demo_song.flac",
         SHARED / "real" / "Kevin_MacLeod_-_Vibe_Ace.ogg",
         SHARED / "real" / "442789__lena-orsa__happy-music-pistachio-ice-cream-ragtime.ogg",
         SHARED / "real" / "Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.ogg"]
COVERS = OUT / "covers"
PAIRS = OUT / "cover_pairs.json"  # (original, cover) files that bench_coverid adds as queries


def _run(song, genre, meter):
    peaks = {}
    current = {"stage": None}

    def on_progress(stage, fraction):
        if stage != current["stage"]:
            if current["stage"]:
                peaks[current["stage"]] = meter.peak_mb()
            current["stage"] = stage
            meter.reset()

    cover = pipeline.make_cover(song, genre=genre, separator="auto", on_progress=on_progress)
    peaks[current["stage"]] = meter.peak_mb()
    COVERS.mkdir(parents=True, exist_ok=True)
    out = COVERS / f"{song.stem}-{genre}.wav"
    pipeline.write_cover(cover, out)
    return cover.report, peaks, out


def main() -> dict:
    rows, pairs = [], []
    # A fresh stem cache, so the first run really separates (the user's cache may hold these songs).
    with tempfile.TemporaryDirectory() as cache, mock.patch.dict(os.environ, {"COVERGEN_CACHE": cache}), \
            PeakRSS() as meter:
        for song in SONGS:
            if not song.exists():
                continue
            for attempt in ("first", "cached"):
                try:
                    report, peaks, cover = _run(song, "jazz", meter)
                except CovergenError as err:
                    rows.append({"song": song.name, "run": attempt, "error": str(err)})
                    break
                if attempt == "first":
                    pairs.append([str(song), str(cover)])
                rows.append({"song": song.name, "run": attempt, "duration_s": report["input"]["duration_s"],
                             "separator": report["separation"]["separator"], "stages_s": report["stages_s"],
                             "peak_rss_mb": {k: round(v) for k, v in peaks.items()},
                             "rtf": report["real_time_factor"], "lufs": report["output"]["lufs"],
                             "true_peak_dbtp": report["output"]["true_peak_dbtp"],
                             "cover_check": report.get("cover_check", {}),
                             "transfer": {t["stem"]: t["instrument"] if t["status"] == "transferred" else t["status"]
                                          for t in report.get("transfer", [])}})
    ok = [r for r in rows if "rtf" in r and r["run"] == "first"]
    summary = {"median_rtf_first_run": statistics.median(r["rtf"] for r in ok) if ok else None}
    lines = ["# Pipeline: `covergen make --to jazz`", "",
             "RTF = wall seconds / audio seconds (lower is faster). Peak RSS per stage in MB. Re-voiced: what "
             "each stem the preset re-plays became (the instrument, or kept as separated when transfer refused it).", "",
             "| song | run | sep. | audio s | load | analyse | separate | transfer | mix | check | total | RTF | peak MB "
             "| LUFS | dBTP | check z | re-voiced |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['song']} | {r['run']} | error: {r['error']} |" + " |" * 14)
            continue
        s = r["stages_s"]
        z = r["cover_check"].get("z")
        lines.append(f"| {r['song']} | {r['run']} | {r['separator']} | {r['duration_s']:.0f} | "
                     + " | ".join(f"{s.get(k, 0):.1f}" for k in ("load", "analyse", "separate", "transfer", "mix",
                                                                  "check", "total"))
                     + f" | {r['rtf']:.2f} | {max(r['peak_rss_mb'].values())} | {r['lufs']:.1f} | "
                       f"{r['true_peak_dbtp']:.1f} | {z if z is None else round(z, 1)} | "
                       + ", ".join(f"{stem} → {what}" for stem, what in r["transfer"].items()) + " |")
    lines += ["", f"Median RTF (first run): {summary['median_rtf_first_run']}", ""]
    write("pipeline", {"rows": rows, "summary": summary}, "\n".join(lines))
    PAIRS.write_text(json.dumps(pairs, indent=1))
    return summary


if __name__ == "__main__":
    main()
