"""Genre classifier: held-out macro-F1 per model on both splits, gain sensitivity, extraction speed.

Each model family gets its setting from 5-fold CV on the training part (as the training recipe
does) and is scored once on the held-out 20% of the random and the blocked split (seed 0).
One split of 200 clips is noisy (+/- 0.04), so every family's chosen setting is also refit on
10 split seeds. Baselines on the raw 57 table columns: the published pipeline's random forest
and the shipped SVM setting. Speed: seconds of feature extraction per 30 s of audio, on one core.

    python -m benchmarks.bench_genre        # writes bench/genre.json and bench/genre.md
"""
from __future__ import annotations

import logging
import statistics
import time

import numpy as np

from covergen import audio, genre
from covergen.training import train_genre

from .common import SHARED, write

log = logging.getLogger(__name__)

SEEDS = range(10)
SPEED_CLIPS = ["Kevin_MacLeod_-_Vibe_Ace.ogg", "Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.ogg",
               "442789__lena-orsa__happy-music-pistachio-ice-cream-ragtime.ogg"]


def _raw_baselines(table, shipped_params: dict) -> dict:
    """Random forest as published (500 trees, defaults) and the shipped SVM setting, on the raw columns."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    makers = {
        "published_random_forest (raw 57)": lambda: RandomForestClassifier(n_estimators=500, random_state=0, n_jobs=1),
        "svm_rbf shipped setting (raw 57)": lambda: Pipeline([
            ("scale", StandardScaler()),
            ("model", train_genre._svm().set_params(estimator__C=shipped_params["C"],
                                                     estimator__gamma=shipped_params["gamma"]))]),
    }
    out = {}
    for name, make in makers.items():
        out[name] = {}
        for kind in train_genre.SPLITS:
            scores = []
            for seed in SEEDS:
                train_idx, test_idx = train_genre.split(table, kind=kind, seed=seed)
                est = make().fit(table.x[train_idx], table.labels[train_idx])
                scores.append(train_genre.held_out(est, table, test_idx, feature_set="gtzan57")["macro_f1"])
            out[name][kind] = {"held_out_f1": scores[0], "repeated_mean": float(np.mean(scores)),
                               "repeated_std": float(np.std(scores))}
    return out


def _families(table) -> dict:
    out: dict = {}
    for kind in train_genre.SPLITS:
        train_idx, test_idx = train_genre.split(table, kind=kind, seed=train_genre.SEED)
        chosen = train_genre.select(table, train_idx, kind=kind)
        best = max(chosen, key=lambda f: chosen[f]["cv_f1_mean"])
        for family, found in chosen.items():
            scores = train_genre.repeated(family, found["params"], table, kind=kind, seeds=SEEDS)
            out.setdefault(family, {})[kind] = {
                "params": found["params"], "cv_f1_mean": found["cv_f1_mean"], "cv_f1_std": found["cv_f1_std"],
                "held_out_f1": train_genre.held_out(found["estimator"], table, test_idx)["macro_f1"],
                "repeated_mean": float(np.mean(scores)), "repeated_std": float(np.std(scores)),
                "chosen_by_cv": family == best}
    return out


def _clips() -> list[tuple[str, np.ndarray]]:
    clips = []
    for name in SPEED_CLIPS:
        path = SHARED / "real" / name
        if path.exists():
            y, sr = audio.load(path, sample_rate=genre.SAMPLE_RATE)
            clips.append((name, y[:, :int(genre.SEGMENT_S * sr)]))
    if not clips:  # no ../shared: a seeded noise clip still times the extractor
        rng = np.random.default_rng(0)
        clips.append(("noise", (0.1 * rng.standard_normal((1, int(genre.SEGMENT_S * genre.SAMPLE_RATE))))
                      .astype(np.float32)))
    return clips


def _speed(clips) -> dict:
    per_clip = {}
    for name, y in clips:
        genre.features(y, sample_rate=genre.SAMPLE_RATE)  # warm-up (imports, FFT plans)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            genre.features(y, sample_rate=genre.SAMPLE_RATE)
            times.append(time.perf_counter() - start)
        per_clip[name] = min(times) * genre.SEGMENT_S / (y.shape[1] / genre.SAMPLE_RATE)
    bundle = genre.load_model()
    row = genre.features(clips[0][1], sample_rate=genre.SAMPLE_RATE)
    start = time.perf_counter()
    for _ in range(20):
        bundle["model"].predict_proba(genre.model_inputs([row], feature_set=bundle["feature_set"]))
    return {"features_s_per_30s": per_clip, "median_features_s_per_30s": statistics.median(per_clip.values()),
            "model_s_per_segment": (time.perf_counter() - start) / 20}


def _gain(clips, shipped_params: dict, table) -> dict:
    """Largest probability change when the same clip is played 12 dB quieter."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    train_idx, _ = train_genre.split(table, kind=train_genre.SHIPPED_SPLIT, seed=train_genre.SEED)
    raw = Pipeline([("scale", StandardScaler()),
                    ("model", train_genre._svm().set_params(estimator__C=shipped_params["C"],
                                                             estimator__gamma=shipped_params["gamma"]))])
    raw.fit(table.x[train_idx], table.labels[train_idx])
    shipped = genre.load_model()
    out = {}
    for name, y in clips:
        rows = [genre.features(y, sample_rate=genre.SAMPLE_RATE),
                genre.features(y * 10 ** (-12 / 20), sample_rate=genre.SAMPLE_RATE)]
        p_raw = raw.predict_proba(genre.model_inputs(rows, feature_set="gtzan57"))
        p_free = shipped["model"].predict_proba(genre.model_inputs(rows, feature_set=shipped["feature_set"]))
        out[name] = {"raw57_max_abs_change": float(np.abs(p_raw[0] - p_raw[1]).max()),
                     "raw57_top": [str(raw.classes_[p.argmax()]) for p in p_raw],
                     "shipped_max_abs_change": float(np.abs(p_free[0] - p_free[1]).max())}
    return out


def main() -> dict:
    from threadpoolctl import threadpool_limits

    table = train_genre.load_table()
    shipped = genre.load_model()
    with threadpool_limits(1):
        families = _families(table)
        baselines = _raw_baselines(table, shipped["params"])
        clips = _clips()
        speed = _speed(clips)
        gain = _gain(clips, shipped["params"], table)
    data = {"seed": train_genre.SEED, "repeat_seeds": len(SEEDS), "feature_set": train_genre.FEATURE_SET,
            "shipped": {"family": shipped["family"], "params": shipped["params"], "split": shipped["split"],
                        "held_out_macro_f1": shipped["held_out"]["macro_f1"]},
            "families": families, "baselines": baselines, "speed": speed, "gain_minus_12db": gain}
    write("genre", data, _markdown(data))
    return data


def _markdown(data: dict) -> str:
    lines = ["## Genre classifier (GTZAN features, `genre-gtzan`)", "",
             f"Held-out macro-F1 on 20% of GTZAN (seed {data['seed']}), and mean +/- sd of the same setting refit "
             f"over {data['repeat_seeds']} split seeds. *random*: clips at random; *blocked*: blocks of 10 "
             "consecutive clips (artist/album) kept together. Settings from 5-fold CV on the training part "
             f"(features `{data['feature_set']}`: gain-free, log variances).", "",
             "| model | random held-out | random mean +/- sd | blocked held-out | blocked mean +/- sd |",
             "| --- | --- | --- | --- | --- |"]
    rows = list(data["families"].items()) + list(data["baselines"].items())
    for name, res in rows:
        mark = " (CV pick)" if res["blocked"].get("chosen_by_cv") else ""
        cells = [f"{res[k]['held_out_f1']:.3f} | {res[k]['repeated_mean']:.3f} +/- {res[k]['repeated_std']:.3f}"
                 for k in ("random", "blocked")]
        lines.append(f"| {name}{mark} | {cells[0]} | {cells[1]} |")
    sh = data["shipped"]
    speed = data["speed"]
    lines += ["", f"Shipped: {sh['family']} {sh['params']}, fit on the {sh['split']['kind']} split's training part: "
                  f"held-out macro-F1 {sh['held_out_macro_f1']:.3f}. Published pipeline: RF, F1 0.77 (random split).",
              "", f"Feature extraction: median {speed['median_features_s_per_30s']:.2f} s per 30 s of audio "
                  f"(one core; " + ", ".join(f"{k[:24]} {v:.2f}" for k, v in speed["features_s_per_30s"].items())
              + f"); model {1000 * speed['model_s_per_segment']:.1f} ms per segment.", "",
              "Gain -12 dB, largest change of any genre probability: "
              + "; ".join(f"{k[:24]}: raw-57 SVM {v['raw57_max_abs_change']:.3f} (top {v['raw57_top'][0]} -> "
                          f"{v['raw57_top'][1]}), shipped {v['shipped_max_abs_change']:.1e}"
                          for k, v in data["gain_minus_12db"].items()), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main()
