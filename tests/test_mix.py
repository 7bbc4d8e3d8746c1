import numpy as np
import pytest

from covergen import mix, presets
from covergen.presets import EqBand, StemPreset

from .conftest import sine

SR = 44100


def _noise(seconds=4.0, sr=SR, seed=0):
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal((2, int(seconds * sr)))).astype(np.float32)


@pytest.mark.parametrize("gain_db", [6.0, -6.0, 1.0, -1.0])
def test_stem_gain_is_exact(gain_db):
    y = _noise()
    out = mix.build_stem_board(StemPreset(gain_db=gain_db))(y, SR)
    assert 20 * np.log10(np.std(out) / np.std(y)) == pytest.approx(gain_db, abs=0.01)


def test_lowpass_removes_highs():
    y = np.stack([sine(300, 2, SR) + sine(8000, 2, SR)] * 2)
    out = mix.build_stem_board(StemPreset(eq=(EqBand("lowpass", 1000.0),)))(y, SR)
    spec = np.abs(np.fft.rfft(out[0]))
    freqs = np.fft.rfftfreq(out.shape[1], 1 / SR)
    level = lambda f: spec[np.argmin(np.abs(freqs - f))]
    assert 20 * np.log10(level(8000) / level(300)) < -30


@pytest.mark.parametrize("kind", ["lowpass", "highpass"])
def test_a_cutoff_above_nyquist_gives_finite_audio(kind):
    """A style's 14 kHz filter on a 22.05 kHz song: pedalboard alone returns inf there."""
    y = _noise(sr=22050)
    board = mix.build_stem_board(StemPreset(eq=(EqBand(kind, 14000.0),)))
    out = mix.process_in_place(board, y.copy(), 22050)
    assert np.isfinite(out).all()
    if kind == "lowpass":  # above the band: the signal passes (first order at 0.95 Nyquist, twice)
        assert abs(20 * np.log10(np.std(out) / np.std(y))) < 3.0


@pytest.mark.parametrize("sr", [22050, 44100, 48000])
@pytest.mark.parametrize("level", [0.02, 0.9])
def test_loudness_target_and_true_peak(sr, level):
    rng = np.random.default_rng(1)
    t = np.arange(6 * sr) / sr
    y = level * np.stack([np.sin(2 * np.pi * 110 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 0.5 * t)),
                          rng.uniform(-1, 1, t.size) * 0.3]).astype(np.float32)
    out = mix.normalize_loudness(y, sample_rate=sr, target_lufs=-14.0, true_peak_ceiling_dbtp=-1.0)
    assert mix.integrated_lufs(out, sample_rate=sr) == pytest.approx(-14.0, abs=0.5)
    assert mix.true_peak_dbtp(out, sample_rate=sr) <= -1.0


@pytest.mark.parametrize("level,ceiling", [(0.02, -1.0), (0.9, -1.0), (0.9, -6.0)])
def test_the_masters_own_level_readings_are_the_measured_ones(level, ceiling):
    """The report takes the output's loudness and true peak from the master's last readings (no second
    measurement): they must equal a fresh measurement, whichever branch (gain, limiter, last resort) ended."""
    sr, rng = 44100, np.random.default_rng(2)
    t = np.arange(5 * sr) / sr
    y = level * np.stack([np.sin(2 * np.pi * 220 * t) * (0.2 + 0.8 * (t % 1.0 < 0.1)),
                          rng.uniform(-1, 1, t.size) * 0.2]).astype(np.float32)
    out, levels = mix._normalized(y, sample_rate=sr, target_lufs=-9.0, true_peak_ceiling_dbtp=ceiling, copy=True)
    assert levels["lufs"] == pytest.approx(mix.integrated_lufs(out, sample_rate=sr), abs=0.01)
    assert levels["true_peak_dbtp"] == pytest.approx(mix.true_peak_dbtp(out, sample_rate=sr), abs=0.01)
    assert levels["true_peak_dbtp"] <= ceiling


def test_true_peak_sees_intersample_peaks():
    # a sine at fs/4 sampled at 45 degrees: sample peak 0.707, true peak 1.0
    n = np.arange(4096)
    y = np.sin(2 * np.pi * n / 4 + np.pi / 4)[None].astype(np.float32)
    assert 20 * np.log10(np.max(np.abs(y))) == pytest.approx(-3.01, abs=0.05)
    assert mix.true_peak_dbtp(y, sample_rate=SR) == pytest.approx(0.0, abs=0.15)  # edges ring a little


def test_stretch_changes_tempo_not_pitch(demo_song):
    y, sr = demo_song
    y = y[:, : 20 * sr]
    before = mix.measure_tempo_bpm(y, sample_rate=sr)
    out = mix.stretch(y, sample_rate=sr, rate=105 / 120)
    after = mix.measure_tempo_bpm(out, sample_rate=sr)
    assert before == pytest.approx(120, abs=1)
    assert after == pytest.approx(before * 105 / 120, abs=1.0)
    assert out.shape[1] == pytest.approx(y.shape[1] * 120 / 105, rel=0.01)


def test_a_monophonic_stretch_keeps_pitch_and_takes_the_new_length():
    """The melody's stretch (Rubber Band R2): a 330 Hz voice-like tone with vibrato, 12% slower, keeps its
    median pitch within 10 cents and lasts 1/rate as long."""
    import librosa

    sr, rate = 22050, 0.88
    t = np.arange(3 * sr) / sr
    phase = 2 * np.pi * np.cumsum(330 * 2 ** (0.3 / 12 * np.sin(2 * np.pi * 5.5 * t))) / sr
    y = sum(0.2 / k * np.sin(k * phase) for k in range(1, 6)).astype(np.float32)[None]
    out = mix.stretch(y, sample_rate=sr, rate=rate, monophonic=True)
    assert out.shape[1] == pytest.approx(y.shape[1] / rate, rel=0.005)
    f0, voiced, _ = librosa.pyin(out[0], fmin=200, fmax=500, sr=sr)
    assert 1200 * abs(np.log2(np.nanmedian(f0[voiced]) / 330)) < 10


def test_a_long_stretch_goes_in_pieces_joined_without_clicks(demo_song, monkeypatch):
    """Long signals are stretched in pieces cut at quiet moments (bounded memory): the length and tempo are
    the whole stretch's, and the joins add no click (no sample step larger than the whole stretch has there)."""
    from covergen import audio

    y, sr = demo_song
    y, sr = audio.resample(y[:, : 16 * sr].mean(axis=0, keepdims=True), orig_sr=sr, target_sr=22050), 22050
    monkeypatch.setattr(mix, "_STRETCH_PIECE_S", 5.0)
    monkeypatch.setattr(mix, "_STRETCH_SEARCH_S", 1.5)
    cuts = mix._quiet_cuts(y, sr)
    assert len(cuts) == 2
    out = mix.stretch(y, sample_rate=sr, rate=105 / 120)
    assert out.shape == (1, round(y.shape[1] * 120 / 105))
    assert mix.measure_tempo_bpm(out, sample_rate=sr) == pytest.approx(105, abs=1.0)
    whole = mix._stretch_whole(y, sr, 105 / 120)
    for cut in cuts:  # around each join, no sample step beyond what the whole stretch has there (a drum hit)
        at = round(cut * 120 / 105)
        step = lambda z: np.abs(np.diff(z[:, at - 300:at + 300], axis=1)).max()  # noqa: E731
        assert step(out) <= 1.2 * step(whole)


def test_pulse_separates_music_from_noise(demo_song):
    y, sr = demo_song
    rng = np.random.default_rng(0)
    assert mix.pulse_strength(y[:, : 20 * sr], sample_rate=sr) > 0.5
    noise = (rng.standard_normal((1, 20 * sr)) * np.repeat(rng.uniform(0, 1, 20 * 7), sr // 7)[None]).astype(np.float32)
    assert mix.pulse_strength(noise, sample_rate=sr) < 0.2


def test_render_jazz_mix(demo_song):
    y, sr = demo_song
    y = y[:, : 15 * sr]
    stems = {"vocals": 0.4 * y, "drums": 0.3 * y, "bass": 0.2 * y, "other": 0.1 * y}
    out, facts = mix.render(stems, sample_rate=sr, preset=presets.load("jazz"), tempo_bpm=120.0,
                            output_sample_rate=48000)
    assert facts["stretch_rate"] == pytest.approx(105 / 120)
    assert out.shape[0] == 2 and out.shape[1] == pytest.approx(15 * 48000 * 120 / 105, rel=0.02)
    assert mix.integrated_lufs(out, sample_rate=48000) == pytest.approx(-14, abs=0.5)
    assert mix.true_peak_dbtp(out, sample_rate=48000) <= -1.0


def test_muted_stem_is_absent():
    y = _noise(2.0)
    preset = presets.load("classical")  # drums muted
    silent = {"vocals": 0 * y, "bass": 0 * y, "other": 0 * y}
    out, _ = mix.render({**silent, "drums": y}, sample_rate=SR, preset=preset, tempo_bpm=None)
    assert np.max(np.abs(out)) < 1e-6
