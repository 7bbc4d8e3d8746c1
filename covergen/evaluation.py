"""Measurement helpers shared by tests and benchmarks (not used at cover time)."""
from __future__ import annotations

import numpy as np

__all__ = ["stem_sdr_db"]


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
