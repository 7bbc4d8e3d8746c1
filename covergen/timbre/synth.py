"""DDSP synthesizers as plain torch functions (no weights): the network predicts controls, these render them.

Controls arrive at frame rate [shape=(batch, frames, ...)] and audio leaves at
`hop_samples` samples per frame [shape=(batch, frames * hop_samples)].
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["exp_sigmoid", "upsample", "harmonic", "filtered_noise", "fft_convolve", "sine"]

_CHUNK_SAMPLES = 1 << 15


def exp_sigmoid(x: torch.Tensor, *, exponent: float = 10.0, max_value: float = 2.0,
                threshold: float = 1e-7) -> torch.Tensor:
    """DDSP's positive activation: spans many decades of amplitude with a gentle gradient."""
    return max_value * torch.sigmoid(x) ** math.log(exponent) + threshold


def upsample(x: torch.Tensor, *, hop_samples: int) -> torch.Tensor:
    """Frame controls [shape=(batch, frames, ch)] -> sample rate [shape=(batch, frames*hop, ch)] by linear interpolation.

    Frame k sits at sample k*hop (features are centred there); the last frame is held.
    """
    b, t, c = x.shape
    xp = torch.cat([x, x[:, -1:]], dim=1).transpose(1, 2)  # (b, c, t+1)
    y = F.interpolate(xp, size=t * hop_samples + 1, mode="linear", align_corners=True)
    return y[..., :-1].transpose(1, 2)


def harmonic(f0_hz: torch.Tensor, amplitude: torch.Tensor, harmonic_distribution: torch.Tensor, *,
             sample_rate: int, hop_samples: int) -> torch.Tensor:
    """Additive synth: harmonics k*f0 with overall `amplitude` shared by `harmonic_distribution`.

    f0_hz, amplitude: [shape=(batch, frames)]; harmonic_distribution: [shape=(batch, frames, n_harmonics)],
    non-negative. Harmonics at or above Nyquist get zero weight before the distribution is
    normalised, so nothing aliases. Returns [shape=(batch, frames * hop_samples)].
    """
    b, t, n_harm = harmonic_distribution.shape
    k = torch.arange(1, n_harm + 1, dtype=f0_hz.dtype, device=f0_hz.device)
    audible = (f0_hz[..., None] * k < sample_rate / 2).to(harmonic_distribution.dtype)
    dist = harmonic_distribution * audible
    dist = dist / dist.sum(-1, keepdim=True).clamp_min(1e-7)
    amps = dist * amplitude[..., None]  # (b, t, K) at frame rate
    # Linear interpolation between frames k and k+1 written as S @ a + w * S @ (a_next - a), where
    # S holds sin(k * phase): S has no gradient, so training never differentiates through sin
    # and never stores a (samples, harmonics) graph (4x faster than upsampling amps first).
    d_amps = torch.cat([amps[:, 1:], amps[:, -1:]], dim=1) - amps
    f0_up = upsample(f0_hz.detach()[..., None], hop_samples=hop_samples)[..., 0]
    # Phase in float64: a float32 running sum drifts audibly after a few seconds.
    omega = 2 * math.pi * f0_up.double() / sample_rate
    phase = torch.remainder(torch.cumsum(omega, dim=-1), 2 * math.pi).to(amps.dtype)  # wrapped: float32 suffices
    w = (torch.arange(hop_samples, dtype=amps.dtype, device=amps.device) / hop_samples)[:, None]
    chunk = max(1, _CHUNK_SAMPLES // hop_samples)
    out = []
    for s in range(0, t, chunk):
        e = min(t, s + chunk)
        with torch.no_grad():
            f0_chunk = f0_up[:, s * hop_samples:e * hop_samples]
            # Only harmonics that are below Nyquist somewhere in the chunk cost a sin.
            n_use = int(min(n_harm, max(1, math.ceil(sample_rate / 2 / max(float(f0_chunk.min()), 1.0)))))
            kk = k[:n_use]
            ph = phase[:, s * hop_samples:e * hop_samples, None]
            # Gliding f0 can cross Nyquist inside a frame: mask per sample too.
            ok = (f0_chunk[..., None] * kk) < sample_rate / 2
            sines = (torch.sin(ph * kk) * ok).reshape(b, e - s, hop_samples, n_use)
        y = sines @ amps[:, s:e, :n_use, None] + w * (sines @ d_amps[:, s:e, :n_use, None])
        out.append(y.reshape(b, (e - s) * hop_samples))
    return torch.cat(out, dim=-1)


def sine(f0_hz: torch.Tensor, amplitude: torch.Tensor, *, sample_rate: int, hop_samples: int) -> torch.Tensor:
    """One sinusoid at f0 with the given frame amplitude: the baseline DDSP has to beat."""
    dist = torch.ones(*f0_hz.shape, 1, dtype=amplitude.dtype, device=amplitude.device)
    return harmonic(f0_hz, amplitude, dist, sample_rate=sample_rate, hop_samples=hop_samples)


def _frequency_sampling_ir(magnitudes: torch.Tensor) -> torch.Tensor:
    """Linear-phase FIR per frame from band magnitudes [shape=(..., bands)] -> [shape=(..., 2*(bands-1))]."""
    ir = torch.fft.irfft(torch.complex(magnitudes, torch.zeros_like(magnitudes)), dim=-1)
    size = ir.shape[-1]
    ir = torch.roll(ir, size // 2, dims=-1)  # zero-phase -> centred (linear phase)
    window = torch.hann_window(size, periodic=False, dtype=ir.dtype, device=ir.device)
    return ir * window


def filtered_noise(magnitudes: torch.Tensor, *, hop_samples: int,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """White noise shaped per frame by a frequency-sampling filter; bands span 0..Nyquist linearly.

    magnitudes: [shape=(batch, frames, bands)] non-negative. Each frame's noise block is
    convolved with its FIR and overlap-added, so filter changes never click.
    Returns [shape=(batch, frames * hop_samples)].
    """
    b, t, _ = magnitudes.shape
    ir = _frequency_sampling_ir(magnitudes)  # (b, t, L)
    ir_len = ir.shape[-1]
    noise = torch.rand(b, t, hop_samples, generator=generator, dtype=magnitudes.dtype) * 2 - 1
    n_fft = 1 << math.ceil(math.log2(hop_samples + ir_len - 1))
    blocks = torch.fft.irfft(torch.fft.rfft(noise, n_fft) * torch.fft.rfft(ir, n_fft), n_fft)
    blocks = blocks[..., :hop_samples + ir_len - 1]  # (b, t, hop+L-1)
    total = t * hop_samples + ir_len - 1
    out = F.fold(blocks.transpose(1, 2), output_size=(1, total), kernel_size=(1, blocks.shape[-1]),
                 stride=(1, hop_samples)).reshape(b, total)
    start = ir_len // 2  # undo the linear-phase delay
    return out[:, start:start + t * hop_samples]


def fft_convolve(audio: torch.Tensor, impulse_response: torch.Tensor) -> torch.Tensor:
    """Causal convolution of audio [shape=(batch, samples)] with an IR [shape=(ir_samples,)], same length out."""
    n = audio.shape[-1]
    n_fft = 1 << math.ceil(math.log2(n + impulse_response.shape[-1] - 1))
    y = torch.fft.irfft(torch.fft.rfft(audio, n_fft) * torch.fft.rfft(impulse_response, n_fft), n_fft)
    return y[..., :n]
