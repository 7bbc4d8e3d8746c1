"""Arranged covers judged by an independent tagger trained on real records (issue #19's genre move).

The project's genre model is an SVM on GTZAN's 57 summary features; a judge trained on audio of real
records may hear a cover differently (the issue's own judges did). This bench plays the covers that
`benchmarks.bench_arrange --keep-audio DIR` kept, and their originals, to musicnn's taggers
(`benchmarks/musicnn_tags.py`, in `.venv-judge`: `make judge-env`):

- move: P(tag | cover) - P(tag | original), mean per genre; the tag is jazz (bossa nova: jazz stands
  in, as for the genre model), rock, Hip-Hop (lo-fi) from MSD_musicnn, classical from MTT_musicnn
  (MSD's 50 tags have no classical);
- top: the share of covers whose highest genre tag (GENRE_TAGS of that model) is the target;
- what the covers read as instead: the commonest top genre tag.

Both files of a pair are judged at -14 LUFS (float WAV copies, no limiter), as the genre model judges them.

    python -m benchmarks.bench_arrange --genres ... --no-revoice --no-speed --keep-audio /tmp/covers
    python -m benchmarks.bench_judge /tmp/covers            # bench/judge.{md,json}

`make bench` runs it after the arrange bench, on the covers that bench kept in bench/covers/arranged/,
and skips it (one line) when `.venv-judge` is missing.
"""
from __future__ import annotations

import argparse
import collections
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from .common import OUT, REPO, write

KEPT = OUT / "covers" / "arranged"  # where `make bench` has bench_arrange keep its covers
JUDGE_LUFS = -14.0  # both files of a pair are judged at the same loudness (musicnn's log-mel is not gain-free)
JUDGE_PYTHON = REPO / ".venv-judge" / "bin" / "python"
TARGET_TAG = {"jazz": ("MSD_musicnn", "jazz"), "bossa_nova": ("MSD_musicnn", "jazz"), "rock": ("MSD_musicnn", "rock"),
              "lofi": ("MSD_musicnn", "Hip-Hop"), "classical": ("MTT_musicnn", "classical")}
# the tags that name a genre (the others name moods, decades, voices, instruments)
GENRE_TAGS = {
    "MSD_musicnn": ("rock", "pop", "alternative", "indie", "electronic", "dance", "alternative rock", "jazz", "metal",
                    "classic rock", "soul", "indie rock", "electronica", "folk", "punk", "blues", "hard rock",
                    "ambient", "Hip-Hop", "country", "easy listening", "funk", "electro", "heavy metal",
                    "Progressive rock", "rnb", "indie pop", "House", "chillout"),
    "MTT_musicnn": ("classical", "techno", "electronic", "rock", "ambient", "indian", "opera", "pop", "new age",
                    "dance", "country", "metal"),
}


def judge(files: list[Path]) -> dict[str, dict]:
    """{file: {model: {tag: p}}} from musicnn_tags.py in the judge's environment, each file at JUDGE_LUFS."""
    from covergen import mix

    with tempfile.TemporaryDirectory() as tmp:
        levelled = []
        for i, f in enumerate(files):
            y, sr = sf.read(f, dtype="float32", always_2d=True)
            gain_db = JUDGE_LUFS - mix.integrated_lufs(np.ascontiguousarray(y.T), sample_rate=sr)
            levelled.append(Path(tmp) / f"{i}.wav")
            sf.write(levelled[-1], y * np.float32(10 ** (gain_db / 20)), sr, subtype="FLOAT")
        done = subprocess.run([str(JUDGE_PYTHON), str(REPO / "benchmarks" / "musicnn_tags.py"), *map(str, levelled)],
                              capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"musicnn_tags.py failed: {done.stderr.strip().splitlines()[-1:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return {str(f): out[str(p)] for f, p in zip(files, levelled)}


def top_genre(tags: dict[str, dict], model: str) -> str:
    return max(GENRE_TAGS[model], key=lambda t: tags[model][t])


def run(folder: Path) -> dict:
    pairs = []  # (cover, original, genre) from NAME--GENRE.flac beside NAME.flac
    for cover in sorted(folder.glob("*--*.flac")):
        name, _, genre = cover.stem.partition("--")
        if (folder / f"{name}.flac").is_file() and genre in TARGET_TAG:
            pairs.append((cover, folder / f"{name}.flac", genre))
    tags = judge(sorted({c for c, _, _ in pairs} | {o for _, o, _ in pairs}))
    rows = []
    for cover, original, genre in pairs:
        model, tag = TARGET_TAG[genre]
        c, o = tags[str(cover)], tags[str(original)]
        rows.append({"file": original.stem, "genre": genre, "model": model, "tag": tag,
                     "p_original": round(o[model][tag], 4), "p_cover": round(c[model][tag], 4),
                     "move": round(c[model][tag] - o[model][tag], 4),
                     "top_original": top_genre(o, model), "top_cover": top_genre(c, model)})
    summary = {}
    for genre in TARGET_TAG:
        rs = [r for r in rows if r["genre"] == genre]
        if rs:
            summary[genre] = {"n": len(rs), "tag": f"{rs[0]['model']}:{rs[0]['tag']}",
                              "move": statistics.mean(r["move"] for r in rs),
                              "top": statistics.mean(r["top_cover"] == r["tag"] for r in rs),
                              "reads_as": collections.Counter(r["top_cover"] for r in rs).most_common(2)}
    return {"folder": str(folder), "rows": rows, "summary": summary}


def markdown(result: dict, note: str | None = None) -> str:
    lines = ["## Arranged covers judged by musicnn (trained on real records; issue #19)", ""]
    if note:
        lines += [note, ""]
    lines += ["Move = P(tag | cover) − P(tag | original), musicnn's mean over 3 s patches; top = the target is the "
              "cover's highest genre tag (goal, as for the genre model: move ≥ +0.3, top ≥ 60%). "
              "`python -m benchmarks.bench_judge DIR` on the covers `bench_arrange --keep-audio DIR` kept.", "",
              "| genre | tag | n | move | top | covers read as |", "|---|---|---|---|---|---|"]
    for genre, s in result["summary"].items():
        reads = ", ".join(f"{t} {n}/{s['n']}" for t, n in s["reads_as"])
        lines.append(f"| {genre} | {s['tag']} | {s['n']} | {s['move']:+.2f} | {s['top']:.0%} | {reads} |")
    lines += ["", "| file | genre | P original | P cover | move | top original → cover |", "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['file']} | {r['genre']} | {r['p_original']:.2f} | {r['p_cover']:.2f} | {r['move']:+.2f} | "
                     f"{r['top_original']} → {r['top_cover']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, nargs="?", default=KEPT,
                        help=f"excerpts and covers kept by bench_arrange --keep-audio (default {KEPT})")
    parser.add_argument("--note", default=None, help="what this run covered, said above the tables")
    parser.add_argument("--name", default="judge", help="bench/NAME.{md,json}")
    args = parser.parse_args()
    if not JUDGE_PYTHON.is_file():  # optional: `make bench` goes on without it
        print(f"[judge] skipped: {JUDGE_PYTHON} not found (`make judge-env`: TensorFlow + musicnn, ~2.6 GB)")
        return
    result = run(args.folder)
    if not result["rows"]:
        raise RuntimeError(f"{args.folder}: no NAME--GENRE.flac covers beside their NAME.flac excerpts")
    text = markdown(result, args.note)
    write(args.name, result, text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
