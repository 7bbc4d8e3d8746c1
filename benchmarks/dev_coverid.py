"""Choosing the cover check's Qmax settings by measurement (dev script, not part of `make bench`).

Data that chose: the real cover groups in ../shared/data/covers (7 works, 19 recordings, and a 10 s
and a 20 s excerpt of each as queries; a dev set) and the 30 rendered calibration works, each set
weighing half; `report` also re-runs the choice leaving each real work out, for an honest real number.
Data that reports: the rendered test works (benchmarks/bench_coverid.py), used for no choice.

    python -m benchmarks.dev_coverid extract        # beat chroma per real file and excerpt, cached in /tmp
    python -m benchmarks.dev_coverid grid           # MAP per setting on the real set
    python -m benchmarks.dev_coverid grid_rendered  # MAP per setting on the rendered calibration works
    python -m benchmarks.dev_coverid report         # the choice, and leave-one-work-out on the real set
    python -m benchmarks.dev_coverid rendered  # chosen vs old settings on the rendered calibration works
"""
from __future__ import annotations

import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

from covergen import audio, coverid

ROOT = Path(__file__).resolve().parents[1]
COVERS = ROOT.parent / "shared" / "data" / "covers"
CACHE = Path("/tmp/dev_coverid")
EXCERPTS_S = (10.0, 20.0)


def real_files() -> list[tuple[str, Path]]:
    """(work, path) of every recording in the real cover groups."""
    return [(d.name, f) for d in sorted(COVERS.iterdir()) if d.is_dir()
            for f in sorted(d.iterdir()) if f.suffix in (".mp3", ".ogg", ".flac", ".wav")]


def extract() -> None:
    CACHE.mkdir(exist_ok=True)
    for work, path in real_files():
        y, sr = audio.load(path, sample_rate=coverid.SAMPLE_RATE)
        y = audio.to_mono(y)
        clips = {"full": y}
        for s in EXCERPTS_S:
            start = int(0.3 * (len(y) - s * sr))
            clips[f"{s:g}s"] = y[start:start + int(s * sr)]
        for name, clip in clips.items():
            out = CACHE / f"{work}__{path.stem}__{name}.npy"
            if out.exists():
                continue
            t0 = time.perf_counter()
            chroma = coverid.beat_chroma(clip, sample_rate=sr, min_beats=2)
            np.save(out, chroma)
            print(f"{out.name}: {chroma.shape[1]} beats, {time.perf_counter() - t0:.1f} s", flush=True)


def load_set(kind: str = "full") -> tuple[list[str], list[str], list[np.ndarray]]:
    works, names, chromas = [], [], []
    for work, path in real_files():
        f = CACHE / f"{work}__{path.stem}__{kind}.npy"
        works.append(work)
        names.append(path.stem)
        chromas.append(np.load(f))
    return works, names, chromas


def average_precision(scores: np.ndarray, relevant: np.ndarray) -> tuple[float, bool]:
    order = np.argsort(-scores, kind="stable")
    hits = np.flatnonzero(relevant[order])
    return float(np.mean((np.arange(len(hits)) + 1) / (hits + 1))), bool(relevant[order][0])


# Settings tried. Qmax of every pair is computed once per (m, kappa, gaps) for each of the three
# tempo grids and the two best transpositions; the other choices are derived from those numbers.
CORE = {"m": (6, 9, 12), "kappa": (0.1, 0.2), "gaps": ((5.0, 0.5), (2.0, 0.5))}
DERIVED = {"transpositions": (1, 2), "tempo_octaves": (False, True), "norm": ("product", "shorter", "sqrt_shorter")}


def raw_pair(a, b, m, kappa, gaps):
    """[(len_a, len_b, best q over transpositions 1 and 2)] for the grids (a, b), (a/2, b), (a, b/2)."""
    out = []
    for g, h in ((a, b), (coverid.half_tempo(a), b), (a, coverid.half_tempo(b))):
        if min(g.shape[1], h.shape[1]) < m + 2:
            out.append(None)
            continue
        first, second = coverid._oti_candidates(g, h, 2)
        q1 = coverid._qmax_pair(g, h, m, kappa, *gaps, [first])
        q2 = max(q1, coverid._qmax_pair(g, h, m, kappa, *gaps, [second]))
        out.append((g.shape[1] - m + 1, h.shape[1] - m + 1, q1, q2))
    return out


def derive(raw, m, transpositions, tempo_octaves, norm) -> float:
    best = 0.0
    for k, rec in enumerate(raw if tempo_octaves else raw[:1]):
        if rec is None:
            continue
        na, nb, q1, q2 = rec
        q = q2 if transpositions == 2 else q1
        denom = {"product": np.sqrt(na * nb), "shorter": min(na, nb), "sqrt_shorter": np.sqrt(min(na, nb))}[norm]
        best = max(best, q / denom)
    return best


def grid() -> None:
    works, names, full = load_set("full")
    clips = {f"clip{s:g}": load_set(f"{s:g}s")[2] for s in EXCERPTS_S}
    n = len(full)
    results = {}
    for m, kappa, gaps in itertools.product(*CORE.values()):
        t0 = time.perf_counter()
        raw = {"full": {}}
        for i in range(n):
            for j in range(i + 1, n):
                raw["full"][i, j] = raw_pair(full[i], full[j], m, kappa, gaps)
        for name, qs in clips.items():
            raw[name] = {(i, j): raw_pair(qs[i], full[j], m, kappa, gaps) if qs[i].shape[1] >= m + 2 else None
                         for i in range(n) for j in range(n) if i != j}
        secs = time.perf_counter() - t0
        for transpositions, octaves, norm in itertools.product(*DERIVED.values()):
            params = {"m": m, "kappa": kappa, "gap_open": gaps[0], "gap_extend": gaps[1],
                      "transpositions": transpositions, "tempo_octaves": octaves, "norm": norm}
            row = {"compute_s": secs}
            for kind in ["full"] + list(clips):
                aps, tops = [], []
                for i in range(n):
                    s = np.full(n, -np.inf)
                    for j in range(n):
                        if j == i:
                            continue
                        rec = raw[kind].get((min(i, j), max(i, j)) if kind == "full" else (i, j))
                        s[j] = derive(rec, m, transpositions, octaves, norm) if rec is not None else 0.0
                    idx = [j for j in range(n) if j != i]
                    rel = np.array([works[j] == works[i] for j in idx])
                    ap, top = average_precision(s[idx], rel)
                    aps.append(ap)
                    tops.append(top)
                row[f"{kind}_map"], row[f"{kind}_top1"], row[f"{kind}_ap"] = float(np.mean(aps)), float(np.mean(tops)), aps
            results[json.dumps(params)] = row
            print(params, {k: round(v, 3) for k, v in row.items() if not k.endswith("_ap")}, flush=True)
        (CACHE / "grid.json").write_text(json.dumps({"works": works, "names": names, "results": results}))
    lowo(results, works)


def _calibration_index():
    """The rendered calibration works as a cover-check index, and the work of each of its songs."""
    from covergen.training import cover_songs

    root = cover_songs.data_dir()
    sets = cover_songs.render_sets(root, splits=("calibration",))
    index = coverid.load_index(coverid.build_index(root / "renders" / "calibration"))
    work_of = {r.path.name: r.work_id for r in sets["calibration"]}
    return index, [work_of[p.name] for p in index.paths]


def grid_rendered() -> None:
    """MAP of every setting on the rendered calibration works (90 renders, 3 per work)."""
    index, works = _calibration_index()
    chromas, n = index.chromas, len(works)
    results = {}
    for m, kappa, gaps in itertools.product(*CORE.values()):
        raw = {(i, j): raw_pair(chromas[i], chromas[j], m, kappa, gaps) for i in range(n) for j in range(i + 1, n)}
        for transpositions, octaves, norm in itertools.product(*DERIVED.values()):
            params = {"m": m, "kappa": kappa, "gap_open": gaps[0], "gap_extend": gaps[1],
                      "transpositions": transpositions, "tempo_octaves": octaves, "norm": norm}
            aps = []
            for i in range(n):
                idx = [j for j in range(n) if j != i]
                sc = np.array([derive(raw[min(i, j), max(i, j)], m, transpositions, octaves, norm) for j in idx])
                aps.append(average_precision(sc, np.array([works[j] == works[i] for j in idx]))[0])
            results[json.dumps(params)] = float(np.mean(aps))
            print(params, round(results[json.dumps(params)], 3), flush=True)
        (CACHE / "grid_rendered.json").write_text(json.dumps(results))


KINDS = ("full", "clip10", "clip20")


def lowo(results: dict, works: list[str], rendered: dict | None = None) -> None:
    """Leave one work out: choose the setting on the other real works' queries (full files and
    excerpts together) and, where given, the rendered calibration works' MAP (each set weighing
    the same); score the left-out work's queries with it."""
    keys = [k for k in results if rendered is None or k in rendered]
    aps = {kind: np.array([results[k][f"{kind}_ap"] for k in keys]) for kind in KINDS}
    both = np.concatenate([aps[kind] for kind in KINDS], axis=1)
    extra = np.array([rendered[k] for k in keys]) if rendered else None
    works_arr = np.array(works)
    mask_all = np.concatenate([works_arr] * len(KINDS))
    held = {kind: np.zeros(len(works)) for kind in KINDS}

    def criterion(cols):
        real = both[:, cols].mean(axis=1)
        return real if extra is None else (real + extra) / 2

    for w in sorted(set(works)):
        best = int(np.argmax(criterion(mask_all != w)))
        for kind in KINDS:
            held[kind][works_arr == w] = aps[kind][best, works_arr == w]
        print(f"leave out {w}: chose {keys[best]}")
    print("leave-one-work-out MAP on the real works: " + ", ".join(f"{k} {held[k].mean():.3f}" for k in KINDS))
    best = int(np.argmax(criterion(np.ones(len(mask_all), bool))))
    print(f"chosen on all works: {keys[best]} real (dev, in-sample): " +
          ", ".join(f"{k} {aps[k][best].mean():.3f}" for k in KINDS) +
          (f"; rendered calibration MAP {extra[best]:.3f}" if extra is not None else ""))


def report() -> None:
    data = json.loads((CACHE / "grid.json").read_text())
    rendered_file = CACHE / "grid_rendered.json"
    rendered = json.loads(rendered_file.read_text()) if rendered_file.is_file() else None
    lowo(data["results"], data["works"], rendered)


BASELINE = {"m": 12, "kappa": 0.2, "gap_open": 5.0, "gap_extend": 0.5, "transpositions": 1,
            "tempo_octaves": False, "norm": "product"}


def rendered() -> None:
    """The settings as shipped against the old ones (BASELINE) on the rendered calibration works."""
    from benchmarks.bench_coverid import retrieval

    index, works = _calibration_index()
    for name, params in (("baseline", BASELINE), ("chosen", {})):
        n = len(works)
        scores = np.full((n, n), np.nan)
        t0 = time.perf_counter()
        for i in range(n):
            for j in range(i + 1, n):
                scores[i, j] = scores[j, i] = coverid.similarity_strong(index.chromas[i], index.chromas[j], **params)
        ms = 1000 * (time.perf_counter() - t0) / (n * (n - 1) / 2)
        print(name, retrieval(scores, works), f"{ms:.2f} ms/pair", flush=True)


if __name__ == "__main__":
    {"extract": extract, "grid": grid, "report": report, "rendered": rendered,
     "grid_rendered": grid_rendered}[sys.argv[1]]()
