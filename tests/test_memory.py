"""Long songs in bounded memory: the chunked measures and effects give the whole-signal answers."""
import numpy as np
import pyloudnorm
import pytest
from scipy.signal import resample_poly

from covergen import audio, mix, presets

from .conftest import sine


def _music_like(sr: int, seconds: float, channels: int, seed: int = 0) -> np.ndarray:
    """A tone with a slow swell plus noise, a near-silent first third (so both loudness gates act)."""
    rng = np.random.default_rng(seed)
    n = int(sr * seconds)
    t = np.arange(n) / sr
    y = 0.3 * np.sin(2 * np.pi * 440 * t) * (1 + np.sin(2 * np.pi * 0.3 * t)) + 0.05 * rng.standard_normal(n)
    y = np.stack([y, 0.5 * y + 0.02 * rng.standard_normal(n)])[:channels].astype(np.float32)
    y[:, :n // 3] *= 1e-3
    return y


@pytest.mark.parametrize("sr,seconds,channels", [(44100, 50.3, 2), (22050, 3.0, 1), (11025, 2.7, 2),
                                                 (48000, 0.45, 2)])
def test_chunked_loudness_and_true_peak_equal_the_whole_signal_measures(sr, seconds, channels, monkeypatch):
    monkeypatch.setattr(mix, "CHUNK_SAMPLES", 65536)  # many chunks, and a partial last one
    y = _music_like(sr, seconds, channels)
    whole = pyloudnorm.Meter(sr).integrated_loudness(np.ascontiguousarray(y.T, dtype=np.float64))
    assert mix.integrated_lufs(y, sample_rate=sr) == pytest.approx(whole, abs=1e-9)
    up = resample_poly(y.astype(np.float64), 4, 1, axis=-1)
    assert mix.true_peak_dbtp(y, sample_rate=sr) == pytest.approx(20 * np.log10(np.max(np.abs(up))), abs=1e-12)


def test_loudness_of_silence_and_of_a_too_short_clip():
    assert mix.integrated_lufs(np.zeros((2, 44100), np.float32), sample_rate=44100) == -np.inf
    assert mix.true_peak_dbtp(np.zeros((2, 44100), np.float32), sample_rate=44100) == -np.inf
    with pytest.raises(ValueError, match="shorter than one"):
        mix.integrated_lufs(np.ones((2, 100), np.float32) * 0.1, sample_rate=44100)


@pytest.mark.parametrize("genre", ["rock", "lofi"])
def test_render_in_chunks_is_bit_identical_to_one_chunk(genre, monkeypatch):
    """The stem boards, the master board and the loudness stage carry their state across chunks."""
    sr = 22050
    rng = np.random.default_rng(1)
    stems = {name: _music_like(sr, 6.0, 2, seed=i) * 0.5 for i, name in enumerate(("vocals", "drums", "bass"))}
    stems["other"] = (0.1 * rng.standard_normal((1, sr * 4))).astype(np.float32)  # mono and shorter
    preset = presets.load(genre)
    monkeypatch.setattr(mix, "CHUNK_SAMPLES", 10 ** 9)
    whole, facts = mix.render(stems, sample_rate=sr, preset=preset, tempo_bpm=110.0)
    monkeypatch.setattr(mix, "CHUNK_SAMPLES", 8192 * 2)
    chunked, _ = mix.render(stems, sample_rate=sr, preset=preset, tempo_bpm=110.0)
    assert facts["stretch_rate"] != 1.0 and whole.shape == chunked.shape
    assert np.array_equal(whole, chunked)
    assert mix.integrated_lufs(chunked, sample_rate=sr) == pytest.approx(preset.master.target_lufs, abs=0.5)


def test_normalize_loudness_in_place_equals_the_copy():
    y = _music_like(44100, 4.0, 2)
    kept = y.copy()
    copied = mix.normalize_loudness(y, sample_rate=44100, target_lufs=-14.0)
    assert np.array_equal(y, kept)  # the default leaves the caller's array alone
    in_place = mix.normalize_loudness(y, sample_rate=44100, target_lufs=-14.0, copy=False)
    assert in_place is y and np.array_equal(in_place, copied)


def test_chunked_onset_strength_matches_librosa(demo_song):
    import librosa

    y, sr = demo_song
    mono = librosa.resample(y.mean(axis=0)[: sr * 20], orig_sr=sr, target_sr=22050)
    for hop in (256, 512):
        expected = librosa.onset.onset_strength(y=mono, sr=22050, hop_length=hop)
        got = audio.onset_strength(mono, sample_rate=22050, hop_samples=hop, chunk_frames=300)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-4 * float(np.max(expected)))
    short = sine(440, 0.05, 22050)  # fewer samples than one FFT frame
    assert audio.onset_strength(short, sample_rate=22050, hop_samples=512).shape == \
        librosa.onset.onset_strength(y=short, sr=22050, hop_length=512).shape


def test_chunked_beat_track_matches_librosa(demo_song):
    import librosa

    y, sr = demo_song
    mono = librosa.resample(np.tile(y.mean(axis=0), 2), orig_sr=sr, target_sr=22050)
    for hop in (256, 512):
        env = audio.onset_strength(mono, sample_rate=22050, hop_samples=hop)
        tempo_bpm, beats = librosa.beat.beat_track(onset_envelope=env, sr=22050, hop_length=hop)
        got_bpm, got_beats = audio.beat_track(env, sample_rate=22050, hop_samples=hop, chunk_frames=333)
        assert got_bpm == pytest.approx(float(tempo_bpm[0]), rel=1e-9)
        assert np.array_equal(got_beats, beats) and len(beats) > 100
    assert audio.beat_track(np.zeros(500), sample_rate=22050, hop_samples=512)[1].size == 0


def test_chunked_tuning_estimate_matches_librosa(demo_song):
    import librosa

    from covergen import coverid

    y, sr = demo_song
    mono = librosa.resample(y.mean(axis=0)[: sr * 12], orig_sr=sr, target_sr=coverid.SAMPLE_RATE)
    detuned = librosa.effects.pitch_shift(mono, sr=coverid.SAMPLE_RATE, n_steps=0.3)
    for signal in (mono, detuned):
        expected = librosa.estimate_tuning(y=signal, sr=coverid.SAMPLE_RATE, bins_per_octave=12)
        assert coverid._estimate_tuning(signal, chunk_frames=100) == pytest.approx(expected, abs=1e-12)
