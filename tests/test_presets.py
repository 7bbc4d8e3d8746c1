import pytest

from covergen import presets
from covergen.errors import PresetError

SHIPPED = ("jazz", "rock", "bossa_nova", "classical", "lofi")


def test_shipped_presets_load():
    assert set(SHIPPED) <= set(presets.available())
    jazz = presets.load("jazz")
    assert jazz.tempo_change_bpm == -15
    assert jazz.stems["vocals"].action == "transfer" and jazz.stems["vocals"].instrument == "tenor_sax"
    assert jazz.stems["bass"].instrument == "upright_bass"
    assert presets.load("Bossa-Nova").name == "bossa_nova"


def test_unknown_genre_lists_available():
    with pytest.raises(PresetError, match="unknown genre 'polka'.*jazz"):
        presets.load("polka")


@pytest.mark.parametrize("body,expected", [
    ('tempo_change_bpm = -15\nswing = 1', "unknown key 'swing'"),
    ('[stems.vocals]\naction = "transfer"', "needs instrument"),
    ('[stems.vocals]\naction = "sing"', "action='sing'"),
    ('[stems.voice]\naction = "keep"', "unknown stem"),
    ('[stems.drums]\ngain_db = "loud"', "stems.drums.gain_db: expected a number"),
    ('[stems.drums]\neq = [{ kind = "notch", cutoff_hz = 100 }]', "kind='notch'"),
    ('[stems.drums]\neq = [{ kind = "peak", cutoff_hz = 100, width = 3 }]', "unknown key 'width'"),
    ('[master]\nreverb_wet = 1.5', "reverb_wet=1.5 not in [0, 1]"),
    ('[master]\ntarget_lufs = 3', "target_lufs=3.0"),
    ('tempo_change_bpm = = 3', "invalid TOML"),
])
def test_validation_errors_name_file_and_key(tmp_path, body, expected):
    file = tmp_path / "mine.toml"
    file.write_text(body)
    with pytest.raises(PresetError) as info:
        presets.load(file)
    assert "mine.toml" in str(info.value) and expected in str(info.value)


def test_custom_preset_file(tmp_path):
    file = tmp_path / "dub.toml"
    file.write_text('name = "dub"\ntempo_change_bpm = -5\n[stems.drums]\ngain_db = 3\nreverb_wet = 0.4\n')
    p = presets.load(file)
    assert p.name == "dub" and p.stems["drums"].reverb_wet == 0.4 and p.stems["vocals"].action == "keep"


def test_melody_override_replaces_only_the_band_melody():
    """`make --melody`: the preset's band plays under another melody; everything else stays the preset's."""
    rock = presets.load("rock")
    sax = presets.with_melody(rock, "tenor_sax")
    assert rock.band.melody == "voice" and sax.band.melody == "tenor_sax"
    assert sax.band.resolved is rock.band.resolved and sax.stems == rock.stems and sax.master == rock.master
    assert presets.with_melody(presets.load("jazz"), "voice").band.melody == "voice"
    with pytest.raises(PresetError, match="--melody: unknown instrument 'kazoo'"):
        presets.with_melody(rock, "kazoo")
