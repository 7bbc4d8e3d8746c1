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


COVERS = ROOT.parent / "shared" / "data" / "covers"
EXCERPTS_S = (10.0, 20.0)  # excerpt queries, cut at 30 % of each recording


def real_items(covers: Path = COVERS) -> tuple[list[Item], list[Item], dict[str, str]]:
    """The real cover groups (one folder per work): (full recordings, 10 and 20 s excerpts of each, errors).

    Features are cached under data/coverid/ (an index of the folder and an excerpt file), never
    beside the recordings. An excerpt's `work` is its work and its `name` names its recording.
    """
    from covergen.audio import load, to_mono

    cache = cover_songs.data_dir()
    cache.mkdir(parents=True, exist_ok=True)
    index = coverid.load_index(coverid.build_index(covers, cache / "real-covers-index.npz"))
    full = [Item(work=p.parent.name, name=p.name, features=index.features[i], chroma=index.chromas[i], source="real")
            for i, p in enumerate(index.paths)]
    errors = {p.name: msg for p, msg in index.errors.items()}
    excerpt_file = cache / "real-covers-excerpts.npz"
    key = json.dumps({"config": coverid.FEATURE_CONFIG, "files": [[str(p), p.stat().st_size] for p in index.paths],
                      "excerpts": EXCERPTS_S})
    cached = {}
    if excerpt_file.is_file():
        with np.load(excerpt_file) as z:
            if str(z["key"]) == key:
                cached = {n: z[n] for n in z.files if n != "key"}
    excerpts = []
    for p, it in zip(index.paths, full):
        y = None
        for s in EXCERPTS_S:
            name = f"{s:g}s:{it.work}/{it.name}"
            if name not in cached:
                if y is None:
                    y = to_mono(load(p, sample_rate=coverid.SAMPLE_RATE)[0])
                start = int(0.3 * (len(y) - s * coverid.SAMPLE_RATE))
                try:
                    cached[name] = coverid.beat_chroma(y[start:start + int(s * coverid.SAMPLE_RATE)],
                                                       sample_rate=coverid.SAMPLE_RATE)
                except CovergenError as err:
                    errors[name] = str(err)
                    cached[name] = np.zeros((12, 0), np.float32)
            if cached[name].shape[1]:
                excerpts.append(Item(work=it.work, name=name, features=np.zeros(0), chroma=cached[name],
                                     source=f"excerpt{s:g}"))
    np.savez_compressed(excerpt_file, key=np.array(key), **cached)
    return full, excerpts, errors


def evaluate_real(full: list[Item], excerpts: list[Item], background: coverid.Background) -> dict:
    """Real groups: every recording queries the others; every excerpt queries the full recordings
    other than its own. MAP, top-1, the verdict's rates, time per pair and per library query."""
    works = [it.work for it in full]
    out: dict = {}
    t0 = time.perf_counter()
    scores = score_matrix(full, "qmax")
    n_pairs = len(full) * (len(full) - 1) / 2
    ms_pair = 1000 * (time.perf_counter() - t0) / max(1.0, n_pairs)
    bg = [coverid._background_scores(it.chroma, background, "qmax") for it in full]
    out["full"] = {"retrieval": retrieval(scores, works),
                   "verdict": verdicts(scores, works, bg, float(background.thresholds["qmax"])),
                   "ms_per_pair": ms_pair}
    long_enough = [i for i, it in enumerate(full) if np.linalg.norm(it.features) > 0]
    ftm = score_matrix([full[i] for i in long_enough], "2dftm")
    out["full_2dftm"] = {"retrieval": retrieval(ftm, [works[i] for i in long_enough])}
    for s in EXCERPTS_S:
        queries = [q for q in excerpts if q.source == f"excerpt{s:g}"]
        aps, top1, z_pos, z_neg = [], [], [], []
        t0 = time.perf_counter()
        for q in queries:
            own = q.name.split(":", 1)[1]
            refs = [it for it in full if f"{it.work}/{it.name}" != own]
            sc = np.array([coverid.similarity_strong(q.chroma, r.chroma) for r in refs])
            rel = np.array([r.work == q.work for r in refs])
            order = np.argsort(-sc, kind="stable")
            hits = np.flatnonzero(rel[order])
            aps.append(float(np.mean((np.arange(len(hits)) + 1) / (hits + 1))))
            top1.append(bool(rel[order][0]))
            b = coverid._background_scores(q.chroma, background, "qmax")
            z = (sc - float(np.mean(b))) / max(float(np.std(b)), 1e-9)
            z_pos += list(z[rel])
            z_neg += list(z[~rel])
        secs = time.perf_counter() - t0
        t = float(background.thresholds["qmax"])
        out[f"excerpt{s:g}"] = {
            "retrieval": {"map": float(np.mean(aps)), "top1": float(np.mean(top1)), "queries": len(queries)},
            "verdict": {"threshold": t, "tpr": float(np.mean(np.array(z_pos) >= t)),
                        "fpr": float(np.mean(np.array(z_neg) >= t)),
                        "cover_pairs": len(z_pos), "other_pairs": len(z_neg)},
            "s_per_library_query": secs / max(1, len(queries)),  # ranking against the other recordings and the background
        }
    return out


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
    real = None
    if COVERS.is_dir():
        full, excerpts, real_errors = real_items()
        real = {"works": len({it.work for it in full}), "recordings": len(full), "errors": real_errors,
                **evaluate_real(full, excerpts, background)}
    else:
        log.warning("no real cover groups at %s: the real-set rows are left out", COVERS)
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
        "real": real,
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
        "rendered calibration works and the real cover groups below; these test works were used for no choice.",
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
    if r.get("real"):
        lines += _real_markdown(r["real"])
    if r["pairs_added"]:
        lines += ["", "## Added (original, cover) pairs", "", "| work | method | rank | z | verdict |",
                  "| --- | --- | --- | --- | --- |"]
        for m, res in r["methods"].items():
            for row in res.get("pairs", []):
                lines.append(f"| {row['work']} | {m} | {row['rank_of_original']} | {row['z']:.2f} | {row['verdict']} |")
    if r["pair_errors"]:
        lines += ["", "Pairs skipped: " + "; ".join(f"{k}: {v}" for k, v in r["pair_errors"].items())]
    return "\n".join(lines) + "\n"


def _real_markdown(real: dict) -> list[str]:
    full, ftm = real["full"], real["full_2dftm"]
    lines = ["", "## Real cover groups (../shared/data/covers: a dev set)", "",
             f"{real['works']} works, {real['recordings']} real recordings (anthems, carols, Clair de lune; "
             "see covers/README.md). A dev set: the Qmax settings were chosen on it and on the rendered calibration "
             "works (`benchmarks/dev_coverid.py`, which also reports leave-one-work-out), and the verdict threshold "
             "was set on it and on those works, so these numbers are in-sample. Full recordings query the other recordings; "
             "10 s and 20 s excerpts (cut at 30 % of each recording) query the full recordings other than their own.",
             "", "| queries | method | n | MAP | top-1 | threshold z | TPR | FPR | ms/pair | s/library query |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
             f"| full recordings | qmax | {full['retrieval']['queries']} | {full['retrieval']['map']:.3f} | "
             f"{full['retrieval']['top1']:.3f} | {full['verdict']['threshold']:.2f} | {full['verdict']['tpr']:.3f} | "
             f"{full['verdict']['fpr']:.3f} | {full['ms_per_pair']:.3g} | |",
             f"| full recordings | 2dftm | {ftm['retrieval']['queries']} | {ftm['retrieval']['map']:.3f} | "
             f"{ftm['retrieval']['top1']:.3f} | | | | | |"]
    for s in EXCERPTS_S:
        e = real[f"excerpt{s:g}"]
        lines.append(f"| {s:g} s excerpts | qmax | {e['retrieval']['queries']} | {e['retrieval']['map']:.3f} | "
                     f"{e['retrieval']['top1']:.3f} | {e['verdict']['threshold']:.2f} | {e['verdict']['tpr']:.3f} | "
                     f"{e['verdict']['fpr']:.3f} | | {e['s_per_library_query']:.2f} |")
    lines += ["", f"A library query ranks one excerpt against the {real['recordings'] - 1} other recordings and "
              "scores it against the background songs for its z."]
    if real["errors"]:
        lines += ["", "Without an answer: " + "; ".join(f"{k}: {v}" for k, v in real["errors"].items())]
    return lines


if __name__ == "__main__":
    main()
