"""The DDSP decoder (solo-instrument autoencoder without z) and its learned reverb.

f0 and loudness go through small MLPs, a GRU gives them memory (attack, decay,
vibrato), and a final MLP predicts the synth controls. Sizes are cut down from
DDSP's (GRU 512) so that an instrument trains in minutes on a 2-core CPU.
"""
from __future__ import annotations

import torch
from torch import nn

from . import synth
from .features import SILENT_DB

__all__ = ["DecoderConfig", "TimbreDecoder", "Reverb", "spectral_loss", "FFT_SIZES", "n_parameters"]

FFT_SIZES = (2048, 1024, 512, 256, 128, 64)


def DecoderConfig(**overrides) -> dict:  # noqa: N802 - a plain dict so it pickles into checkpoints as data
    """Default architecture; saved in every checkpoint so old files rebuild the same net."""
    cfg = {"sample_rate": 16000, "hop_samples": 160, "hidden": 128, "gru": 160,
           "n_harmonics": 60, "n_noise_bands": 65, "reverb_samples": 800}
    unknown = set(overrides) - set(cfg)
    if unknown:
        raise ValueError(f"unknown decoder settings {sorted(unknown)}")
    cfg.update(overrides)
    return cfg


def _mlp(n_in: int, hidden: int, layers: int = 2) -> nn.Sequential:
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(n_in if i == 0 else hidden, hidden), nn.LayerNorm(hidden), nn.LeakyReLU(0.1)]
    return nn.Sequential(*mods)


class Reverb(nn.Module):
    """A learned impulse response added to the dry signal: the body resonance the SoundFont bakes in.

    50 ms by default: longer learned tails ring each note into the next and blur pitch changes.
    """

    def __init__(self, n_samples: int, *, sample_rate: int):
        super().__init__()
        t = torch.arange(n_samples) / sample_rate
        g = torch.Generator().manual_seed(0)
        self.impulse_response = nn.Parameter((torch.rand(n_samples, generator=g) * 2 - 1) * 1e-3 * torch.exp(-t / 0.05))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        ir = torch.cat([self.impulse_response.new_zeros(1), self.impulse_response[1:]])  # keep the dry tap fixed
        return audio + synth.fft_convolve(audio, ir)


class TimbreDecoder(nn.Module):
    """(f0_hz, loudness_db) [shape=(batch, frames)] -> audio [shape=(batch, frames * hop_samples)]."""

    def __init__(self, config: dict):
        super().__init__()
        self.config = dict(config)
        h, g = config["hidden"], config["gru"]
        self.register_buffer("sample_rate", torch.tensor(config["sample_rate"]), persistent=True)
        self.register_buffer("hop_samples", torch.tensor(config["hop_samples"]), persistent=True)
        self.f0_mlp = _mlp(1, h)
        self.loudness_mlp = _mlp(1, h)
        self.gru = nn.GRU(2 * h, g, batch_first=True)
        self.out_mlp = _mlp(g + 2 * h, h)
        self.n_harmonics, self.n_bands = config["n_harmonics"], config["n_noise_bands"]
        self.proj = nn.Linear(h, 1 + self.n_harmonics + self.n_bands)
        self.reverb = Reverb(config["reverb_samples"], sample_rate=config["sample_rate"])

    @staticmethod
    def scale_inputs(f0_hz: torch.Tensor, loudness_db: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both inputs to about [0, 1]: MIDI pitch / 127 and dB above the silence floor."""
        midi = 69.0 + 12.0 * torch.log2(f0_hz.clamp_min(1.0) / 440.0)
        return (midi / 127.0)[..., None], ((loudness_db - SILENT_DB) / -SILENT_DB)[..., None]

    def controls(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor,
                 state: torch.Tensor | None = None) -> tuple[dict, torch.Tensor]:
        """Synth controls (amplitude, harmonic_distribution, noise_magnitudes) and the GRU state."""
        f0_in, ld_in = self.scale_inputs(f0_hz, loudness_db)
        a, b = self.f0_mlp(f0_in), self.loudness_mlp(ld_in)
        x, state = self.gru(torch.cat([a, b], -1), state)
        x = self.proj(self.out_mlp(torch.cat([x, a, b], -1)))
        amp, dist, noise = x.split([1, self.n_harmonics, self.n_bands], dim=-1)
        return {"amplitude": synth.exp_sigmoid(amp[..., 0]),
                "harmonic_distribution": synth.exp_sigmoid(dist),
                "noise_magnitudes": synth.exp_sigmoid(noise - 5.0)}, state

    def render(self, f0_hz: torch.Tensor, controls: dict, *, generator: torch.Generator | None = None,
               reverb: bool = True) -> torch.Tensor:
        """Controls -> audio with the harmonic + noise synths and the learned reverb."""
        sr, hop = int(self.sample_rate), int(self.hop_samples)
        audio = synth.harmonic(f0_hz, controls["amplitude"], controls["harmonic_distribution"],
                               sample_rate=sr, hop_samples=hop)
        audio = audio + synth.filtered_noise(controls["noise_magnitudes"], hop_samples=hop, generator=generator)
        return self.reverb(audio) if reverb else audio

    def forward(self, f0_hz: torch.Tensor, loudness_db: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        ctrl, _ = self.controls(f0_hz, loudness_db)
        return self.render(f0_hz, ctrl, generator=generator)


def spectral_loss(pred: torch.Tensor, target: torch.Tensor, *, fft_sizes=FFT_SIZES) -> torch.Tensor:
    """DDSP's multi-scale spectral loss: mean |linear| + |log| magnitude differences over six FFT sizes."""
    loss = pred.new_zeros(())
    for n_fft in fft_sizes:
        win = torch.hann_window(n_fft, dtype=pred.dtype, device=pred.device)
        kw = dict(n_fft=n_fft, hop_length=n_fft // 4, window=win, center=True, return_complex=True)
        p, t = torch.stft(pred, **kw).abs(), torch.stft(target, **kw).abs()
        loss = loss + (p - t).abs().mean() + (torch.log(p + 1e-7) - torch.log(t + 1e-7)).abs().mean()
    return loss


def n_parameters(model: nn.Module) -> int:
    """Trainable parameters, for the model cards."""
    return sum(p.numel() for p in model.parameters())
