"""Cover check: a transposed, slowed copy of a real song is recognised; other songs are not.

Uses the real recordings in ../shared/data/real (tests marked `realdata`: skipped where that folder
is absent, an error when CI is set) and the shipped `coverid-background` model.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from covergen import audio, coverid, registry
from covergen.errors import CoverCheckError

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
SONG = REAL / "Kevin_MacLeod_-_Vibe_Ace.ogg"
OTHERS = ["Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.ogg",
          "442789__lena-orsa__happy-music-pistachio-ice-cream-ragtime.ogg"]
SR = coverid.SAMPLE_RATE

needs_shared = pytest.mark.realdata


def _load(path: Path) -> np.ndarray:
    y, _ = audio.load(path, sample_rate=SR)
    return audio.to_mono(y)


@pytest.fixture(scope="module")
def song() -> np.ndarray:
    return _load(SONG)


@pytest.fixture(scope="module")
def cover(song) -> np.ndarray:
    """The song 2 semitones up and 10 % slower: what a cover changes and the check must ignore."""
    import librosa

    shifted = librosa.effects.pitch_shift(song, sr=SR, n_steps=2.0)
    return librosa.effects.time_stretch(shifted, rate=0.9).astype(np.float32)


@pytest.fixture(scope="module")
def library(tmp_path_factory, cover) -> Path:
    """A folder: the cover, two other real songs, a 20 s excerpt (qmax only), and three files the check must skip."""
    folder = tmp_path_factory.mktemp("library")
    sf.write(folder / "cover.wav", cover, SR)
    for name in OTHERS:
        sf.write(folder / (Path(name).stem + ".flac"), _load(REAL / name)[: 70 * SR], SR)
    sf.write(folder / "excerpt.wav", _load(REAL / OTHERS[1])[30 * SR: 50 * SR], SR)  # under 75 beats
    sf.write(folder / "short.wav", _load(REAL / OTHERS[1])[30 * SR: 33 * SR], SR)  # 3 s: too few beats for qmax
    sf.write(folder / "silence.wav", np.zeros(40 * SR, dtype=np.float32), SR)
    (folder / "notes.txt").write_text("not audio, not indexed")
    (folder / "broken.ogg").write_bytes(b"OggS but not really")
    return folder


@needs_shared
def test_transposed_slowed_copy_is_a_cover(song, cover):
    original, candidate = coverid.features(song, sample_rate=SR), coverid.features(cover, sample_rate=SR)
    unrelated = coverid.features(_load(REAL / OTHERS[1]), sample_rate=SR)
    result = coverid.check(original, candidate)
    assert result["verdict"] == "cover", result
    assert result["z"] >= result["threshold"]
    assert set(result) >= {"score", "z", "verdict", "threshold"}
    other = coverid.check(original, unrelated)
    assert other["verdict"] == "not a cover", other
    assert other["z"] < result["z"] - 1.0
    assert coverid.similarity(original, unrelated) < coverid.similarity(original, candidate)


@needs_shared
def test_strong_method_agrees(song, cover):
    original = coverid.beat_chroma(song, sample_rate=SR)
    candidate = coverid.beat_chroma(cover, sample_rate=SR)
    unrelated = coverid.beat_chroma(_load(REAL / OTHERS[0])[: 70 * SR], sample_rate=SR)
    result = coverid.check(original, candidate, method="qmax")
    assert result["verdict"] == "cover", result
    other = coverid.check(original, unrelated, method="qmax")
    assert other["verdict"] == "not a cover", other
    assert coverid.similarity_strong(original, candidate) > 2 * coverid.similarity_strong(original, unrelated)
    # symmetric, as the benchmark assumes
    assert coverid.similarity_strong(candidate, original) == pytest.approx(
        coverid.similarity_strong(original, candidate), abs=1e-9)


@needs_shared
def test_index_ranks_the_cover_first_and_records_bad_files(song, library, monkeypatch):
    index_path = coverid.build_index(library)
    assert index_path == library / coverid.INDEX_NAME
    index = coverid.load_index(library)
    assert sorted(p.name for p in index.paths) == sorted(["cover.wav", "excerpt.wav"] +
                                                         [Path(n).stem + ".flac" for n in OTHERS])
    errors = {p.name: msg for p, msg in index.errors.items()}
    assert set(errors) == {"short.wav", "silence.wav", "broken.ogg"}
    assert f"qmax needs {coverid.MIN_BEATS['qmax']}" in errors["short.wav"]
    assert "silent" in errors["silence.wav"]
    assert "not a readable audio file" in errors["broken.ogg"]

    ranked = coverid.rank(coverid.features(song, sample_rate=SR), index_path)
    assert [p.name for p, _ in ranked][0] == "cover.wav"
    assert ranked[0][1] > ranked[1][1] and len(ranked) == 3
    ranked = coverid.rank(coverid.beat_chroma(song, sample_rate=SR), index, method="qmax", k=1)
    assert [p.name for p, _ in ranked] == ["cover.wav"]
    # the 20 s excerpt is ranked by qmax (first for its own piece), not by 2dftm (under 75 beats)
    ragtime = coverid.beat_chroma(_load(REAL / OTHERS[1])[: 70 * SR], sample_rate=SR)
    ranked = coverid.rank(ragtime, index, method="qmax")
    assert len(ranked) == 4 and {p.name for p, _ in ranked[:2]} == {"excerpt.wav", Path(OTHERS[1]).stem + ".flac"}

    # a second run reads nothing unchanged; a touched file is read again
    calls = []
    real = coverid.beat_chroma
    monkeypatch.setattr(coverid, "beat_chroma", lambda y, **kw: calls.append(1) or real(y, **kw))
    coverid.build_index(library)
    assert calls == []
    cover_file = library / "cover.wav"
    sf.write(cover_file, sf.read(cover_file, dtype="float32")[0][: 50 * SR], SR)
    coverid.build_index(library)
    assert len(calls) == 1
    assert len(coverid.load_index(index_path).paths) == 4


@needs_shared
def test_too_short_says_which_method_needs_what(song):
    """10 s is enough for qmax; only 2dftm keeps its 75-beat patch, and the message says so."""
    assert coverid.beat_chroma(song[: 10 * SR], sample_rate=SR).shape[1] >= coverid.MIN_BEATS["qmax"]
    with pytest.raises(CoverCheckError, match=rf"^only \d+ beats, 2dftm needs 75: .*; qmax needs only "
                                              rf"{coverid.MIN_BEATS['qmax']} \(--method qmax\)$"):
        coverid.features(song[: 10 * SR], sample_rate=SR)
    with pytest.raises(CoverCheckError, match=rf"^only \d+ beats, qmax needs {coverid.MIN_BEATS['qmax']}: give at least"):
        coverid.beat_chroma(song[: 3 * SR], sample_rate=SR)


@needs_shared
def test_12_s_excerpt_and_its_transposed_slower_copy_are_a_cover(song):
    """A 12 s clip, and the same clip 3 semitones up and 15 % slower (Rubber Band), get the verdict
    "cover" with qmax; 12 s of another real piece against the clip does not."""
    import pedalboard

    clip = np.ascontiguousarray(song[20 * SR: 32 * SR])
    copy = pedalboard.time_stretch(clip, SR, stretch_factor=0.85, pitch_shift_in_semitones=3.0)[0]
    assert len(copy) / SR == pytest.approx(12 / 0.85, abs=0.2)
    other = _load(REAL / OTHERS[1])[20 * SR: 32 * SR]
    same = coverid.compare(clip, copy, sample_rate=SR)
    assert same["method"] == "qmax" and same["verdict"] == "cover", same
    different = coverid.compare(clip, other, sample_rate=SR)
    assert different["verdict"] == "not a cover", different
    assert different["z"] < same["z"] - 2.0
    # `make`'s check (and so its guard) gets qmax's verdict on a clip this short; 2dftm says why it cannot
    from covergen import pipeline, presets

    reference = pipeline._reference(clip, SR, presets.load("jazz"))
    report = pipeline._cover_check(reference, copy, SR, 0.85)
    assert report["status"] == "done" and report["verdict"] == "cover", report
    assert report["2dftm"]["status"] == "skipped" and "2dftm needs 75" in report["2dftm"]["reason"]
    # the copy's beats are tracked at the tempo it was made at; that does not make another piece a cover
    assert report["beats_at_bpm"]["cover"] == pytest.approx(0.85 * reference.tempo_bpm, abs=0.01)
    assert pipeline._cover_check(reference, other, SR, 1.0)["verdict"] == "not a cover"


def test_beats_tracked_at_a_given_tempo_follow_it():
    """`make` tracks the cover's beats at the tempo it made it at (a bossa nova band otherwise reads at double
    time): a 90 BPM groove with sixteenth hats gets one beat per given beat, at the tempo the tracker
    finds by itself and at half and double that."""
    bpm, beats_n = 90.0, 40
    beat = 60 / bpm
    y = np.zeros(int((beats_n + 1) * beat * SR), dtype=np.float32)
    rng = np.random.default_rng(0)
    for i in range(beats_n * 4):  # sixteenth-note hats
        t = int(i * beat / 4 * SR)
        y[t:t + 600] += 0.3 * rng.standard_normal(600).astype(np.float32) * np.exp(-np.arange(600) / 100)
    for i in range(beats_n):  # a kick on the beat, a C major stab on its 'and'
        k, t = int(i * beat * SR), int((i + 0.5) * beat * SR)
        y[k:k + 3000] += 0.2 * np.sin(2 * np.pi * 60 * np.arange(3000) / SR).astype(np.float32)
        tone = sum(np.sin(2 * np.pi * f * np.arange(4000) / SR) for f in (261.6, 329.6, 392.0))
        y[t:t + 4000] += 0.2 * (tone * np.exp(-np.arange(4000) / 1500)).astype(np.float32)
    free, free_bpm = coverid.beat_chroma_and_tempo(y, sample_rate=SR)
    assert free_bpm == pytest.approx(bpm, rel=0.03)
    for given in (bpm / 2, bpm, 2 * bpm):
        chroma, at = coverid.beat_chroma_and_tempo(y, sample_rate=SR, tempo_bpm=given)
        assert at == given
        assert chroma.shape[1] == pytest.approx(free.shape[1] * given / bpm, abs=2)


def test_silence_raises_clear_error():
    with pytest.raises(CoverCheckError, match="silent"):
        coverid.features(np.zeros((2, 60 * SR), dtype=np.float32), sample_rate=SR)


def test_steady_tone_has_no_beats():
    t = np.arange(60 * SR) / SR
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    with pytest.raises(CoverCheckError, match="no beats detected"):
        coverid.features(tone, sample_rate=SR)


def test_2dftm_ignores_transposition():
    """Rolling chroma (a transposition) leaves the feature unchanged; the OTI finds the roll."""
    rng = np.random.default_rng(0)
    chroma = rng.random((12, 120)) ** 3
    ref = coverid.features_from_chroma(chroma)
    for semitones in (1, 2, 5, 11):
        rolled = np.roll(chroma, semitones, axis=0)
        np.testing.assert_allclose(coverid.features_from_chroma(rolled), ref, atol=1e-6)
        assert coverid._oti(chroma, rolled) == (12 - semitones) % 12
    other = coverid.features_from_chroma(rng.random((12, 120)) ** 3)
    assert coverid.similarity(ref, other) < 0.999


@needs_shared
def test_pitch_shift_keeps_features(song):
    """Rubber Band (pedalboard's, in-process) keeps transients; librosa's phase vocoder smears them and
    the beat tracker then locks to another tempo (129 -> 103 BPM on this song), which no chroma feature survives."""
    import pedalboard

    ref = coverid.features(song, sample_rate=SR)
    shifted = pedalboard.time_stretch(np.ascontiguousarray(song, dtype=np.float32), SR, stretch_factor=1.0,
                                      pitch_shift_in_semitones=3.0)
    up = coverid.features(shifted, sample_rate=SR)
    other = coverid.features(_load(REAL / OTHERS[1]), sample_rate=SR)
    assert coverid.similarity(ref, up) > 0.95
    assert 1 - coverid.similarity(ref, up) < 0.5 * (1 - coverid.similarity(ref, other))


def test_features_accept_other_rates_and_shapes():
    """A click track at 44.1 kHz stereo and the same at 22.05 kHz mono give one feature."""
    def clicks(sr):
        y = np.zeros(int(50 * sr), dtype=np.float32)
        for k, start in enumerate(np.arange(0, 49.5, 0.5)):
            n = np.arange(int(0.1 * sr))
            y[int(start * sr):int(start * sr) + len(n)] += (
                0.5 * np.sin(2 * np.pi * [262, 330, 392, 494][k // 8 % 4] * n / sr) * np.exp(-n / (0.02 * sr)))
        return y
    a = coverid.features(np.stack([clicks(44100)] * 2), sample_rate=44100)
    b = coverid.features(clicks(SR), sample_rate=SR)
    assert a.shape == b.shape == (12 * (coverid.PATCH_BEATS // 2 + 1),)
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-5)
    assert coverid.similarity(a, b) > 0.99


def test_background_ships_through_the_registry():
    path = registry.path("coverid-background")
    bg = coverid.load_background()
    assert path.name == "coverid-background.npz"
    assert set(bg.thresholds) == set(coverid.METHODS)
    assert len(bg.names) == bg.features.shape[0] == len(bg.chromas) >= 100
    np.testing.assert_allclose(np.linalg.norm(bg.features, axis=1), 1.0, atol=1e-4)


def test_missing_index_and_empty_folder(tmp_path):
    with pytest.raises(CoverCheckError, match="covergen index"):
        coverid.load_index(tmp_path)
    coverid.build_index(tmp_path)
    with pytest.raises(CoverCheckError, match="no comparable songs"):
        coverid.rank(np.ones(12 * (coverid.PATCH_BEATS // 2 + 1), np.float32), tmp_path)
    with pytest.raises(CoverCheckError, match="not a folder"):
        coverid.build_index(tmp_path / "nope")
