"""covergen.beattrack is librosa's beat tracker ported to cached numba: it must give librosa's beats."""
import numpy as np
import pytest

from covergen import analysis, audio
from covergen.beattrack import beat_frames


def _librosa_beats(env, *, bpm, sr, hop, tightness=100.0, trim=True):
    import librosa

    return librosa.beat.beat_track(onset_envelope=env, sr=sr, hop_length=hop, bpm=bpm, tightness=tightness,
                                   trim=trim, units="frames")[1]


def test_same_beats_as_librosa_on_the_demo_song(demo_song):
    y, sr = demo_song
    y22 = analysis._mono_at_analysis_rate(y, sr)
    envelopes = [audio.onset_strength(y22, sample_rate=22050, hop_samples=hop) for hop in (256, 512)]
    for env, hop in zip(envelopes, (256, 512)):
        for bpm in (61.0, 97.3, 123.0, 180.0):
            for trim in (True, False):
                want = _librosa_beats(env, bpm=bpm, sr=22050, hop=hop, trim=trim)
                got = beat_frames(env, bpm=bpm, frame_rate=22050 / hop, trim=trim)
                assert len(want) > 10 and np.array_equal(got, want), (hop, bpm, trim)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_beats_as_librosa_on_random_envelopes(dtype):
    rng = np.random.default_rng(7)
    for trial in range(6):
        n = int(rng.integers(300, 3000))
        env = (rng.random(n) ** 4 * (rng.random(n) < 0.3)).astype(dtype)
        env[: int(rng.integers(0, 50))] = 0.0  # silence before the music
        bpm, tightness = float(rng.uniform(50, 200)), float(rng.choice([20.0, 100.0, 400.0]))
        want = _librosa_beats(env, bpm=bpm, sr=22050, hop=512, tightness=tightness)
        got = beat_frames(env, bpm=bpm, frame_rate=22050 / 512, tightness=tightness)
        assert np.array_equal(got, want), (trial, bpm, tightness)


def test_no_onsets_no_beats_and_bad_tempo_is_an_error():
    assert beat_frames(np.zeros(400), bpm=120.0, frame_rate=43.0).size == 0
    with pytest.raises(ValueError, match="bpm"):
        beat_frames(np.ones(400), bpm=0.0, frame_rate=43.0)
