"""Choose how `spleeter` splits its accompaniment (separate.ACCOMPANIMENT_SPLIT): scored on dev songs.

Dev songs: the first N of each dev family of benchmarks.dev_separation (demo-dev, rock-dev, kit-dev;
never used in training) and the shared real multitracks (../shared/data/multitrack; every Music
Delta track is in MUSDB18's train set, which Spleeter and htdemucs have seen). Spleeter's vocals
are computed once per song; each split then divides the same accompaniment. Prints per-stem SDR
(mix/4 floor) and the median over each family.

    python -m benchmarks.dev_spleeter [--per-family N]
"""
from __future__ import annotations

import argparse
import statistics

import numpy as np

from covergen import audio, separate, spleeter, unmix
from benchmarks.evaluation import SHARED_DATA, stem_sdr_db

from .dev_separation import dev_sets


def _songs(per_family: int):
    for folder in sorted((SHARED_DATA / "multitrack").glob("*")):
        yield "real", folder.name, {s: audio.load(folder / f"{s}.flac", allow_silence=True)[0] for s in separate.STEMS}
    taken: dict[str, int] = {}
    for kind, stems in dev_sets():
        taken[kind] = taken.get(kind, 0) + 1
        if taken[kind] <= per_family:
            yield kind, f"{kind}-{taken[kind]}", stems


def _split(acc: np.ndarray, how: str) -> dict[str, np.ndarray]:
    if how == "dsp":
        return separate._dsp_accompaniment(acc)
    parts = unmix.separate(separate._load_unmix()[0], acc)
    return {"drums": parts["drums"], "bass": parts["bass"], "other": acc - parts["drums"] - parts["bass"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-family", type=int, default=2, help="dev songs per rendered family (default 2)")
    args = parser.parse_args(argv)
    nets = separate._load_spleeter()[0]
    scores: dict[tuple[str, str], list[dict]] = {}
    print("| set | song | split | vocals | drums | bass | other |\n|---|---|---|---|---|---|---|")
    for kind, song, stems in _songs(args.per_family):
        mix = sum(stems.values())
        floor = stem_sdr_db(stems, {k: mix / 4 for k in stems})
        vocals, acc = spleeter.separate_vocals(nets, mix)
        for how in separate.ACCOMPANIMENT_SPLITS:
            sdr = stem_sdr_db(stems, {"vocals": vocals, **_split(acc, how)})
            scores.setdefault((kind, how), []).append({s: sdr[s] - floor[s] for s in sdr} | {"sdr": sdr})
            cells = " | ".join(f"{sdr[s]:.1f} ({floor[s]:.1f})" for s in separate.STEMS)
            print(f"| {kind} | {song} | {how} | {cells} |", flush=True)
    print("\nMedian SDR over the family (and its worst margin over the floor):\n")
    for (kind, how), rows in scores.items():
        cells = ", ".join(f"{s} {statistics.median(r['sdr'][s] for r in rows):.1f} "
                          f"(worst margin {min(r[s] for r in rows):+.1f})" for s in separate.STEMS)
        print(f"- {kind} / {how}: {cells}")


if __name__ == "__main__":
    main()
