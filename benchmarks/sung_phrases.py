"""Voice-like phrases whose f0 is known exactly: the yardstick for pitch trackers.

Real singing glides between notes, scoops into them and carries vibrato; a pitch tracker's
window smears all three. These phrases have those gestures (rates and depths as sung),
a glottal-like 1/k^1.3 harmonic source through vowel formants, breath noise and rests,
and return the f0 they were synthesised with, per sample.
"""
from __future__ import annotations

import numpy as np

__all__ = ["SAMPLE_RATE", "REGISTERS", "sung_phrase"]

SAMPLE_RATE = 16000
# MIDI ranges: low male voice / bass line, tenor-alto, soprano-trumpet.
REGISTERS = ((40, 62), (50, 74), (62, 86))
_VOWEL_FORMANTS_HZ = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410))


def sung_phrase(seed: int, *, seconds: float = 8.0, low_midi: float = 50, high_midi: float = 74,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(audio float32, f0_hz, voiced) [shape=(samples,)] at SAMPLE_RATE; f0 is exact where voiced."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    midi_track, amp, formants = np.zeros(n), np.zeros(n), np.zeros((n, 3))
    centre = rng.uniform(low_midi + 6, high_midi - 6)
    start, previous = 0, None  # previous: the last sung note when no rest came after it
    while start < n - SAMPLE_RATE // 5:
        length = min(n - start, int(rng.uniform(0.15, 0.9) * SAMPLE_RATE))
        t = np.arange(length) / SAMPLE_RATE
        note = float(np.clip(centre + rng.normal(0, 4), low_midi, high_midi))
        midi = np.full(length, note)
        if previous is not None:  # legato: portamento of 20-150 ms from the previous note
            g = min(length, int(rng.uniform(0.02, 0.15) * SAMPLE_RATE))
            midi[:g] = previous + (note - previous) * (0.5 - 0.5 * np.cos(np.pi * np.arange(g) / g))
        elif rng.random() < 0.5:  # scoop up into the note
            g = min(length, int(rng.uniform(0.05, 0.12) * SAMPLE_RATE))
            midi[:g] = note - rng.uniform(0.5, 2.0) * (1 - np.arange(g) / g) ** 2
        if length > 0.3 * SAMPLE_RATE:  # vibrato of 10-60 cents at 4.5-6.5 Hz, fading in after 150 ms
            vibrato = rng.uniform(0.1, 0.6) * np.sin(2 * np.pi * rng.uniform(4.5, 6.5) * t + rng.uniform(0, 2 * np.pi))
            midi = midi + vibrato * np.clip((t - 0.15) / 0.2, 0, 1)
        midi = midi + np.cumsum(rng.normal(0, 0.003, length))  # slow drift
        rest = rng.random() < 0.25
        envelope = np.minimum(1, t / 0.03) * np.minimum(1, (length - np.arange(length)) / (0.04 * SAMPLE_RATE))
        seg = slice(start, start + length)
        midi_track[seg] = midi
        amp[seg] = 0.0 if rest else 10 ** (rng.uniform(-20, 0) / 20) * envelope
        formants[seg] = _VOWEL_FORMANTS_HZ[rng.integers(len(_VOWEL_FORMANTS_HZ))]
        previous = None if rest else note
        start += length
    f0 = 440.0 * 2 ** ((midi_track - 69) / 12)
    phase = np.cumsum(2 * np.pi * f0 / SAMPLE_RATE)
    y = np.zeros(n)
    for k in range(1, 40):
        fk = k * f0
        resonance = sum(1 / (1 + ((fk - formants[:, j]) / (80 + 40 * j)) ** 2) for j in range(3))
        y += (fk < SAMPLE_RATE / 2 - 200) * k ** -1.3 * (0.3 + resonance) * np.sin(k * phase)
    y = y * amp + rng.normal(0, 0.02, n) * np.convolve(amp, np.ones(160) / 160, mode="same")
    y = 0.5 * y / (np.abs(y).max() + 1e-9)
    return y.astype(np.float32), f0, amp > 0.05 * amp.max()
