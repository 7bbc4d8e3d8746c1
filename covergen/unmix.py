"""The `unmix` separator's network: spectrogram masks for {vocals, drums, bass, other}.

An Open-Unmix-style estimator (Stöter et al. 2019) made small enough to train on a 2-core
CPU: per frame a linear layer compresses the log-magnitude spectrum of the mono mix,
a 2-layer bidirectional LSTM adds context, and a linear layer gives one mask per stem and
bin. A softmax across stems makes the masks sum to one, so the stems always sum to the mix.
At inference the masks are sharpened Wiener-style (m**p / sum m**p, p = MASK_POWER: each stem's
magnitude estimate m|X| raised to p) and applied to each channel's complex STFT (phase of the mix).
covergen.separate runs it over long songs in overlapping chunks.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["MaskNet", "NetConfig", "MASK_POWER", "stft", "istft", "mix_features", "separate", "load",
           "SAMPLE_RATE", "N_FFT", "HOP"]

SAMPLE_RATE = 44100
N_FFT = 2048
HOP = 512
N_BINS = N_FFT // 2 + 1
# Chosen on dev songs (benchmarks.dev_separation, powers 1/1.5/2/3): 1.5 adds 0.4-1.2 dB to vocals,
# drums and other against the raw masks (1) and keeps bass; 2 and 3 start to cost bass and other.
MASK_POWER = 1.5


def NetConfig(**overrides) -> dict:  # noqa: N802 - a plain dict so it saves into checkpoints as data
    """Sizes of MaskNet. 3.1 M parameters by default (hidden 320 beat 192 on every dev set but demo-dev bass)."""
    return {"n_bins": N_BINS, "n_stems": 4, "hidden": 320, "lstm_layers": 2} | overrides


def stft(y: torch.Tensor) -> torch.Tensor:
    """Complex STFT [shape=(..., bins, frames)] of y [shape=(..., samples)]."""
    window = torch.hann_window(N_FFT, device=y.device)
    shape = y.shape
    spec = torch.stft(y.reshape(-1, shape[-1]), N_FFT, HOP, window=window, return_complex=True)
    return spec.reshape(*shape[:-1], *spec.shape[-2:])


def istft(spec: torch.Tensor, length: int) -> torch.Tensor:
    window = torch.hann_window(N_FFT, device=spec.device)
    shape = spec.shape
    y = torch.istft(spec.reshape(-1, *shape[-2:]), N_FFT, HOP, window=window, length=length)
    return y.reshape(*shape[:-2], length)


def mix_features(mix_spec: torch.Tensor) -> torch.Tensor:
    """Log magnitude [shape=(batch, frames, bins)] of a mono mix STFT [shape=(batch, bins, frames)].

    The caller scales the mix to unit RMS first, so the features do not depend on playback level.
    """
    return torch.log(mix_spec.abs() + 1e-3).transpose(1, 2)


class MaskNet(nn.Module):
    def __init__(self, config: dict, sources: Sequence[str]):
        super().__init__()
        if len(sources) != config["n_stems"]:
            raise ValueError(f"{len(sources)} source names for {config['n_stems']} stems")
        self.config = dict(config)
        self.sources = tuple(sources)  # stem names in mask order (as Demucs models have), saved in the checkpoint meta
        bins, hidden, stems = config["n_bins"], config["hidden"], config["n_stems"]
        self.input_shift = nn.Parameter(torch.zeros(bins))
        self.input_scale = nn.Parameter(torch.ones(bins))
        self.encode = nn.Sequential(nn.Linear(bins, hidden), nn.LayerNorm(hidden), nn.Tanh())
        self.lstm = nn.LSTM(hidden, hidden // 2, num_layers=config["lstm_layers"], batch_first=True,
                            bidirectional=True)
        self.decode = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.LayerNorm(hidden), nn.ReLU(),
                                    nn.Linear(hidden, stems * bins))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features [shape=(batch, frames, bins)] -> masks [shape=(batch, stems, bins, frames)], summing to 1."""
        batch, frames, bins = features.shape
        x = self.encode((features + self.input_shift) * self.input_scale)
        context, _ = self.lstm(x)
        logits = self.decode(torch.cat([x, context], dim=-1)).reshape(batch, frames, -1, bins)
        return torch.softmax(logits, dim=2).permute(0, 2, 3, 1)


def separate(model: MaskNet, y: np.ndarray, *, mask_power: float = MASK_POWER) -> dict[str, np.ndarray]:
    """Stems {name: [shape=(channels, samples)]} of y [shape=(channels, samples)] at 44.1 kHz, in one pass,
    named by model.sources."""
    with torch.inference_mode():
        wav = torch.from_numpy(y)
        scale = wav.pow(2).mean().sqrt().clamp_min(1e-5)
        spec = stft(wav / scale)                                   # (channels, bins, frames)
        masks = model(mix_features(spec.mean(0, keepdim=True)))[0] ** mask_power  # (stems, bins, frames)
        masks = masks / masks.sum(0, keepdim=True).clamp_min(1e-12)
        stems = (istft(masks[:, None] * spec[None], y.shape[-1]) * scale).numpy()
    return {name: stems[i] for i, name in enumerate(model.sources)}


def load(path: Path) -> tuple[MaskNet, dict]:
    """MaskNet and its metadata from a covergen separator checkpoint."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model = MaskNet(checkpoint["config"], checkpoint["meta"]["stems"])
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()
    return model, checkpoint.get("meta", {})
