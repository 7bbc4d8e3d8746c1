import os

import numpy as np
import pytest
import soundfile as sf

from covergen import audio
from covergen.errors import AudioContentError, AudioLoadError, OutputError

from .conftest import sine, write


@pytest.mark.parametrize("sr,subtype,channels", [(8000, "PCM_16", 1), (96000, "PCM_24", 2), (44100, "FLOAT", 2)])
def test_load_any_rate_depth_and_channels(tmp_path, sr, subtype, channels):
    y = np.stack([sine(440, 1.5, sr)] * channels)
    path = write(tmp_path / "x.wav", y, sr, subtype)
    out, out_sr = audio.load(path)
    assert out_sr == sr and out.shape == (channels, y.shape[1]) and out.dtype == np.float32
    assert np.max(np.abs(out - y)) < 1e-3
    resampled, rate = audio.load(path, sample_rate=22050)
    assert rate == 22050 and abs(resampled.shape[1] - 1.5 * 22050) <= 1


@pytest.mark.parametrize("fmt", ["FLAC", "OGG", "MP3"])
def test_load_compressed_formats(tmp_path, fmt):
    y = np.stack([sine(440, 2.0, 44100)] * 2)
    path = tmp_path / f"x.{fmt.lower()}"
    sf.write(path, y.T, 44100, format=fmt)
    out, sr = audio.load(path)
    assert sr == 44100 and out.shape[0] == 2 and abs(out.shape[1] - y.shape[1]) < 2048  # mp3 pads frames
    spectrum = np.abs(np.fft.rfft(out[0]))
    assert np.argmax(spectrum) * sr / out.shape[1] == pytest.approx(440, abs=2)


def test_load_errors_name_the_file(tmp_path):
    cases = {}
    cases["missing"] = (tmp_path / "nope.wav", AudioLoadError, "no such file")
    (tmp_path / "empty.wav").write_bytes(b"")
    cases["empty"] = (tmp_path / "empty.wav", AudioLoadError, "empty file")
    (tmp_path / "text.wav").write_bytes(b"this is not audio at all" * 100)
    cases["corrupt"] = (tmp_path / "text.wav", AudioLoadError, "not a readable audio file")
    write(tmp_path / "tiny.wav", sine(440, 0.005, 44100), 44100)
    cases["5ms"] = (tmp_path / "tiny.wav", AudioContentError, "5 ms")
    write(tmp_path / "silent.wav", np.zeros(44100 * 2, np.float32), 44100)
    cases["silence"] = (tmp_path / "silent.wav", AudioContentError, "silent")
    for name, (path, exc, text) in cases.items():
        with pytest.raises(exc) as info:
            audio.load(path)
        message = str(info.value)
        assert str(path) in message and text in message and "\n" not in message, name


@pytest.mark.parametrize("keep_bytes", [60, 100_000])
def test_truncated_wav_is_rejected(tmp_path, keep_bytes):
    path = write(tmp_path / "full.wav", sine(440, 3.0, 44100), 44100)
    trunc = tmp_path / "trunc.wav"
    trunc.write_bytes(path.read_bytes()[:keep_bytes])  # a cut-off download
    with pytest.raises((AudioLoadError, AudioContentError), match="trunc.wav.*(truncated|ms of audio)"):
        audio.load(trunc)


def test_save_is_atomic_and_checks_folder(tmp_path):
    y = np.stack([sine(220, 1.0, 16000)] * 2)
    out = audio.save(tmp_path / "a.flac", y, sample_rate=16000)
    back, sr = audio.load(out)
    assert sr == 16000 and np.max(np.abs(back - y)) < 1e-4
    assert [p.name for p in tmp_path.iterdir()] == ["a.flac"]  # no temp files left
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's owner-only mode
    with pytest.raises(OutputError, match="does not exist"):
        audio.save(tmp_path / "missing" / "a.wav", y, sample_rate=16000)
    with pytest.raises(OutputError, match="unsupported output format"):
        audio.save(tmp_path / "a.mp3", y, sample_rate=16000)


def test_two_hour_file_is_refused_before_decoding(tmp_path):
    path = tmp_path / "two-hours.wav"
    with sf.SoundFile(path, "w", samplerate=1000, channels=1, subtype="PCM_U8") as fh:
        fh.write(np.zeros(2 * 3600 * 1000, np.float32))
    with pytest.raises(AudioContentError, match="two-hours.wav: 120.0 min is longer than the 20 min limit"):
        audio.load(path)


@pytest.mark.parametrize("bpm", [72.0, 128.0])
def test_tempo_in_bounded_memory_is_librosas(bpm):
    """audio.tempo_bpm sums librosa's tempogram a piece at a time: librosa's tempo, every window or every 4th."""
    import librosa

    sr, hop = 22050, 256
    rng = np.random.default_rng(0)
    y = 0.01 * rng.standard_normal(40 * sr).astype(np.float32)
    for t in np.arange(0.3, 40, 60 / bpm):  # a click per beat, an accent every 4th
        i = int(t * sr)
        y[i:i + 300] += (0.8 if round(t * bpm / 60) % 4 == 0 else 0.4) * np.hanning(600)[300:].astype(np.float32)
    env = audio.onset_strength(y, sample_rate=sr, hop_samples=hop, chunk_frames=500)
    assert np.allclose(env, librosa.onset.onset_strength(y=y, sr=sr, hop_length=hop), atol=1e-4)
    expected = float(librosa.feature.tempo(onset_envelope=env, sr=sr, hop_length=hop)[0])
    assert audio.tempo_bpm(env, sample_rate=sr, hop_samples=hop, chunk_frames=700) == pytest.approx(expected, abs=1e-6)
    assert audio.tempo_bpm(env, sample_rate=sr, hop_samples=hop, frame_step=4) == pytest.approx(expected, rel=0.02)
    assert audio.tempo_bpm(env, sample_rate=sr, hop_samples=hop, frame_step=4) == pytest.approx(bpm, rel=0.03)
