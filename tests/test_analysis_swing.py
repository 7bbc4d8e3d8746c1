"""The lead sheet's swing ratio: the off-beat eighth's place between two beats, measured peak to peak.

Beats are tracked at their onsets' starts (up to 35 ms, 70 ms for soft onsets, before the envelope peak);
the off-beat is found at its peak. Measured from the onset starts, a straight groove with slow-attack
drums came out swung (1.15 at 120 BPM here; 2.8 for a rendered 1.7 shuffle at 172 BPM)."""
from __future__ import annotations

import numpy as np
import pytest

from covergen import analysis

SR = 44100


def _groove(bpm: float, ratio: float, *, seconds: float = 12.0, attack_s: float = 0.03) -> np.ndarray:
    """Noise hits with a slow (linear, attack_s) rise: loud on the beats, softer on the off-beat
    eighths, placed at ratio / (1 + ratio) of the beat."""
    rng = np.random.default_rng(1)
    y = np.zeros(int(seconds * SR), np.float32)
    n_rise, n_fall = int(attack_s * SR), int(0.08 * SR)
    shape = np.concatenate([np.linspace(0, 1, n_rise, endpoint=False), np.exp(-np.arange(n_fall) / (0.02 * SR))])
    period = 60.0 / bpm
    for beat in np.arange(0.5, seconds - 0.5, period):
        for t, gain in ((beat, 0.8), (beat + period * ratio / (1 + ratio), 0.45)):
            i = int(t * SR)
            y[i:i + shape.size] += gain * shape[:y.size - i] * rng.standard_normal(min(shape.size, y.size - i))
    return y


def _swing_and_bpm(y: np.ndarray) -> tuple[float, float]:
    y22 = analysis._mono_at_analysis_rate(y, SR)
    _, harmonic = analysis._cqt_harmonic(analysis._full_cqt(y22))
    envelope = analysis._beat_envelope(y22, analysis._chroma(harmonic))
    beats = analysis._track_beats(envelope)
    return analysis._swing_ratio(envelope, beats), 60.0 / float(np.median(np.diff(beats)))


# measured from the onset starts (before): 1.15, 2.25, 1.97
@pytest.mark.parametrize("bpm, ratio", [(120.0, 1.0), (100.0, 2.0), (110.0, 1.7)])
def test_swing_of_slow_attack_grooves(bpm, ratio):
    swing, tracked = _swing_and_bpm(_groove(bpm, ratio))
    assert abs(tracked - bpm) < 3.0, f"tracked {tracked:.1f} BPM"
    assert abs(swing - ratio) <= 0.1, f"swing {swing} for a {ratio} groove at {bpm} BPM"


def test_swing_is_measured_from_the_beats_peaks():
    """Beats given at their onsets' starts, 3 frames before the peaks (as the tracker gives them): a
    straight off-beat stays straight, a 2:1 one is 2:1."""
    frames_per_s = analysis.ANALYSIS_RATE / analysis._BEAT_HOP
    period = 40  # frames: 129 BPM
    for ratio, expected in ((1.0, 1.0), (2.0, 2.0)):
        envelope = np.zeros(40 * period, np.float32)
        peaks = np.arange(20, envelope.size - period, period)
        for p in peaks:
            for peak, gain in ((p, 1.0), (p + int(round(period * ratio / (1 + ratio))), 0.5)):
                envelope[peak - 3:peak + 1] += gain * np.array([0.25, 0.5, 0.75, 1.0], np.float32)
        starts_s = (peaks - 3 - 0.5) / frames_per_s
        assert abs(analysis._swing_ratio(envelope, starts_s) - expected) <= 0.1
