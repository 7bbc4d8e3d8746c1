"""The lead line of an instrumental: the tune found and isolated over the chords under it."""
from __future__ import annotations

import numpy as np
import pytest

from covergen import lead, mix, pipeline, separate, timbre

SR = separate.SAMPLE_RATE


def _tone(f0_hz: np.ndarray, amp: float, partials: int, decay: float) -> np.ndarray:
    phase = 2 * np.pi * np.cumsum(f0_hz) / SR
    return sum(amp * decay ** k * np.sin((k + 1) * phase) for k in range(partials))


def _instrumental(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """8 s: a vibrato lead (0.5 s notes, with 1 s of rest in the middle) over a sustained triad played
    by a rich pad. Returns (mix, lead alone, the lead's f0 per sample (0 in rests), the pad alone)."""
    rng = np.random.default_rng(seed)
    n = 8 * SR
    t = np.arange(n) / SR
    tune = rng.choice([67, 69, 71, 72, 74, 76], size=16)
    f0 = 440.0 * 2 ** ((np.repeat(tune, SR // 2) - 69) / 12)
    f0 = f0 * 2 ** (0.3 * np.sin(2 * np.pi * 5.5 * t) / 12)  # 30 cents of vibrato
    rest = (t >= 3.5) & (t < 4.5)
    env = np.where(rest, 0.0, 1.0)
    env = np.convolve(env, np.ones(441) / 441, mode="same")  # 10 ms attacks and releases
    melody = env * _tone(f0, 0.25, 8, 0.7)
    pad = sum(_tone(np.full(n, 440.0 * 2 ** ((m - 69) / 12)), 0.08, 6, 0.6) for m in (48, 52, 55))
    return (melody + pad).astype(np.float32)[None], melody.astype(np.float32), np.where(rest, 0.0, f0), pad


def test_the_lead_is_tracked_within_50_cents_and_rests_where_it_rests():
    y, _, f0, _ = _instrumental()
    line = lead.lead_line(y, sample_rate=SR)
    at = np.minimum((np.arange(len(line.f0_hz)) * lead.HOP), len(f0) - 1)
    truth = f0[at]
    change = np.zeros(len(truth), bool)
    change[1:] = np.diff(truth == 0)
    edge = np.convolve(change, np.ones(17), mode="same") > 0  # 100 ms each side of the rest's edges
    playing = (truth > 0) & ~edge
    cents = 1200 * np.abs(np.log2(line.f0_hz[playing] / truth[playing]))
    assert np.mean(cents < 50) >= 0.9, f"{np.mean(cents < 50):.0%} of lead frames within 50 cents"
    assert line.voiced[playing].mean() >= 0.9
    rest = (truth == 0) & ~edge
    assert line.voiced[rest].mean() <= 0.1, "the pad alone is not a lead line"


def test_the_isolated_line_is_the_lead_not_the_chords():
    y, melody, _, pad = _instrumental(1)
    out = lead.lead_line(y, sample_rate=SR).audio[0]

    def corr(a, b):
        return float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))

    assert out.shape == (y.shape[1],)
    assert corr(out, melody) >= 0.9
    assert abs(corr(out, pad)) <= 0.2
    # its notes are the lead's (the melody tracker plays the isolated line as one voice)
    notes = timbre.melody_notes(out, sample_rate=SR)
    truth = timbre.melody_notes(melody, sample_rate=SR)
    assert len(truth) >= 10 and abs(len(notes) - len(truth)) <= 2
    assert [round(n.pitch) for n in notes[:5]] == [round(n.pitch) for n in truth[:5]]


def test_an_instrumental_takes_its_melody_from_the_other_stem():
    y, _, _, _ = _instrumental(2)
    song_lufs = mix.integrated_lufs(y, sample_rate=SR)
    quiet = y * np.float32(10 ** (-(pipeline.INSTRUMENTAL_VOCALS_LU + 3) / 20))  # bleed the separator called voice
    assert pipeline._melody_stem(quiet, song_lufs) == pipeline.LEAD_LINE
    assert pipeline._melody_stem(np.zeros_like(y), song_lufs) == pipeline.LEAD_LINE
    assert pipeline._melody_stem(y * np.float32(0.5), song_lufs) == "vocals"  # a singer 6 LU under the song
    stems = {"vocals": quiet, "other": y}
    melody, facts = pipeline._melody_of(stems, pipeline.LEAD_LINE)
    assert melody.shape == (1, y.shape[1]) and facts["voiced_share"] > 0.5
    assert pipeline._melody_of(stems, "vocals")[0] is quiet


def test_a_loud_vocal_stem_without_a_tune_gives_way_to_the_lead_line():
    """The separator can call a lead instrument's attacks or the drums' bleed a voice, loud enough for the
    level rule: when the vocal stem's notes cover little of the song and the lead line's much more, the lead
    line is the melody; a vocal stem that holds the tune, or a song with no lead line, keeps the vocals."""
    y, melody, _, pad = _instrumental(4)
    rng = np.random.default_rng(4)
    clicks = np.zeros(y.shape[1], np.float32)
    for start in range(0, y.shape[1] - 2205, SR // 4):  # a noise burst on every eighth: bleed, no pitch
        clicks[start:start + 2205] = rng.standard_normal(2205) * np.exp(-np.arange(2205) / 300)
    clicks *= np.float32(np.sqrt(np.mean(y ** 2)) / np.sqrt(np.mean(clicks ** 2)) * 0.7)  # about 3 dB under
    song_lufs = mix.integrated_lufs(y, sample_rate=SR)
    assert pipeline._melody_stem(clicks[None], song_lufs) == "vocals"  # the level rule alone keeps it
    stem, notes = pipeline._melody_and_notes({"vocals": clicks[None], "other": y}, song_lufs, "test")
    assert stem == pipeline.LEAD_LINE and len(notes) >= 10
    stem, notes = pipeline._melody_and_notes({"vocals": melody[None], "other": y}, song_lufs, "test")
    assert stem == "vocals" and pipeline._note_share(notes, 8.0) >= pipeline.MIN_VOCAL_MELODY_SHARE
    stem, _ = pipeline._melody_and_notes({"vocals": clicks[None], "other": pad[None].astype(np.float32)},
                                         song_lufs, "test")
    assert stem == "vocals"  # chords alone: no lead line to take


def test_noise_and_silence_have_no_lead_line():
    rng = np.random.default_rng(3)
    for y in (0.1 * rng.standard_normal((2, 3 * SR)), np.zeros((2, 3 * SR))):
        line = lead.lead_line(y.astype(np.float32), sample_rate=SR)
        assert line.facts()["voiced_share"] <= 0.02
        assert float(np.max(np.abs(line.audio))) <= 0.01


@pytest.mark.slow
@pytest.mark.parametrize("seed", [3, 4])
def test_a_rendered_instrumental_gets_its_tune_from_the_other_stem(seed, tmp_path, monkeypatch):
    """End to end through separation and analysis: a rendered song whose lead is a General MIDI instrument
    (spleeter leaves it in `other`) gets its melody from the lead line, and the lead sheet's notes are the
    song's: >= 75% of its true notes found with the same pitch, onset within 100 ms (dev seeds; 84% and 93%
    when written)."""
    from covergen.training import leadsheet_songs

    monkeypatch.setenv("COVERGEN_CACHE", str(tmp_path))
    y, truth = leadsheet_songs.song(seed, duration_s=20)
    sheet, _, _ = pipeline.lead_sheet_of(y, leadsheet_songs.SAMPLE_RATE, name=f"seed {seed}", separator="spleeter")
    assert sheet.source["melody_stem"] == pipeline.LEAD_LINE
    found = [any(abs(m.onset_s - n.onset_s) <= 0.1 and m.pitch == n.pitch for m in sheet.melody) for n in truth.melody]
    assert len(truth.melody) >= 20 and np.mean(found) >= 0.75, f"{np.mean(found):.0%} of the true notes found"
    assert len(sheet.melody) <= 1.25 * len(truth.melody)
