"""Genre presets: frozen dataclasses loaded from TOML files in the repo's `presets/` folder.

A preset says, per stem, what to do (transfer to an instrument model, keep, mute) and how
to mix it (gain, EQ, compressor, reverb, pan), the tempo change, and the master chain.
Every key is validated on load; an unknown or out-of-range key raises PresetError
naming the file and the key.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path

from .errors import PresetError
from .genre.classifier import GENRES
from .separate import STEMS

__all__ = ["EqBand", "CompressorSettings", "StemPreset", "MasterPreset", "GenrePreset", "BandPreset",
           "presets_dir", "available", "load", "load_file"]

ACTIONS = ("keep", "transfer", "mute")
BAND_MODES = ("arrange", "revoice")
EQ_KINDS = ("highpass", "lowpass", "lowshelf", "highshelf", "peak")


def _check(cond: bool, where: str, message: str) -> None:
    if not cond:
        raise PresetError(f"{where}: {message}")


@dataclass(frozen=True)
class EqBand:
    kind: str
    cutoff_hz: float
    gain_db: float = 0.0
    q: float = 0.707
    where: str = field(default="eq", repr=False, compare=False)

    def __post_init__(self):
        _check(self.kind in EQ_KINDS, self.where, f"kind={self.kind!r} is not one of {', '.join(EQ_KINDS)}")
        _check(10.0 <= self.cutoff_hz <= 20000.0, self.where, f"cutoff_hz={self.cutoff_hz} not in [10, 20000]")
        _check(-24.0 <= self.gain_db <= 24.0, self.where, f"gain_db={self.gain_db} not in [-24, 24]")
        _check(0.1 <= self.q <= 10.0, self.where, f"q={self.q} not in [0.1, 10]")


@dataclass(frozen=True)
class CompressorSettings:
    threshold_db: float = -18.0
    ratio: float = 2.0
    attack_ms: float = 10.0
    release_ms: float = 150.0
    where: str = field(default="compressor", repr=False, compare=False)

    def __post_init__(self):
        _check(-60.0 <= self.threshold_db <= 0.0, self.where, f"threshold_db={self.threshold_db} not in [-60, 0]")
        _check(1.0 <= self.ratio <= 20.0, self.where, f"ratio={self.ratio} not in [1, 20]")
        _check(0.1 <= self.attack_ms <= 200.0, self.where, f"attack_ms={self.attack_ms} not in [0.1, 200]")
        _check(5.0 <= self.release_ms <= 2000.0, self.where, f"release_ms={self.release_ms} not in [5, 2000]")


@dataclass(frozen=True)
class StemPreset:
    action: str = "keep"
    instrument: str | None = None
    gain_db: float = 0.0
    pan: float = 0.0
    eq: tuple[EqBand, ...] = ()
    compressor: CompressorSettings | None = None
    reverb_wet: float = 0.0
    distortion_drive_db: float = 0.0
    where: str = field(default="stem", repr=False, compare=False)

    def __post_init__(self):
        _check(self.action in ACTIONS, self.where, f"action={self.action!r} is not one of {', '.join(ACTIONS)}")
        if self.action == "transfer":
            _check(bool(self.instrument), self.where, "action='transfer' needs instrument = \"<name>\"")
        _check(-60.0 <= self.gain_db <= 24.0, self.where, f"gain_db={self.gain_db} not in [-60, 24]")
        _check(-1.0 <= self.pan <= 1.0, self.where, f"pan={self.pan} not in [-1, 1]")
        _check(0.0 <= self.reverb_wet <= 1.0, self.where, f"reverb_wet={self.reverb_wet} not in [0, 1]")
        _check(0.0 <= self.distortion_drive_db <= 40.0, self.where,
               f"distortion_drive_db={self.distortion_drive_db} not in [0, 40]")


@dataclass(frozen=True)
class MasterPreset:
    eq: tuple[EqBand, ...] = ()
    compressor: CompressorSettings | None = None
    reverb_wet: float = 0.0
    reverb_room_size: float = 0.5
    bitcrush_bits: float | None = None
    target_lufs: float = -14.0
    true_peak_dbtp: float = -1.0
    where: str = field(default="master", repr=False, compare=False)

    def __post_init__(self):
        _check(0.0 <= self.reverb_wet <= 1.0, self.where, f"reverb_wet={self.reverb_wet} not in [0, 1]")
        _check(0.0 <= self.reverb_room_size <= 1.0, self.where,
               f"reverb_room_size={self.reverb_room_size} not in [0, 1]")
        if self.bitcrush_bits is not None:
            _check(4.0 <= self.bitcrush_bits <= 24.0, self.where, f"bitcrush_bits={self.bitcrush_bits} not in [4, 24]")
        _check(-40.0 <= self.target_lufs <= -5.0, self.where, f"target_lufs={self.target_lufs} not in [-40, -5]")
        _check(-9.0 <= self.true_peak_dbtp <= 0.0, self.where, f"true_peak_dbtp={self.true_peak_dbtp} not in [-9, 0]")


@dataclass(frozen=True)
class BandPreset:
    """The arranger's band: a style (`presets/styles/<name>.toml` or a .toml path next to the preset)
    and per-part instrument overrides (General MIDI names). `resolved` is the loaded, checked style.

    mode: `arrange` (the new band plays the song's chords under its melody; what `make` does) or
        `revoice` (the original stems re-voiced and re-mixed: covergen's first pipeline).
    melody: `voice` keeps the separated singer over the band; an instrument name (`tenor_sax`)
        re-plays the vocal line with that DDSP model. It is mixed with the preset's [stems.vocals].
    keep: original stems (drums, bass, other) that stay under the new band; default none.
    """
    style: str
    instruments: dict = field(default_factory=dict)
    resolved: object = field(default=None, repr=False, compare=False)
    mode: str = "arrange"
    melody: str = "voice"
    keep: tuple[str, ...] = ()


def _checked_melody(melody, where: str) -> str:
    """`melody` if it is "voice" or an installed instrument's name; else one line naming `where`."""
    if not isinstance(melody, str) or not melody:
        raise PresetError(f"{where}: expected \"voice\" or an instrument name, got {melody!r}")
    if melody != "voice":
        from .timbre import list_instruments

        known = sorted(i["name"] for i in list_instruments())
        if melody not in known:
            raise PresetError(f"{where}: unknown instrument {melody!r} (known: voice, {', '.join(known)})")
    return melody


def with_melody(preset: GenrePreset, melody: str) -> GenrePreset:
    """`preset` with its band's melody replaced (`make --melody`): "voice" keeps the singer, an instrument
    name re-plays the line. One line if the name is unknown or the preset has no band."""
    if preset.band is None:
        raise PresetError(f"--melody: {preset.source or preset.name} has no [band] table (the revoice mode's "
                          "vocal stem is set in its [stems.vocals])")
    band = replace(preset.band, melody=_checked_melody(melody, "--melody"))
    return replace(preset, band=band)


def _band(table, where: str, file: Path) -> BandPreset:
    from .arrange.styles import load_style

    if not isinstance(table, dict):
        raise PresetError(f"{where}: expected a table like [band] style = \"jazz\"")
    unknown = sorted(set(table) - {"style", "instruments", "mode", "melody", "keep"})
    if unknown:
        raise PresetError(f"{where}: unknown key {unknown[0]!r} (known: instruments, keep, melody, mode, style)")
    mode = table.get("mode", "arrange")
    if mode not in BAND_MODES:
        raise PresetError(f"{where}.mode: {mode!r} is not one of {', '.join(BAND_MODES)}")
    melody = _checked_melody(table.get("melody", "voice"), f"{where}.melody")
    keep = table.get("keep", [])
    if not isinstance(keep, list) or any(k not in ("drums", "bass", "other") for k in keep):
        raise PresetError(f"{where}.keep: expected a list of drums, bass, other; got {keep!r}")
    style = table.get("style")
    if not isinstance(style, str) or not style:
        raise PresetError(f"{where}.style: expected a style name or .toml path, got {style!r}")
    instruments = table.get("instruments", {})
    if not isinstance(instruments, dict):
        raise PresetError(f"{where}.instruments: expected a table like {{ bass = \"Acoustic Bass\" }}")
    resolved = load_style(style, relative_to=file, where=f"{where}.style")
    resolved = resolved.with_instruments(instruments, f"{where}.instruments") if instruments else resolved
    return BandPreset(style=style, instruments=dict(instruments), resolved=resolved, mode=mode, melody=melody,
                      keep=tuple(keep))


@dataclass(frozen=True)
class GenrePreset:
    name: str
    description: str
    stems: dict[str, StemPreset]
    master: MasterPreset
    tempo_change_bpm: float = 0.0
    genre_label: str | None = None
    source: str = ""
    band: BandPreset | None = None  # the arranger's style and instruments (`[band]`)

    def __post_init__(self):
        _check(-60.0 <= self.tempo_change_bpm <= 60.0, self.source or self.name,
               f"tempo_change_bpm={self.tempo_change_bpm} not in [-60, 60]")

    def instruments(self) -> list[str]:
        """Instrument models this preset transfers to."""
        return [s.instrument for s in self.stems.values() if s.action == "transfer" and s.instrument]


def presets_dir() -> Path:
    """Folder of shipped presets (the repo's `presets/`, installed as `covergen._presets`)."""
    return Path(str(resources.files("covergen._presets")))


def available() -> list[str]:
    """Names of shipped presets."""
    return sorted(p.stem for p in presets_dir().glob("*.toml"))


def _build(cls, table: dict, where: str):
    if not isinstance(table, dict):
        raise PresetError(f"{where}: expected a table, got {type(table).__name__}")
    known = {f.name for f in fields(cls)} - {"where"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise PresetError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
    kwargs = {}
    for f in fields(cls):
        if f.name not in table:
            continue
        value = table[f.name]
        key = f"{where}.{f.name}"
        if f.name == "eq":
            if not isinstance(value, list):
                raise PresetError(f"{key}: expected a list of tables like {{ kind = \"peak\", cutoff_hz = 1000 }}")
            value = tuple(_build(EqBand, band, f"{key}[{i}]") for i, band in enumerate(value))
        elif f.name == "compressor":
            value = _build(CompressorSettings, value, key)
        elif f.type in ("float", "float | None") and not isinstance(value, bool) and isinstance(value, int | float):
            value = float(value)
        elif f.type in ("float", "float | None"):
            raise PresetError(f"{key}: expected a number, got {value!r}")
        elif f.type in ("str", "str | None") and not isinstance(value, str):
            raise PresetError(f"{key}: expected a string, got {value!r}")
        kwargs[f.name] = value
    return cls(**kwargs, where=where)


def load_file(file: Path) -> GenrePreset:
    """Load and validate one preset file."""
    file = Path(file)
    try:
        table = tomllib.loads(file.read_text())
    except FileNotFoundError:
        raise PresetError(f"{file}: no such preset file") from None
    except tomllib.TOMLDecodeError as err:
        raise PresetError(f"{file}: invalid TOML ({err})") from None
    where = file.name
    top_keys = {"name", "description", "tempo_change_bpm", "genre_label", "stems", "master", "band"}
    unknown = sorted(set(table) - top_keys)
    if unknown:
        raise PresetError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(top_keys))})")
    label = table.get("genre_label")
    if label is not None and label not in GENRES:  # the genre classifier's labels: what the preset aims at
        raise PresetError(f"{where}: genre_label={label!r} is not one of {', '.join(GENRES)}")
    stems_table = table.get("stems", {})
    bad = sorted(set(stems_table) - set(STEMS))
    if bad:
        raise PresetError(f"{where}: unknown stem [stems.{bad[0]}] (stems are {', '.join(STEMS)})")
    stems = {s: _build(StemPreset, stems_table.get(s, {}), f"{where}: stems.{s}") for s in STEMS}
    master = _build(MasterPreset, table.get("master", {}), f"{where}: master")
    tempo = table.get("tempo_change_bpm", 0.0)
    if isinstance(tempo, bool) or not isinstance(tempo, int | float):
        raise PresetError(f"{where}: tempo_change_bpm: expected a number, got {tempo!r}")
    return GenrePreset(name=str(table.get("name", file.stem)), description=str(table.get("description", "")),
                       stems=stems, master=master, tempo_change_bpm=float(tempo), genre_label=label, source=where,
                       band=_band(table["band"], f"{where}: band", file) if "band" in table else None)


def load(name_or_file: str | Path) -> GenrePreset:
    """A shipped preset by name (`jazz`), or a TOML file path. Unknown names list the known ones."""
    candidate = Path(name_or_file)
    if candidate.suffix == ".toml" or candidate.exists():
        return load_file(candidate)
    name = str(name_or_file).lower().replace("-", "_").replace(" ", "_")
    file = presets_dir() / f"{name}.toml"
    if not file.is_file():
        raise PresetError(f"unknown genre {str(name_or_file)!r}; available: {', '.join(available())}")
    return load_file(file)
