"""Cover-check benchmark: MAP and top-1 of 2DFTM and Qmax on rendered cover sets.

Every version of every test work queries all other versions (its own work's other versions
are the relevant answers). Also reports how the shipped verdict threshold does on these
works (TPR / FPR), since the threshold was set on other (calibration) works.

    python -m benchmarks.bench_coverid [--pairs pairs.json]

`--pairs` (or `main(pairs=...)`) adds (original, cover) files, e.g. from `covergen make`, as
extra two-version works that query and are queried like the others: see `pair_items`.
Writes bench/coverid.json and bench/coverid.md.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from covergen import coverid
from covergen.errors import CovergenError
from covergen.training import cover_songs

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Item:
    """One song in the benchmark pool: songs with the same `work` are covers of each other."""

    work: str
    name: str
    features: np.ndarray
    chroma: np.ndarray
    source: str = "rendered"  # or "pair"


def rendered_items(root: Path | None = None) -> tuple[list[Item], dict[str, str]]:
    """The test split: renders (cached) and their features (cached in the folder's index).

    Returns (items, errors by file name): a render whose features fail (the beat tracker found
    too few beats) is reported, and its work keeps its other versions.
    """
    root = Path(root) if root is not None else cover_songs.data_dir()
    sets = cover_songs.render_sets(root, splits=("test",))
    index = coverid.load_index(coverid.build_index(root / "renders" / "test"))
    if index.errors:
        log.warning("renders without features: %s", index.errors)
    work_of = {r.path.name: r.work_id for r in sets["test"]}
    items = [Item(work=work_of[p.name], name=p.name, features=index.features[i], chroma=index.chromas[i])
             for i, p in enumerate(index.paths) if p.name in work_of]
    return items, {p.name: msg for p, msg in index.errors.items()}


def pair_items(pairs: Sequence[tuple[Path, Path]]) -> tuple[list[Item], dict[str, str]]:
    """Hook for covers made by `covergen make`: each (original, cover) becomes a two-version work.

    Returns (items, errors by file): a file the cover check cannot read is reported, not fatal.
    """
    from covergen.audio import load

    items, errors = [], {}
    for k, (original, cover) in enumerate(pairs):
        got = []
        for role, path in (("original", original), ("cover", cover)):
            try:
                y, sr = load(Path(path), sample_rate=coverid.SAMPLE_RATE)
                chroma = coverid.beat_chroma(y, sample_rate=sr)
                got.append(Item(work=f"pair{k}:{Path(original).name}", name=f"{role}:{Path(path).name}",
                                features=coverid.features_from_chroma(chroma), chroma=chroma, source="pair"))
            except CovergenError as err:
                errors[str(path)] = str(err)
        if len(got) == 2:
            items += got
    return items, errors


def score_matrix(items: list[Item], method: str) -> np.ndarray:
    """Similarity of every pair (symmetric, diagonal NaN)."""
    n = len(items)
    if method == "2dftm":
        feats = np.stack([it.features for it in items]).astype(np.float64)
        s = feats @ feats.T
    else:
        s = np.zeros((n, n))
        for i in range(n):
            for j in range(i + 1, n):
                s[i, j] = s[j, i] = coverid.similarity_strong(items[i].chroma, items[j].chroma)
    np.fill_diagonal(s, np.nan)
    return s


def retrieval(scores: np.ndarray, works: list[str]) -> dict:
    """MAP, top-1 accuracy, mean rank of the first cover; each item queries all others."""
    aps, top1, first = [], [], []
    works_arr = np.array(works)
    for i in range(len(works)):
        others = np.array([j for j in range(len(works)) if j != i])
        relevant = works_arr[others] == works[i]
        if not relevant.any():
            continue
        order = np.argsort(-scores[i, others], kind="stable")
        rel_sorted = relevant[order]
        hits = np.flatnonzero(rel_sorted)
        aps.append(float(np.mean((np.arange(len(hits)) + 1) / (hits + 1))))
        top1.append(bool(rel_sorted[0]))
        first.append(int(hits[0]) + 1)
    return {"map": float(np.mean(aps)), "top1": float(np.mean(top1)), "mean_rank_first": float(np.mean(first)),
            "queries": len(aps)}


def verdicts(scores: np.ndarray, works: list[str], bg_scores: list[np.ndarray], threshold: float) -> dict:
    """How the z-score verdict does: each item as candidate against each other item as original."""
    pos, neg = [], []
    for i in range(len(works)):
        mu, sd = float(np.mean(bg_scores[i])), max(float(np.std(bg_scores[i])), 1e-9)
        for j in range(len(works)):
            if i != j:
                (pos if works[i] == works[j] else neg).append((scores[i, j] - mu) / sd)
    pos, neg = np.array(pos), np.array(neg)
    auc = float(np.mean(pos[:, None] > neg[None, :]) + 0.5 * np.mean(pos[:, None] == neg[None, :]))
    return {"threshold": threshold, "tpr": float(np.mean(pos >= threshold)), "fpr": float(np.mean(neg >= threshold)),
            "balanced_accuracy": float((np.mean(pos >= threshold) + np.mean(neg < threshold)) / 2),
            "auc": auc, "z_cover_median": float(np.median(pos)), "z_other_median": float(np.median(neg)),
            "cover_pairs": int(len(pos)), "other_pairs": int(len(neg))}


def evaluate(items: list[Item], background: coverid.Background) -> dict:
    works = [it.work for it in items]
    out = {}
    for method in coverid.METHODS:
        t0 = time.perf_counter()
        scores = score_matrix(items, method)
        t_pairs = time.perf_counter() - t0
        bg = [coverid._background_scores(it.features if method == "2dftm" else it.chroma, background, method)
              for it in items]
        res = {"retrieval": retrieval(scores, works),
               "verdict": verdicts(scores, works, bg, float(background.thresholds[method])),
               "ms_per_pair": 1000 * t_pairs / max(1, len(items) * (len(items) - 1) / 2)}
        if any(it.source == "pair" for it in items):
            res["pairs"] = _pair_report(scores, items, bg, background, method)
        out[method] = res
    return out


def _pair_report(scores, items, bg, background, method) -> list[dict]:
    """Per added (original, cover): the cover's rank for its original, z, verdict."""
    rows = []
    for i, it in enumerate(items):
        if it.source != "pair" or not it.name.startswith("cover:"):
            continue
        j = next(k for k, o in enumerate(items) if o.work == it.work and k != i)
        order = np.argsort(-np.nan_to_num(scores[i], nan=-np.inf), kind="stable")
        z = (scores[i, j] - float(np.mean(bg[i]))) / max(float(np.std(bg[i])), 1e-9)
        rows.append({"work": it.work, "rank_of_original": int(np.flatnonzero(order == j)[0]) + 1,
                     "score": float(scores[i, j]), "z": float(z),
                     "verdict": "cover" if z >= background.thresholds[method] else "not a cover"})
    return rows


def _commit() -> str | None:
    """The checked-out commit, read from .git without running git."""
    head = ROOT / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            ref_file = ROOT / ".git" / ref[5:]
            if ref_file.is_file():
                return ref_file.read_text().strip()
            packed = ROOT / ".git" / "packed-refs"
            for line in packed.read_text().splitlines() if packed.is_file() else []:
                if line.endswith(ref[5:]):
                    return line.split()[0]
            return None
        return ref
    except OSError:
        return None


def _timing(items: list[Item]) -> dict:
    """Feature extraction speed on three renders (seconds of compute per minute of audio)."""
    from covergen.audio import load

    root = cover_songs.data_dir() / "renders" / "test"
    files = sorted(root.glob("*.flac"))[:3]
    total_s, audio_s = 0.0, 0.0
    for f in files:
        y, sr = load(f, sample_rate=coverid.SAMPLE_RATE)
        t0 = time.perf_counter()
        coverid.features(y, sample_rate=sr)
        total_s += time.perf_counter() - t0
        audio_s += y.shape[1] / sr
    return {"feature_s_per_audio_min": 60 * total_s / max(audio_s, 1e-9), "files": len(files)}


def main(argv: Sequence[str] | None = None, *, pairs: Sequence[tuple[Path, Path]] = ()) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, help="JSON list of [original, cover] paths to add as queries")
    parser.add_argument("--out", type=Path, default=ROOT / "bench")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    pairs = list(pairs) + (json.loads(args.pairs.read_text()) if args.pairs else [])

    t0 = time.perf_counter()
    items, render_errors = rendered_items()
    extra, pair_errors = pair_items(pairs) if pairs else ([], {})
    background = coverid.load_background()
    results = evaluate(items + extra, background)
    calibration_file = cover_songs.data_dir() / "calibration.json"
    report = {
        "benchmark": "coverid",
        "commit": _commit(),
        "device": {"machine": platform.machine(), "processor": platform.processor() or platform.machine(),
                   "cpus": os.cpu_count(), "python": platform.python_version()},
        "works": len({it.work for it in items}),
        "versions": len(items),
        "versions_without_features": render_errors,
        "versions_per_work": cover_songs.SPLITS["test"][1],
        "background_songs": len(background.names),
        "pairs_added": len(extra) // 2,
        "pair_errors": pair_errors,
        "methods": results,
        "calibration": json.loads(calibration_file.read_text()) if calibration_file.is_file() else None,
        "timing": _timing(items),
        "wall_s": None,
    }
    report["wall_s"] = time.perf_counter() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "coverid.json").write_text(json.dumps(report, indent=2))
    (args.out / "coverid.md").write_text(_markdown(report))
    log.info("%s", _markdown(report))
    return report


def _markdown(r: dict) -> str:
    lines = [
        "# Cover check benchmark",
        "",
        f"{r['works']} test works x {r['versions_per_work']} versions: {r['versions']} renders with features, "
        f"{len(r['versions_without_features'])} without (too few beats tracked) "
        "(Ryan's Mammoth tunes, generated accompaniment; versions differ in instruments, tempo +/-20 %, "
        f"key, chord rhythm, bass and drum patterns). Every version queries the other {r['versions'] - 1}. "
        f"Background: {r['background_songs']} songs from other works; verdict thresholds were set on separate "
        "calibration works.",
        "",
        "| method | MAP | top-1 | mean rank of 1st cover | threshold z | TPR | FPR | AUC | ms/pair |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for m, res in r["methods"].items():
        ret, ver = res["retrieval"], res["verdict"]
        lines.append(f"| {m} | {ret['map']:.3f} | {ret['top1']:.3f} | {ret['mean_rank_first']:.2f} | "
                     f"{ver['threshold']:.2f} | {ver['tpr']:.3f} | {ver['fpr']:.3f} | {ver['auc']:.3f} | "
                     f"{res['ms_per_pair']:.3g} |")
    lines += ["", f"Feature extraction: {r['timing']['feature_s_per_audio_min']:.2f} s per minute of audio. "
              f"Commit {r['commit'] or 'unknown'}; {r['device']['cpus']} CPUs; {r['wall_s']:.0f} s in all."]
    if r["pairs_added"]:
        lines += ["", "## Added (original, cover) pairs", "", "| work | method | rank | z | verdict |",
                  "| --- | --- | --- | --- | --- |"]
        for m, res in r["methods"].items():
            for row in res.get("pairs", []):
                lines.append(f"| {row['work']} | {m} | {row['rank_of_original']} | {row['z']:.2f} | {row['verdict']} |")
    if r["pair_errors"]:
        lines += ["", "Pairs skipped: " + "; ".join(f"{k}: {v}" for k, v in r["pair_errors"].items())]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
