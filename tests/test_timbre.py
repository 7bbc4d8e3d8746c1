"""DDSP timbre transfer: the synths alone, then transfer keeps pitch, refuses what it cannot play."""
from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import torch

from benchmarks.evaluation import SHARED_DATA as SHARED
from covergen import api, timbre
from covergen.errors import ModelError, TransferError
from covergen.timbre import synth

from .conftest import SPEECH, TRUMPET

SR = 16000
HOP = 160
needs_shared = pytest.mark.realdata


def _shipped() -> list[str]:
    return [i["name"] for i in timbre.list_instruments() if i["origin"] == "shipped"]


def _spectrum_db(y: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    win = np.hanning(len(y))
    mag = np.abs(np.fft.rfft(y * win))
    return np.fft.rfftfreq(len(y), 1 / sr), 20 * np.log10(mag / mag.max() + 1e-12)


def _pyin_hz(y: np.ndarray, sr: int, frame_length: int = 2048) -> np.ndarray:
    """pyin f0 with NaN where unvoiced or more than 45 dB under the loudest frame.

    pyin calls near-digital-silence voiced (at a random low pitch); those frames say nothing about pitch.
    """
    # 20-cent pitch bins (librosa default 10) make the HMM 4x cheaper; ample for a 50-cent criterion.
    f0, voiced, _ = librosa.pyin(y, sr=sr, fmin=50.0, fmax=1600.0, frame_length=frame_length, hop_length=256,
                                 resolution=0.2)
    rms = librosa.feature.rms(y=y, frame_length=frame_length, hop_length=256)[0][: len(f0)]
    loud = 20 * np.log10(rms + 1e-9) > 20 * np.log10(rms.max() + 1e-9) - 45.0
    return np.where(voiced & loud, f0, np.nan)


def _tone(f0_hz: float, seconds: float, sr: int) -> np.ndarray:
    """A 'sine' with two weak overtones and 10 ms fades, float32 [shape=(samples,)].

    swift-f0 learned from natural sounds and gives a bare sine only ~0.5 confidence (borderline
    voiced); two overtones at -12/-20 dB make it read as the pitched note it is.
    """
    t = np.arange(int(seconds * sr)) / sr
    env = np.minimum(1, np.minimum(t, t[-1] - t) / 0.01)
    ph = 2 * np.pi * f0_hz * t
    return (0.3 * env * (np.sin(ph) + 0.25 * np.sin(2 * ph) + 0.1 * np.sin(3 * ph))).astype(np.float32)


def _frames(seconds: float) -> int:
    return int(seconds * SR / HOP)


def test_harmonic_peak_at_f0():
    t = _frames(1.0)
    f0 = torch.full((1, t), 440.0)
    dist = torch.zeros(1, t, 60)
    dist[..., 0], dist[..., 2] = 1.0, 0.5  # fundamental and 3rd harmonic
    y = synth.harmonic(f0, torch.full((1, t), 0.5), dist, sample_rate=SR, hop_samples=HOP)[0].numpy()
    assert y.shape == (t * HOP,)
    freqs, db = _spectrum_db(y, SR)
    assert abs(freqs[np.argmax(db)] - 440.0) < 3.0
    third = (freqs > 1300) & (freqs < 1340)
    assert abs(freqs[third][np.argmax(db[third])] - 1320.0) < 3.0
    # The distribution splits `amplitude`: 1 : 0.5 is 6 dB between the two peaks, RMS = 0.5 * sqrt(1+0.25)/1.5/sqrt(2).
    assert db[np.argmax(db)] - db[third].max() == pytest.approx(6.02, abs=0.5)
    assert np.sqrt(np.mean(y ** 2)) == pytest.approx(0.5 * np.sqrt(1.25) / 1.5 / np.sqrt(2), rel=0.02)


def test_harmonics_above_nyquist_are_zeroed():
    t = _frames(1.0)
    f0 = torch.full((1, t), 1100.0)
    only_high = torch.zeros(1, t, 60)
    only_high[..., 9] = 1.0  # 11 kHz: above the 8 kHz Nyquist
    y = synth.harmonic(f0, torch.ones(1, t), only_high, sample_rate=SR, hop_samples=HOP)
    assert float(y.abs().max()) < 1e-6
    # All 60 harmonics on: only the 7 below Nyquist sound, nothing lands between them (no aliases).
    y = synth.harmonic(f0, torch.ones(1, t), torch.ones(1, t, 60), sample_rate=SR, hop_samples=HOP)[0].numpy()
    freqs, db = _spectrum_db(y, SR)
    off_harmonic = np.abs(freqs / 1100.0 - np.round(freqs / 1100.0)) * 1100.0 > 40.0
    assert db[off_harmonic].max() < -60.0
    assert db[np.argmin(np.abs(freqs - 7700))] > -20.0  # the 7th harmonic still sounds


def test_noise_band_shaping():
    t, bands = _frames(2.0), 65
    g = torch.Generator().manual_seed(0)
    low = torch.zeros(1, t, bands)
    low[..., :9] = 1.0  # 0-1 kHz passband
    y = synth.filtered_noise(low, hop_samples=HOP, generator=g)[0].numpy()
    assert y.shape == (t * HOP,)
    freqs, db = _spectrum_db(y, SR)
    power = 10 ** (db / 10)
    below = power[freqs < 800].mean()
    above = power[freqs > 2500].mean()
    assert 10 * np.log10(below / above) > 30.0
    flat = synth.filtered_noise(torch.ones(1, t, bands), hop_samples=HOP, generator=g)[0].numpy()
    freqs, db = _spectrum_db(flat, SR)
    p = 10 ** (db / 10)
    ratio_db = 10 * np.log10(p[(freqs > 500) & (freqs < 2000)].mean() / p[(freqs > 4000) & (freqs < 7000)].mean())
    assert abs(ratio_db) < 3.0
    assert np.all(np.isfinite(flat))


def test_unknown_instrument_lists_known():
    with pytest.raises(ModelError, match="known instruments"):
        timbre.load_instrument("kazoo")


@pytest.fixture(scope="module")
def instrument():
    names = _shipped()
    if "tenor_sax" not in names:
        pytest.skip("timbre-tenor_sax is not built; run `python -m covergen.training.train_timbre`")
    return timbre.load_instrument("tenor_sax")


def test_list_instruments(instrument):
    info = {i["name"]: i for i in timbre.list_instruments()}["tenor_sax"]
    lo, hi = info["f0_range_hz"]
    assert 80 < lo < hi < 1000
    assert 0 < info["size_bytes"] < 10_000_000
    assert Path(info["card"]).is_file()
    assert timbre.load_instrument("tenor_sax") is instrument  # cached


def test_sine_keeps_pitch_and_shape(instrument):
    sr = 44100
    y = _tone(220.0, 2.0, sr)
    stereo = np.stack([y, y])
    out, info = timbre.transfer_stem(stereo, sample_rate=sr, instrument=instrument)
    assert out.shape == stereo.shape and out.dtype == np.float32
    assert np.max(np.abs(out)) > 0.01
    expected_hz = 220.0 * 2.0 ** info["octave_shift"]
    f0 = _pyin_hz(librosa.resample(out[0], orig_sr=sr, target_sr=SR), SR)
    cents = 1200 * np.log2(f0[np.isfinite(f0)] / expected_hz)
    assert len(cents) > 40
    assert np.median(np.abs(cents)) < 50


def test_rendered_melody_keeps_pitch(instrument):
    pretty_midi = pytest.importorskip("pretty_midi")
    from covergen.training.render import find_soundfont, render_midi

    if find_soundfont() is None:
        pytest.skip("no General MIDI SoundFont installed")
    midi = pretty_midi.PrettyMIDI()
    flute = pretty_midi.Instrument(program=73)
    for i, p in enumerate([72, 74, 76, 77, 79, 77, 76, 74]):
        flute.notes.append(pretty_midi.Note(velocity=90, pitch=p, start=0.1 + 0.35 * i, end=0.1 + 0.35 * i + 0.33))
    midi.instruments.append(flute)
    y = render_midi(midi, sample_rate=SR)
    out, info = timbre.transfer_stem(y, sample_rate=SR, instrument=instrument)
    f_in, f_out = _pyin_hz(y.mean(0), SR), _pyin_hz(out[0], SR)
    both = np.isfinite(f_in) & np.isfinite(f_out)
    assert both.sum() > 0.5 * np.isfinite(f_in).sum()
    cents = 1200 * np.log2(f_out[both] / (f_in[both] * 2.0 ** info["octave_shift"]))
    assert np.median(np.abs(cents)) < 50


@pytest.mark.parametrize("ratio", [0.8, 1.25])
def test_a_line_replayed_at_another_tempo_keeps_its_pitch_and_scales_its_time(instrument, ratio):
    """`make` plays the melody at the cover's tempo (controls time-scaled, no time-stretch): the output is
    len / ratio long, each note keeps its pitch, and starts at its onset / ratio."""
    sr, notes = SR, [(0.3, 220.0), (1.7, 330.0), (3.1, 247.0)]  # 0.8 s notes, 0.6 s rests
    y = np.zeros(int(4.3 * sr), np.float32)
    for onset, hz in notes:
        tone = _tone(hz, 0.8, sr)
        y[int(onset * sr):int(onset * sr) + len(tone)] += tone
    out, info = timbre.transfer_stem(y, sample_rate=sr, instrument=instrument, tempo_ratio=ratio)
    assert out.shape == (int(round(len(y) / ratio)),)
    f0 = _pyin_hz(out, sr)
    times = librosa.times_like(f0, sr=sr, hop_length=256)
    for onset, hz in notes:
        inside = (times > (onset + 0.15) / ratio) & (times < (onset + 0.65) / ratio) & np.isfinite(f0)
        assert inside.sum() > 10
        cents = 1200 * np.log2(f0[inside] / (hz * 2.0 ** info["octave_shift"]))
        assert np.median(np.abs(cents)) < 50
        before = (times > (onset - 0.3) / ratio) & (times < onset / ratio - 0.12)  # the rest (pyin: 128 ms frames)
        assert not np.isfinite(f0[before]).any()


def test_trumpet_to_two_instruments_keeps_pitch():
    from covergen import audio

    names = [n for n in ("tenor_sax", "trumpet", "violin", "nylon_guitar", "upright_bass") if n in _shipped()][:2]
    if len(names) < 2:
        pytest.skip("needs two shipped timbre models")
    y, sr = audio.load(TRUMPET, sample_rate=SR)
    f_in = _pyin_hz(audio.to_mono(y), SR)
    for name in names:
        out, info = timbre.transfer_stem(y, sample_rate=SR, instrument=name)
        f_out = _pyin_hz(out[0], SR)
        both = np.isfinite(f_in) & np.isfinite(f_out)
        cents = 1200 * np.log2(f_out[both] / (f_in[both] * 2.0 ** info["octave_shift"]))
        within = np.mean(np.abs(cents) < 50)
        assert both.sum() > 0.7 * np.isfinite(f_in).sum(), name
        assert within >= 0.9, f"{name}: only {within:.0%} of frames within 50 cents"


def test_sung_phrase_keeps_its_true_pitch():
    """Glides, scoops and vibrato of known f0 (a seed the bench does not report) survive the transfer.

    Measured with pyin's 40 ms frame: its 128 ms default smears sung glides (bench/timbre.md, known f0).
    """
    from benchmarks.bench_timbre import PYIN_FRAME, PYIN_HOP, _within_50_cents
    from benchmarks.sung_phrases import sung_phrase

    if "tenor_sax" not in _shipped():
        pytest.skip("needs the shipped tenor_sax model")
    y, f0, voiced = sung_phrase(100)
    out, info = timbre.transfer_stem(y, sample_rate=SR, instrument="tenor_sax")
    f_out = _pyin_hz(out, SR, frame_length=PYIN_FRAME)
    hits, both = _within_50_cents(f_out, f0 * 2.0 ** info["octave_shift"], voiced)
    assert both > 0.9 * voiced[np.minimum(np.arange(len(f_out)) * PYIN_HOP, len(y) - 1)].sum()
    within = hits / both
    assert within >= 0.95, f"only {within:.1%} of voiced frames within 50 cents of the true f0"


def test_speech_is_refused(instrument):
    from covergen import audio

    y, sr = audio.load(SPEECH)
    with pytest.raises(TransferError, match="not one melodic line"):
        timbre.transfer_stem(y, sample_rate=sr, instrument=instrument)
    out, info = timbre.transfer_stem(y[:, : 3 * sr], sample_rate=sr, instrument=instrument, force=True)
    assert info["refused"] and out.shape == y[:, : 3 * sr].shape


@needs_shared
@pytest.mark.parametrize("clip, why", [
    (SHARED / "real" / "Kevin_MacLeod_-_Vibe_Ace.ogg", "not one melodic line"),
    (SHARED / "multitrack" / "Music_Delta__80s_Rock" / "mixture.flac", "not one melodic line"),
    (SHARED / "multitrack" / "Music_Delta__80s_Rock" / "drums.flac", "no melodic phrase"),
])
def test_mixes_and_drums_are_refused(instrument, clip, why):
    from covergen import audio

    y, sr = audio.load(clip)
    with pytest.raises(TransferError, match=why):
        timbre.transfer_stem(y[:, : 20 * sr], sample_rate=sr, instrument=instrument)


def test_silence_is_refused(instrument):
    with pytest.raises(TransferError, match="silent"):
        timbre.transfer_stem(np.zeros((1, SR), np.float32), sample_rate=SR, instrument=instrument)


def test_bad_octave_is_refused(instrument):
    y = _tone(220.0, 1.0, SR)[None]
    with pytest.raises(TransferError, match="octave"):
        timbre.transfer_stem(y, sample_rate=SR, instrument=instrument, octave=9)


def test_train_instrument_from_folder(tmp_path, monkeypatch):
    import soundfile as sf

    from covergen import registry
    from covergen.training import train_timbre

    # Plumbing test, not a quality one: tiny batches keep two steps well under a second.
    small = train_timbre.TrainSettings(batch_size=2, clip_frames=100)
    monkeypatch.setattr(train_timbre, "TrainSettings", lambda: small)
    user = tmp_path / "user-models"
    monkeypatch.setenv("COVERGEN_USER_MODELS", str(user))
    rec = tmp_path / "recordings"
    rec.mkdir()
    for i, f0 in enumerate((196.0, 247.0, 330.0)):
        sf.write(rec / f"take{i}.wav", _tone(f0, 2.5, 22050), 22050)
    progress = []
    path = api.train_instrument(rec, name="test_hum", steps=2, on_progress=progress.append)
    assert path.parent == user and path.is_file()
    assert progress[-1] == pytest.approx(1.0)
    entry = registry.get("timbre-test_hum")
    assert entry.origin == "user" and (user / entry.card).is_file()
    info = {i["name"]: i for i in timbre.list_instruments()}["test_hum"]
    assert info["origin"] == "user" and 180 < info["f0_range_hz"][0] < info["f0_range_hz"][1] < 360
    out, _ = timbre.transfer_stem(_tone(220.0, 1.0, SR)[None], sample_rate=SR, instrument="test_hum")
    assert out.shape == (1, SR) and np.all(np.isfinite(out))
    with pytest.raises(ModelError, match="invalid instrument name"):
        api.train_instrument(rec, name="../evil", steps=1)
