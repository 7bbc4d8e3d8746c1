"""The lead line of an instrumental: its tune, taken out of the accompaniment stem.

A separator puts a sung tune in the vocal stem, but an instrumental's tune (a trumpet, a synth, a
piano's right hand) lands in `other`, mixed with the chords under it. The arranged cover plays its
melody from one stem; without the tune the new band is no longer the same song, and the cover check's
fallback (the original harmony under the band) takes the genre back. `lead_line` finds the stem's
predominant pitch frame by frame and keeps only the energy on its harmonics:

- salience: harmonic summation on the compressed magnitude spectrum (the idea of Melodia, Salamon &
  Gomez 2012): a pitch is salient when its harmonics carry energy, the higher ones weighted less;
- the path: the most salient pitch sequence that moves by small steps, with a penalised jump anywhere
  (a new phrase, a leap), found by dynamic programming over the 20-cent grid;
- voicing: frames where the stem sounds and the path's pitch stands out over every other (one line
  leads, not a chord), in stretches of at least MIN_LINE_S;
- a soft harmonic mask on the stem's spectrogram at the path's harmonics, inverted: one line that the
  melody tracker (`timbre.melody`) and the DDSP instruments can play, or the mix can keep.

Constants were chosen on dev material only (synthetic leads over chord pads, as in tests/test_lead.py,
and the instrumentals of ../shared/data/covers; checked on GM renders of seeds below 1000), never on what
the benchmarks report.
"""
from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import scipy.signal

from .audio import to_mono, true_runs

__all__ = ["LeadLine", "lead_line", "MIN_LINE_S"]

N_FFT = 4096
HOP = 512
F0_MIN_HZ, F0_MAX_HZ = 110.0, 1760.0  # A2-A6: a lead's range; the bass has its own stem
BINS_PER_SEMITONE = 5                 # a 20-cent grid
HARMONICS = 10
HARMONIC_DECAY = 0.8
MAX_PARTIAL_HZ = 8000.0
# The path: a step of one grid bin costs STEP_COST (in units of the stem's loud-frame salience); moves of
# up to MAX_STEP bins per frame (a glide or vibrato) are steps, anything further a jump costing JUMP_COST.
STEP_COST = 0.02
MAX_STEP = 5
JUMP_COST = 0.5
# Voicing: the path's salience over that of the strongest other pitch (`_dominance`: a lead stands out
# over the chords under it, the tones of a chord alone are alike), on frames within SOUNDING_DB of the
# stem's loud frames, in runs of at least MIN_LINE_S.
MIN_DOMINANCE = 1.2
RELATED = (1 / 4, 1 / 3, 1 / 2, 1, 2, 3, 4)
SOUNDING_DB = 35.0
MIN_LINE_S = 0.12
MASK_CENTS = 30.0  # the mask's half width around each harmonic, at least MASK_MIN_BINS (the Hann window's main lobe)
MASK_MIN_BINS = 2.5
BLOCK_FRAMES = 2000  # about 23 s of spectrogram at a time


@dataclass
class LeadLine:
    """The isolated line (`audio`, mono [shape=(1, samples)]) and what the tracker found, per frame."""

    audio: np.ndarray
    f0_hz: np.ndarray
    voiced: np.ndarray
    hop_s: float
    energy_share: float  # of the stem's energy

    def facts(self) -> dict:
        """For the report: how much of the stem the line covers and where it sits."""
        voiced = self.voiced
        return {"voiced_share": round(float(voiced.mean()) if voiced.size else 0.0, 3),
                "f0_median_hz": round(float(np.median(self.f0_hz[voiced])), 1) if voiced.any() else None,
                "energy_share": round(self.energy_share, 3)}


def _grid() -> np.ndarray:
    n = int(round(12 * BINS_PER_SEMITONE * np.log2(F0_MAX_HZ / F0_MIN_HZ))) + 1
    return F0_MIN_HZ * 2.0 ** (np.arange(n) / (12 * BINS_PER_SEMITONE))


def _harmonic_matrix(grid_hz: np.ndarray, sample_rate: int) -> np.ndarray:
    """[shape=(len(grid), bins up to MAX_PARTIAL_HZ)]: each grid pitch's weighted harmonics, linearly
    interpolated between bins."""
    bin_hz = sample_rate / N_FFT
    n_bins = min(N_FFT // 2 + 1, int(MAX_PARTIAL_HZ / bin_hz) + 2)
    w = np.zeros((len(grid_hz), n_bins), np.float32)
    rows = np.arange(len(grid_hz))
    for h in range(1, HARMONICS + 1):
        pos = h * grid_hz / bin_hz
        ok = h * grid_hz < min(MAX_PARTIAL_HZ, sample_rate / 2 - bin_hz)
        lo = np.floor(pos).astype(int)
        frac = (pos - lo).astype(np.float32)
        weight = np.float32(HARMONIC_DECAY ** (h - 1))
        np.add.at(w, (rows[ok], lo[ok]), weight * (1 - frac[ok]))
        np.add.at(w, (rows[ok], lo[ok] + 1), weight * frac[ok])
    return w


@numba.njit(cache=True)
def _best_path(salience: np.ndarray, step_cost: float, max_step: int, jump_cost: float) -> np.ndarray:
    """The grid index per frame maximising the summed salience minus the costs of moving (see STEP_COST)."""
    n_pitch, n_frames = salience.shape
    score = salience[:, 0].copy()
    back = np.zeros((n_pitch, n_frames), np.int32)
    new = np.empty(n_pitch)
    for t in range(1, n_frames):
        best_any = 0
        for j in range(n_pitch):
            if score[j] > score[best_any]:
                best_any = j
        for j in range(n_pitch):
            arg, val = best_any, score[best_any] - jump_cost
            for d in range(-max_step, max_step + 1):
                k = j + d
                if 0 <= k < n_pitch:
                    v = score[k] - step_cost * abs(d)
                    if v > val:
                        arg, val = k, v
            new[j] = val + salience[j, t]
            back[j, t] = arg
        score[:] = new
        # keep the scores bounded on long stems (only their differences matter)
        top = score.max()
        score -= top
    path = np.empty(n_frames, np.int32)
    j = 0
    for k in range(n_pitch):
        if score[k] > score[j]:
            j = k
    for t in range(n_frames - 1, -1, -1):
        path[t] = j
        j = back[j, t]
    return path


@numba.njit(cache=True)
def _harmonic_mask(f0_hz: np.ndarray, voiced: np.ndarray, n_bins: int, bin_hz: float, top_hz: float,
                   harmonics: int, cents: float, min_bins: float) -> np.ndarray:
    """[shape=(n_bins, frames)] float32: a raised cosine around each harmonic of f0 below top_hz (half width
    `cents` of its frequency, at least `min_bins`), on voiced frames; 0 elsewhere."""
    mask = np.zeros((n_bins, len(f0_hz)), np.float32)
    for t in range(len(f0_hz)):
        if not voiced[t]:
            continue
        for h in range(1, harmonics + 1):
            if h * f0_hz[t] >= top_hz:
                break
            centre = h * f0_hz[t] / bin_hz
            width = max(min_bins, centre * cents)
            for k in range(max(0, int(centre - width)), min(n_bins, int(centre + width) + 2)):
                dist = abs(k - centre) / width
                if dist < 1.0:
                    v = 0.5 + 0.5 * np.cos(np.pi * dist)
                    if v > mask[k, t]:
                        mask[k, t] = v
    return mask


def _dominance(salience: np.ndarray, path: np.ndarray) -> np.ndarray:
    """Per frame, the path's salience over the strongest pitch that is not the path's own (more than a
    semitone from it and from its octaves, twelfths and double octaves, which its harmonics make salient)."""
    n_pitch, n_frames = salience.shape
    frames = np.arange(n_frames)
    own = np.zeros(salience.shape, bool)
    idx = np.arange(n_pitch)[:, None]
    for ratio in RELATED:
        centre = path[None, :] + 12 * BINS_PER_SEMITONE * np.log2(ratio)
        own |= np.abs(idx - centre) <= BINS_PER_SEMITONE
    second = np.where(own, 0.0, salience).max(axis=0)
    return salience[path, frames] / np.maximum(second, 1e-9)


def _frames(padded: np.ndarray, first: int, last: int) -> np.ndarray:
    """Windowed frames [first, last) of the centred signal, [shape=(N_FFT, frames)]."""
    seg = padded[first * HOP:(last - 1) * HOP + N_FFT]
    return (np.lib.stride_tricks.sliding_window_view(seg, N_FFT)[::HOP] * _window()).T


def _window() -> np.ndarray:
    return scipy.signal.get_window("hann", N_FFT).astype(np.float32)


def lead_line(y: np.ndarray, *, sample_rate: int) -> LeadLine:
    """The predominant line of a stem y [shape=(channels, samples)] or [shape=(samples,)], isolated (mono).

    The spectrogram is computed in blocks of BLOCK_FRAMES twice (once for the salience, once for the
    mask), so a 10-minute stem never holds its whole spectrogram."""
    mono = np.asarray(to_mono(np.asarray(y, np.float32)), np.float32)
    n = len(mono)
    padded = np.pad(mono, (N_FFT // 2, N_FFT // 2 + HOP))
    n_frames = 1 + n // HOP
    hop_s = HOP / sample_rate
    grid = _grid()
    harmonics = _harmonic_matrix(grid, sample_rate)
    salience = np.empty((len(grid), n_frames), np.float32)
    power_db = np.empty(n_frames, np.float32)
    blocks = [(a, min(n_frames, a + BLOCK_FRAMES)) for a in range(0, n_frames, BLOCK_FRAMES)]
    for a, b in blocks:
        mag = np.abs(np.fft.rfft(_frames(padded, a, b), axis=0)).astype(np.float32)
        power_db[a:b] = 10 * np.log10(np.maximum((mag ** 2).sum(axis=0), 1e-12))
        # compressed magnitudes, each bin the max of its neighbours (a partial off the bin centre still counts)
        comp = np.sqrt(mag)
        comp[1:-1] = np.maximum(comp[1:-1], np.maximum(comp[:-2], comp[2:]))
        salience[:, a:b] = harmonics @ comp[:harmonics.shape[1]]
    sounding = power_db > max(float(np.percentile(power_db, 95)) - SOUNDING_DB, float(power_db.max()) - 100.0)
    scale = float(np.percentile(salience.max(axis=0)[sounding], 90)) if sounding.any() else 1.0
    path = _best_path((salience / max(scale, 1e-9)).astype(np.float64), STEP_COST, MAX_STEP, JUMP_COST)
    voiced = sounding & (_dominance(salience, path) >= MIN_DOMINANCE)
    min_run = max(1, int(round(MIN_LINE_S / hop_s)))
    for a, b in true_runs(voiced):
        if b - a < min_run:
            voiced[a:b] = False
    f0 = grid[path]
    # a soft harmonic mask on voiced frames, inverted by weighted overlap-add (a frame is `slices` hops long:
    # each block's frames add in that many hop-long slices)
    bin_hz = sample_rate / N_FFT
    top_hz = min(MAX_PARTIAL_HZ, sample_rate / 2)
    window = _window()
    slices = N_FFT // HOP
    out = np.zeros(len(padded) + N_FFT, np.float32)
    norm = np.zeros(len(padded) + N_FFT, np.float32)
    for a, b in blocks:
        spec = np.fft.rfft(_frames(padded, a, b), axis=0)
        mask = _harmonic_mask(f0[a:b], voiced[a:b], spec.shape[0], bin_hz, top_hz, HARMONICS,
                              2 ** (MASK_CENTS / 1200) - 1, MASK_MIN_BINS)
        frames_out = (np.fft.irfft(spec * mask, n=N_FFT, axis=0) * window[:, None]).astype(np.float32)
        for j in range(slices):
            at = (a + j) * HOP
            out[at:at + (b - a) * HOP] += frames_out[j * HOP:(j + 1) * HOP].T.reshape(-1)
            norm[at:at + (b - a) * HOP] += np.tile(window[j * HOP:(j + 1) * HOP] ** 2, b - a)
    del padded
    np.maximum(norm, 1e-3, out=norm)
    out /= norm
    line = out[N_FFT // 2:N_FFT // 2 + n]
    total = float(np.sum(mono.astype(np.float64) ** 2))
    share = float(np.sum(line.astype(np.float64) ** 2) / total) if total > 0 else 0.0
    return LeadLine(line[None], f0, voiced, hop_s, share)
