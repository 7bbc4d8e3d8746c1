"""Band styles as data: per-part patterns in beats with velocities, instruments, swing, mixing.

A style is a TOML file in `presets/styles/` (or any path), named by a preset's `[band]` table.
Like an MMA groove, each part has patterns per meter (the key is the beats per bar: `4`, `3`),
a list of alternatives picked per bar by the seeded generator, and fills for phrase ends:

    [parts.bass]
    role = "bass"                      # drums | bass | comping | pad
    instrument = "Acoustic Bass"       # General MIDI name or program number 0-127
    range = [28, 55]                   # lowest and highest MIDI note
    groove.4 = [[[0, 1, "root", 96], [1, 1, "chord", 84], [2, 1, "chord", 88], [3, 1, "approach", 84]]]

Steps are `[beat, velocity]` per drum (drums), `[beat, length_beats, tone, velocity]` (bass) and
`[beat, length_beats, velocity]` (comping, pad). Every key is validated on load; a mistake raises
PresetError naming the file and the key, in one line.

Pattern layers per part, all of that shape: `groove` (required), `fill` (phrase ends), `section_start`
(added on a section's first bar), `ending` (the last bar), and `intro` / `outro`, played in the bars
before the melody comes in and after it ends (`score.song_form`). Without `intro`/`outro` the score
module's defaults apply (in the intro the drums keep time on hats, ride and cross-stick only):

    intro.4 = { ride = [[0, 70], [1, 60], [2, 70], [3, 60]], hihat_pedal = [[1, 60], [3, 60]] }
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import PresetError

__all__ = ["Style", "Part", "DRUMS", "ROLES", "BASS_TONES", "VOICINGS", "styles_dir", "available", "load_style",
           "gm_program"]

ROLES = ("drums", "bass", "comping", "pad")
# General MIDI percussion keys (channel 10) by the names styles use.
DRUMS = {"kick": 36, "side_stick": 37, "cross_stick": 37, "snare": 38, "clap": 39, "snare_rim": 40, "tom_floor": 41,
         "hihat_closed": 42, "tom_low": 45, "hihat_pedal": 44, "hihat_open": 46, "tom_mid": 47, "tom_high": 50,
         "crash": 49, "ride": 51, "ride_bell": 53, "tambourine": 54, "splash": 55, "cowbell": 56, "crash2": 57,
         "bongo_high": 60, "bongo_low": 61, "conga_high": 63, "conga_low": 64, "cabasa": 69, "maracas": 70,
         "claves": 75, "shaker": 82}
# bass step tones: chord degrees of the chord sounding at the step, a walking pick, a chromatic
# approach to the next step's root, or the next bar's root (anticipation)
BASS_TONES = ("root", "third", "fifth", "seventh", "octave", "chord", "approach", "next_root")
VOICINGS = ("shell", "rootless", "close", "power", "upper", "spread")
_STYLE_KEYS = {"name", "description", "subdivision_beats", "swing", "humanise_ms", "humanise_velocity",
               "phrase_bars", "section_bars", "drums_on_no_chord", "extensions", "slow_below_bpm", "parts",
               "master", "character"}
_PART_KEYS = {"role", "instrument", "kit", "slow_kit", "soundfont", "range", "voicing", "voice", "arpeggio",
              "delay_ms", "groove", "fill", "section_start", "ending", "intro", "outro", "mix"}
_CHARACTER_KEYS = {"vinyl_crackle_db", "tape_hiss_db", "tape_drive_db"}


def gm_program(instrument: str | int, where: str) -> int:
    """A General MIDI program number from a name (`Acoustic Bass`, case-insensitive) or a number."""
    import pretty_midi

    if isinstance(instrument, int) and not isinstance(instrument, bool):
        if 0 <= instrument <= 127:
            return instrument
        raise PresetError(f"{where}: program {instrument} not in [0, 127]")
    if not isinstance(instrument, str):
        raise PresetError(f"{where}: expected a General MIDI instrument name or number, got {instrument!r}")
    names = {n.lower(): i for i, n in enumerate(pretty_midi.constants.INSTRUMENT_MAP)}
    if instrument.lower() not in names:
        raise PresetError(f"{where}: {instrument!r} is not a General MIDI instrument "
                          "(e.g. 'Acoustic Grand Piano', 'Acoustic Bass', 'Electric Piano 1', 'Cello')")
    return names[instrument.lower()]


@dataclass(frozen=True)
class Part:
    """One part of the band. Patterns map beats-per-bar -> alternatives -> steps (see module doc)."""
    name: str
    role: str
    program: int = 0                 # GM program; for drums the kit (bank 128) program
    slow_program: int | None = None  # drums: kit below the style's slow_below_bpm (brushes)
    soundfont: tuple[str, ...] = ()  # this part's own SoundFonts, the first installed plays it; else the GM one
    range: tuple[int, int] = (36, 84)
    voicing: str = "close"
    voice: int | None = None         # comping: play only this voice of the voicing (0 = lowest)
    arpeggio: bool = False           # comping: each step plays the next voice instead of the chord
    delay_ms: float = 0.0            # played behind (+) or ahead of (-) the beat
    groove: dict[int, tuple] = field(default_factory=dict)
    fill: dict[int, tuple] = field(default_factory=dict)
    section_start: dict[int, tuple] = field(default_factory=dict)
    ending: dict[int, tuple] = field(default_factory=dict)
    intro: dict[int, tuple] = field(default_factory=dict)   # bars before the melody; a default when empty
    outro: dict[int, tuple] = field(default_factory=dict)   # bars after the melody; a default when empty
    mix: object = None               # presets.StemPreset: EQ, distortion, compressor, gain, reverb, pan

    @property
    def is_drums(self) -> bool:
        return self.role == "drums"


@dataclass(frozen=True)
class Style:
    name: str
    description: str
    parts: tuple[Part, ...]
    subdivision_beats: float = 0.5
    swing: tuple[tuple[float, float], ...] = ((0.0, 1.0),)  # (tempo_bpm, long/short ratio) points
    humanise_ms: float = 6.0
    humanise_velocity: float = 5.0
    phrase_bars: int = 4
    section_bars: int = 8
    drums_on_no_chord: bool = False
    extensions: dict[str, tuple[str, ...]] = field(default_factory=dict)  # quality -> what the band may play
    slow_below_bpm: float = 0.0
    master: object = None             # presets.MasterPreset
    character: dict[str, float] = field(default_factory=dict)
    source: str = ""

    def swing_ratio(self, tempo_bpm: float) -> float:
        """Long/short ratio of off-beat pairs at this tempo (linear between the style's points)."""
        tempos, ratios = zip(*self.swing)
        return float(np.interp(tempo_bpm, tempos, ratios))

    def part(self, name: str) -> Part:
        return next(p for p in self.parts if p.name == name)

    def parts_with_role(self, role: str) -> list[Part]:
        return [p for p in self.parts if p.role == role]

    def with_instruments(self, instruments: dict[str, str | int], where: str) -> Style:
        """A copy with some parts' instruments replaced (a preset's `[band.instruments]`)."""
        from dataclasses import replace

        names = [p.name for p in self.parts]
        for name in instruments:
            if name not in names:
                raise PresetError(f"{where}.{name}: style {self.name!r} has no part {name!r} "
                                  f"(parts: {', '.join(names)})")
        def program(part: Part, value) -> int:
            where_part = f"{where}.{part.name}"
            return _kit(value, where_part) if part.is_drums else gm_program(value, where_part)

        return replace(self, parts=tuple(replace(p, program=program(p, instruments[p.name])) if p.name in instruments
                                         else p for p in self.parts))


def styles_dir() -> Path:
    from ..presets import presets_dir

    return presets_dir() / "styles"


def available() -> list[str]:
    return sorted(p.stem for p in styles_dir().glob("*.toml"))


def _fail(where: str, message: str):
    raise PresetError(f"{where}: {message}")


def _number(value, where: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail(where, f"expected a number, got {value!r}")
    if not lo <= value <= hi:
        _fail(where, f"{value} not in [{lo:g}, {hi:g}]")
    return float(value)


def _kit(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 127:
        _fail(where, f"expected a drum kit program 0-127 (0 standard, 32 jazz, 40 brush), got {value!r}")
    return value


def _steps(steps, role: str, where: str, bar_beats: int) -> tuple:
    """Validate one pattern; returns it as a tuple of tuples (drums: a tuple of (drum, beat, velocity))."""
    if role == "drums":
        if not isinstance(steps, dict):
            _fail(where, "a drum pattern is a table of drum = [[beat, velocity], ...]")
        out = []
        for drum, hits in steps.items():
            if drum not in DRUMS:
                _fail(f"{where}.{drum}", f"unknown drum {drum!r} (known: {', '.join(DRUMS)})")
            if not isinstance(hits, list):
                _fail(f"{where}.{drum}", "expected a list of [beat, velocity]")
            for i, hit in enumerate(hits):
                w = f"{where}.{drum}[{i}]"
                if not isinstance(hit, list) or len(hit) != 2:
                    _fail(w, f"expected [beat, velocity], got {hit!r}")
                out.append((drum, _number(hit[0], w, 0, 4 * bar_beats - 1e-9), int(_number(hit[1], w, 1, 127))))
        return tuple(sorted(out, key=lambda s: (s[1], s[0])))
    if not isinstance(steps, list):
        _fail(where, "expected a list of steps")
    out = []
    for i, step in enumerate(steps):
        w = f"{where}[{i}]"
        n = 4 if role == "bass" else 3
        shape = "[beat, length_beats, tone, velocity]" if role == "bass" else "[beat, length_beats, velocity]"
        if not isinstance(step, list) or len(step) != n:
            _fail(w, f"expected {shape}, got {step!r}")
        beat = _number(step[0], w, 0, 4 * bar_beats - 1e-9)
        length = _number(step[1], w, 0.05, 4 * bar_beats)
        if role == "bass":
            if step[2] not in BASS_TONES:
                _fail(w, f"tone {step[2]!r} is not one of {', '.join(BASS_TONES)}")
            out.append((beat, length, step[2], int(_number(step[3], w, 1, 127))))
        else:
            out.append((beat, length, int(_number(step[2], w, 1, 127))))
    return tuple(sorted(out, key=lambda s: s[0]))


def _patterns(table, role: str, where: str) -> dict[int, tuple]:
    """`{ "4" = [pattern, ...], "3" = ... }` -> {4: (pattern, ...)}; one pattern alone is allowed too."""
    if not isinstance(table, dict):
        _fail(where, "expected a table of meter = patterns, e.g. 4 = [...] for 4/4")
    out = {}
    for meter, alternatives in table.items():
        w = f"{where}.{meter}"
        if not meter.isdigit() or not 1 <= int(meter) <= 12:
            _fail(w, f"the key is the beats per bar (1-12), got {meter!r}")
        single = isinstance(alternatives, dict) or (isinstance(alternatives, list) and alternatives
                                                    and isinstance(alternatives[0], list)
                                                    and alternatives[0] and not isinstance(alternatives[0][0], list))
        if single:
            alternatives = [alternatives]
        if not isinstance(alternatives, list) or not alternatives:
            _fail(w, "expected a pattern or a list of alternative patterns")
        out[int(meter)] = tuple(_steps(p, role, f"{w}[{i}]", int(meter)) for i, p in enumerate(alternatives))
    return out


def _part(name: str, table, where: str) -> Part:
    from ..presets import StemPreset, _build

    if not isinstance(table, dict):
        _fail(where, "expected a table")
    unknown = sorted(set(table) - _PART_KEYS)
    if unknown:
        _fail(where, f"unknown key {unknown[0]!r} (known: {', '.join(sorted(_PART_KEYS))})")
    role = table.get("role")
    if role not in ROLES:
        _fail(f"{where}.role", f"{role!r} is not one of {', '.join(ROLES)}")
    kwargs: dict = {"name": name, "role": role}
    if role == "drums":
        if "instrument" in table:
            _fail(f"{where}.instrument", "drums take kit = <program> (0 standard, 8 room, 16 power, 32 jazz, 40 brush)")
        kwargs["program"] = _kit(table.get("kit", 0), f"{where}.kit")
        if "slow_kit" in table:
            kwargs["slow_program"] = _kit(table["slow_kit"], f"{where}.slow_kit")
    else:
        for key in ("kit", "slow_kit"):
            if key in table:
                _fail(f"{where}.{key}",
                      f"only drums take a kit; a {role} part takes instrument = \"<General MIDI name>\"")
        if "instrument" not in table:
            _fail(where, "missing key 'instrument' (a General MIDI name such as 'Acoustic Bass')")
        kwargs["program"] = gm_program(table["instrument"], f"{where}.instrument")
    if "soundfont" in table:
        fonts = table["soundfont"] if isinstance(table["soundfont"], list) else [table["soundfont"]]
        if not fonts or not all(isinstance(f, str) and f.endswith((".sf2", ".sf3")) for f in fonts):
            _fail(f"{where}.soundfont", "expected a .sf2/.sf3 file name or path, or a list of them (the first "
                  f"installed plays), got {table['soundfont']!r}")
        kwargs["soundfont"] = tuple(fonts)
    if "range" in table:
        rng = table["range"]
        if not (isinstance(rng, list) and len(rng) == 2 and all(isinstance(v, int) for v in rng)
                and 0 <= rng[0] < rng[1] <= 127 and rng[1] - rng[0] >= 12):
            _fail(f"{where}.range", f"expected [low, high] MIDI notes at least an octave apart, got {rng!r}")
        kwargs["range"] = tuple(rng)
    if "voicing" in table:
        if table["voicing"] not in VOICINGS:
            _fail(f"{where}.voicing", f"{table['voicing']!r} is not one of {', '.join(VOICINGS)}")
        kwargs["voicing"] = table["voicing"]
    if "voice" in table:
        kwargs["voice"] = int(_number(table["voice"], f"{where}.voice", 0, 5))
    if "arpeggio" in table:
        if not isinstance(table["arpeggio"], bool):
            _fail(f"{where}.arpeggio", "expected true or false")
        kwargs["arpeggio"] = table["arpeggio"]
    if "delay_ms" in table:
        kwargs["delay_ms"] = _number(table["delay_ms"], f"{where}.delay_ms", -50, 80)
    for key in ("groove", "fill", "section_start", "ending", "intro", "outro"):
        if key in table:
            kwargs[key] = _patterns(table[key], role, f"{where}.{key}")
    if not kwargs.get("groove"):
        _fail(where, "missing key 'groove' (patterns per meter, e.g. groove.4 = [...])")
    kwargs["mix"] = _build(StemPreset, table.get("mix", {}), f"{where}.mix")
    return Part(**kwargs)


def _parse(table: dict, where: str) -> Style:
    from ..presets import MasterPreset, _build

    unknown = sorted(set(table) - _STYLE_KEYS)
    if unknown:
        _fail(where, f"unknown key {unknown[0]!r} (known: {', '.join(sorted(_STYLE_KEYS))})")
    parts_table = table.get("parts")
    if not isinstance(parts_table, dict) or not parts_table:
        _fail(where, "missing [parts.<name>] tables (drums, bass, comping...)")
    parts = tuple(_part(name, t, f"{where}: parts.{name}") for name, t in parts_table.items())
    kwargs: dict = {"name": str(table.get("name", Path(where).stem)), "description": str(table.get("description", "")),
                    "parts": parts, "source": where}
    if "subdivision_beats" in table:
        kwargs["subdivision_beats"] = _number(table["subdivision_beats"], f"{where}: subdivision_beats", 0.125, 1)
    if "swing" in table:
        swing = table["swing"]
        if isinstance(swing, int | float) and not isinstance(swing, bool):
            swing = [[0, swing]]
        if not isinstance(swing, list) or not swing:
            _fail(f"{where}: swing", "expected a ratio or a list of [tempo_bpm, ratio] points")
        points = []
        for i, point in enumerate(swing):
            w = f"{where}: swing[{i}]"
            if not isinstance(point, list) or len(point) != 2:
                _fail(w, f"expected [tempo_bpm, ratio], got {point!r}")
            points.append((_number(point[0], w, 0, 400), _number(point[1], w, 1, 3.5)))
        kwargs["swing"] = tuple(sorted(points))
    for key, lo, hi in (("humanise_ms", 0, 40), ("humanise_velocity", 0, 30), ("slow_below_bpm", 0, 300)):
        if key in table:
            kwargs[key] = _number(table[key], f"{where}: {key}", lo, hi)
    for key in ("phrase_bars", "section_bars"):
        if key in table:
            kwargs[key] = int(_number(table[key], f"{where}: {key}", 1, 64))
    if "drums_on_no_chord" in table:
        if not isinstance(table["drums_on_no_chord"], bool):
            _fail(f"{where}: drums_on_no_chord", "expected true or false")
        kwargs["drums_on_no_chord"] = table["drums_on_no_chord"]
    if "extensions" in table:
        from ..leadsheet import QUALITIES

        ext = table["extensions"]
        if not isinstance(ext, dict):
            _fail(f"{where}: extensions", "expected a table like { maj = [\"maj9\", \"maj7\"], min = \"min7\" }")
        out = {}
        for q, choices in ext.items():
            choices = [choices] if isinstance(choices, str) else choices
            w = f"{where}: extensions.{q}"
            if q not in QUALITIES:
                _fail(w, f"{q!r} is not a chord quality ({', '.join(QUALITIES)})")
            if not isinstance(choices, list) or not choices:
                _fail(w, "expected a quality or a list of qualities")
            for to in choices:
                if to not in QUALITIES:
                    _fail(w, f"{to!r} is not a chord quality ({', '.join(QUALITIES)})")
                if not {i % 12 for i in QUALITIES[q]} <= {i % 12 for i in QUALITIES[to]}:
                    _fail(w, f"{to!r} does not contain the tones of {q!r}")
            out[q] = tuple(choices)
        kwargs["extensions"] = out
    kwargs["master"] = _build(MasterPreset, table.get("master", {}), f"{where}: master")
    character = table.get("character", {})
    if not isinstance(character, dict):
        _fail(f"{where}: character", "expected a table")
    for key, value in character.items():
        if key not in _CHARACTER_KEYS:
            _fail(f"{where}: character", f"unknown key {key!r} (known: {', '.join(sorted(_CHARACTER_KEYS))})")
        lo, hi = (0, 24) if key == "tape_drive_db" else (-90, 0)
        _number(value, f"{where}: character.{key}", lo, hi)
    kwargs["character"] = {k: float(v) for k, v in character.items()}
    return Style(**kwargs)


def load_style(name_or_file: str | Path, *, relative_to: Path | None = None, where: str = "band.style") -> Style:
    """A style by name (`presets/styles/<name>.toml`) or a .toml path (relative to `relative_to`'s folder).

    Unknown names raise PresetError naming `where` and the known styles.
    """
    text = str(name_or_file)
    if text.endswith(".toml"):
        file = Path(text)
        if not file.is_absolute() and relative_to is not None:
            file = Path(relative_to).parent / file
    else:
        file = styles_dir() / f"{text}.toml"
        if not file.is_file():
            raise PresetError(f"{where}: unknown style {text!r} (known: {', '.join(available())}; "
                              "or a .toml file path)")
    try:
        table = tomllib.loads(file.read_text())
    except FileNotFoundError:
        raise PresetError(f"{where}: no such style file {file}") from None
    except tomllib.TOMLDecodeError as err:
        raise PresetError(f"{file.name}: invalid TOML ({err})") from None
    return _parse(table, file.name)
