"""Measurement helpers shared by tests, benchmarks and the training recipes; never used at cover time, so they
live beside the benchmarks, outside the covergen package."""
from __future__ import annotations

import statistics
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

__all__ = ["stem_sdr_db", "separation_sets", "score_separator", "summarise_separation", "untrained_demucs_repo",
           "HTDEMUCS_ARCHITECTURE"]

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # ../shared/data of a checkout


def stem_sdr_db(references: dict[str, np.ndarray], estimates: dict[str, np.ndarray]) -> dict[str, float]:
    """BSS-eval SDR (dB) per stem, stems in a fixed order, averaged over channels.

    Uses fast_bss_eval's torch backend (its numpy backend fails with numpy 2) and
    `compute_permutation=False`: `fast_bss_eval.sdr()` silently matches estimates to
    references by best permutation, which would flatter a separator that swaps stems.
    Each array: [shape=(channels, samples)], same shapes.
    """
    import torch
    from fast_bss_eval import bss_eval_sources

    names = list(references)
    n = min(min(r.shape[-1] for r in references.values()), min(estimates[k].shape[-1] for k in names))
    channels = references[names[0]].shape[0]
    per_channel = []
    for c in range(channels):
        ref = torch.from_numpy(np.stack([references[k][c, :n] for k in names]).astype(np.float64))
        est = torch.from_numpy(np.stack([estimates[k][c, :n] for k in names]).astype(np.float64))
        sdr = bss_eval_sources(ref, est, compute_permutation=False, load_diag=1e-9)[0]
        per_channel.append(sdr.numpy())
    mean = np.mean(per_channel, axis=0)
    return {k: float(v) for k, v in zip(names, mean)}


def separation_sets(shared_data: Path = SHARED_DATA, kinds: tuple[str, ...] = ("rendered", "real")):
    """Yield (set, song, stems) to measure separators on, stems [shape=(2, samples)] at 44.1 kHz.

    "rendered": the six held-out songs of covergen.training.demo_song.held_out_songs (seeds >= 1000,
    never used in training or tuning); "real": every multitrack in shared/data/multitrack (80s Rock,
    Britpop, Country1, Grunge: Music Delta songs of MUSDB18's train set), if present.
    """
    from covergen import audio
    from covergen.separate import STEMS
    from covergen.training.demo_song import held_out_songs, render_stems

    for song in held_out_songs(6) if "rendered" in kinds else []:
        stems = render_stems(sample_rate=44100, seed=song["seed"], bars=12, tempo_bpm=song["tempo_bpm"],
                             programs=song["programs"])
        yield "rendered", f"seed {song['seed']}", stems
    for folder in sorted((shared_data / "multitrack").glob("*/")) if "real" in kinds else []:
        if (folder / "mixture.flac").is_file():
            yield "real", folder.name, {s: audio.load(folder / f"{s}.flac", allow_silence=True)[0] for s in STEMS}


def score_separator(separator: str, sets) -> list[dict]:
    """Per song: SDR per stem of `separator`, the mix/4 floor, and the real-time factor."""
    from covergen import separate

    rows = []
    for kind, name, stems in sets:
        mix = sum(stems.values())
        t0 = time.perf_counter()
        est, _ = separate.separate(mix, sample_rate=44100, separator=separator, use_cache=False)
        seconds = time.perf_counter() - t0
        rows.append({"set": kind, "song": name, "separator": separator, "sdr_db": stem_sdr_db(stems, est),
                     "floor_db": stem_sdr_db(stems, {k: mix / 4 for k in stems}),
                     "rtf": seconds / (mix.shape[1] / 44100)})
    return rows


def summarise_separation(rows: list[dict]) -> dict:
    """"set/separator" -> per-stem median SDR and floor, and the median real-time factor."""
    summary = {}
    for key in dict.fromkeys(f"{r['set']}/{r['separator']}" for r in rows):
        sel = [r for r in rows if f"{r['set']}/{r['separator']}" == key]
        summary[key] = {s: {"median_sdr_db": statistics.median(r["sdr_db"][s] for r in sel),
                            "median_floor_db": statistics.median(r["floor_db"][s] for r in sel)}
                        for s in sel[0]["sdr_db"]} | {"median_rtf": statistics.median(r["rtf"] for r in sel)}
    return summary


# The released htdemucs (signature 955717e8, demucs/grids/mmi.py): these sizes give its 41,984,456 parameters.
HTDEMUCS_ARCHITECTURE = {"channels": 48, "depth": 4, "dconv_mode": 3, "t_layers": 5, "t_dropout": 0.02,
                         "bottom_channels": 512, "segment": Fraction(39, 5)}


def untrained_demucs_repo(root: Path, *, seed: int = 0, **architecture) -> Path:
    """A local Demucs model folder for `get_model("htdemucs", repo=root)` holding an untrained HTDemucs.

    Written in Demucs's own checkpoint format, so covergen's real loading and chunking code runs
    without downloadable weights: tests use a tiny one; the benchmark uses HTDEMUCS_ARCHITECTURE to
    measure the released model's memory and speed (which do not depend on the weight values).
    """
    import torch
    import yaml
    from demucs.htdemucs import HTDemucs
    from demucs.states import get_state

    from covergen.separate import DEMUCS_MODEL, STEMS

    torch.manual_seed(seed)
    model = HTDemucs(sources=list(STEMS), **architecture)
    args, kwargs = model._init_args_kwargs
    package = {"klass": HTDemucs, "args": args, "kwargs": kwargs, "state": get_state(model, None, half=False),
               "training_args": {}}
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    torch.save(package, root / "0123abcd.th")
    (root / f"{DEMUCS_MODEL}.yaml").write_text(yaml.safe_dump({"models": ["0123abcd"]}))
    return root
