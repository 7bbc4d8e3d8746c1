"""Dev songs for choosing the `unmix` recipe: scored here, never reported as quality.

The benchmark's songs (demo_song seeds >= 1000 and the real multitrack) stay unseen while a
recipe is chosen; these stand in for them: demo_song arrangements with seeds 500-504,
band-voiced songs (separation_data.rock_song) with seeds 300-305, and songs whose drums play
on recorded kits never used in training (separation_data.kit_song on drumkits.DEV_KITS,
seeds 600-605), none used in training.

    python -m benchmarks.dev_separation [CHECKPOINT ...]   # a training checkpoint or an exported model
    python -m benchmarks.dev_separation --mask-power 1 1.5 2   # compare inference mask sharpening
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
import torch

from covergen import registry, unmix
from benchmarks.evaluation import stem_sdr_db
from covergen.separate import STEMS
from covergen.training import drumkits, separation_data
from covergen.training.demo_song import held_out_songs, render_stems


def _rendered(kind: str, seed: int, render) -> dict[str, np.ndarray]:
    """The song's stems, rendered once into data/separation-dev (gitignored)."""
    file = separation_data.data_dir().parent / "separation-dev" / f"{kind}-{seed}.npy"
    if not file.is_file():
        file.parent.mkdir(parents=True, exist_ok=True)
        np.save(file, np.stack([render()[s] for s in STEMS]))
    return dict(zip(STEMS, np.load(file)))


def dev_sets():
    """Yield (set, stems [shape=(2, samples)] at 44.1 kHz)."""
    for song in held_out_songs(5, first_seed=500):
        yield "demo-dev", _rendered("demo-dev", song["seed"], lambda: render_stems(
            sample_rate=44100, seed=song["seed"], bars=12, tempo_bpm=song["tempo_bpm"], programs=song["programs"]))
    for seed in separation_data.ROCK_DEV_SEEDS:
        yield "rock-dev", _rendered("rock-dev", seed, lambda: _stereo(separation_data.rock_song(seed)))
    for seed in separation_data.KIT_DEV_SEEDS:
        yield "kit-dev", _rendered("kit-dev", seed, lambda: _stereo(separation_data.kit_song(seed, drumkits.DEV_KITS)))


def _stereo(stems: np.ndarray) -> dict[str, np.ndarray]:
    """separation_data's mono float16 stems [shape=(4, samples)] -> {stem: float32 [shape=(2, samples)]}."""
    return {k: np.stack([v, v]) for k, v in zip(STEMS, stems.astype(np.float32))}


def load_any(path: Path) -> unmix.MaskNet:
    """An exported model (covergen.unmix.load) or a training checkpoint of train_separator."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    if "state_dict" in state:
        return unmix.load(path)[0]
    width = state["model"]["encode.0.weight"].shape[0]  # early checkpoints saved no config
    model = unmix.MaskNet(state.get("config", unmix.NetConfig(hidden=width)), STEMS)
    model.load_state_dict(state["model"])
    return model.eval()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="*", type=Path)
    parser.add_argument("--mask-power", nargs="+", type=float, default=[unmix.MASK_POWER],
                        help=f"inference mask sharpening to score (default: {unmix.MASK_POWER}, what separate uses)")
    args = parser.parse_args(argv)
    models = {"shipped": unmix.load(registry.path("separator-unmix"))[0]}
    models |= {p.name: load_any(p) for p in args.checkpoints}
    scores: dict[tuple[str, str], list[dict]] = {}
    for kind, stems in dev_sets():
        mix = sum(stems.values())
        for name, model in models.items():
            for power in args.mask_power:
                estimate = unmix.separate(model, mix, mask_power=power)
                scores.setdefault((kind, f"{name} p={power:g}"), []).append(stem_sdr_db(stems, estimate))
    print("| set | model | " + " | ".join(STEMS) + " |\n|---|---|" + "---|" * len(STEMS))
    for (kind, name), rows in scores.items():
        cells = " | ".join(f"{statistics.median(r[s] for r in rows):.1f}" for s in STEMS)
        print(f"| {kind} | {name} | {cells} |")


if __name__ == "__main__":
    main()
