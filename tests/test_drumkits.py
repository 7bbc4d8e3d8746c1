import numpy as np
import pytest

from covergen.training import drumkits

needs_kits = pytest.mark.skipif(not drumkits.available(), reason="Debian hydrogen-drumkits not installed")


@pytest.mark.parametrize("name, role", [
    ('Kick (Tama Superstar 22")', "kick"), ("BassDrum", "kick"), ("Snare Rock", "snare"),
    ('Ride (Custom, Zagrebin 22")', "ride"),  # "custom" is not a tom
    ("Sabian Hat Pedal", "hat_pedal"), ("Open HH", "hat_open"), ("Sabian Hat Semi-Open", None),
    ("Closed HH", "hat_closed"), ("Pearl Tom Floor", "tom_low"), ("Tom Mid", "tom_mid"), ("Pearl Tom 1", "tom_high"),
    ("Sabian Crash", "crash"), ("Snare Roll", None), ("Crash/Ride Bell", None), ("Cowbell", None),
])
def test_kit_instruments_get_their_pattern_role_from_the_name(name, role):
    assert drumkits._role(name) == role


@needs_kits
def test_every_kit_has_a_kick_a_snare_and_a_timekeeper():
    for name in drumkits.TRAIN_KITS + drumkits.DEV_KITS:
        kit = drumkits.load_kit(name)
        assert {"kick", "snare"} <= set(kit) and {"hat_closed", "ride"} & set(kit), name
        assert all(len(y) > 100 and np.isfinite(y).all() for layers in kit.values() for _, _, y in layers), name


@needs_kits
def test_drum_stem_is_seeded_at_its_level_and_hits_on_the_beat_grid():
    """The rendered hits fall on the pattern's sixteenth-note grid (humanised by ~6 ms), at the asked RMS."""
    import librosa

    sr, tempo = drumkits.SAMPLE_RATE, 120.0
    y = drumkits.drum_stem(3, "ForzeeStereo", tempo_bpm=tempo, seconds=8.0, rms=0.05)
    assert y.shape == (8 * sr,) and y.dtype == np.float32
    assert np.sqrt(np.mean(y ** 2)) == pytest.approx(0.05, rel=1e-3)
    np.testing.assert_array_equal(y, drumkits.drum_stem(3, "ForzeeStereo", tempo_bpm=tempo, seconds=8.0, rms=0.05))
    onsets = librosa.onset.onset_detect(y=y, sr=sr, units="time", backtrack=False)
    assert len(onsets) >= 8 * 2  # at least one hit per beat
    grid = 60.0 / tempo / 4  # sixteenths cover every style's positions (swing's triplets excepted)
    off = np.abs(onsets / grid - np.round(onsets / grid)) * grid
    assert np.median(off) < 0.03, off
