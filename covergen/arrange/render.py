"""From events in beats to a mixed band: MIDI on the song's grid, FluidSynth per part, per-part mix, master.

`to_midi` is the one place beats become seconds (`leadsheet.beat_to_seconds` on the possibly
stretched grid), with a tempo map that follows the beats so a DAW shows the song's bars.
`render_midi` runs the FluidSynth CLI. Its `-F` mode renders until every voice is silent, so a
stuck note renders forever (one once wrote 52 GB): every note gets a minimum length, every channel
ends with all-notes-off, and the process has a hard timeout and an output-size cap.
Some samples start sounding tens of ms after their note-on: `playable_part` plays those notes early
by the measured latency, so the sound (not the note-on) lands on the grid.
`render_band` renders each part alone (in parallel processes), so each gets its own EQ,
compression, drive, room and place in the stereo field (the style's `mix` tables, with
`mix.build_stem_board`), then the style's master chain, tape and vinyl character, and loudness.
A part's `gain_db` is its loudness relative to the other parts (each is loudness-matched first, so
SoundFont sample levels and distortion gain do not upset the balance).
"""
from __future__ import annotations

import copy
import logging
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import SynthError
from ..leadsheet import LeadSheet, beat_to_seconds, midi_on_grid
from .score import Event
from .styles import Style

__all__ = ["find_soundfont", "render_midi", "to_midi", "render_band", "playable_part", "part_soundfont", "onset_latency_s",
           "MIN_NOTE_S", "SOUNDFONTS"]

log = logging.getLogger(__name__)

MIN_NOTE_S = 0.03
_TAIL_S = 1.5
# sf2 first: MuseScore General's .sf3 holds compressed samples and renders 4-9x slower
SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf2/MuseScore_General.sf2",
    "/usr/share/sounds/sf3/MuseScore_General.sf3",
)


def find_soundfont() -> Path | None:
    """The first General MIDI SoundFont installed from Debian, or None."""
    for candidate in SOUNDFONTS:
        if Path(candidate).is_file():
            return Path(candidate)
    return None


def _sanitise(midi) -> float:
    """Drop zero-length notes, clamp velocities, add all-notes-off. Returns end time in s."""
    import pretty_midi

    end_s = 0.0
    for inst in midi.instruments:
        for note in inst.notes:
            note.start = max(0.0, note.start)
            if note.end - note.start < MIN_NOTE_S:
                note.end = note.start + MIN_NOTE_S
            note.velocity = int(np.clip(note.velocity, 1, 127))
            note.pitch = int(np.clip(note.pitch, 0, 127))
        if inst.notes:
            end_s = max(end_s, max(n.end for n in inst.notes))
    for inst in midi.instruments:
        for cc in (64, 120, 123):  # sustain off, all sound off, all notes off
            inst.control_changes.append(pretty_midi.ControlChange(cc, 0, end_s + 0.05))
    return end_s


def _constant_tempo(midi):
    """The same notes, programs and controllers in a MIDI file at one tempo (120 BPM, 960 ticks per beat:
    times within 0.26 ms). FluidSynth plays a file with a tempo change on every beat (the song's own bars,
    `midi_on_grid`) ahead of time: 0.7 ms per tempo change at 44.1 kHz, 1.1 at 22.05 kHz, so a 3-minute
    band ran a quarter of a second ahead of the singer by its end. The grid lives in the note times; the
    tempo map is for a DAW (`--midi`), not for the synthesiser."""
    import pretty_midi

    flat = pretty_midi.PrettyMIDI(initial_tempo=120.0, resolution=960)
    for inst in midi.instruments:
        copy_ = pretty_midi.Instrument(program=inst.program, is_drum=inst.is_drum, name=inst.name)
        copy_.notes = [pretty_midi.Note(n.velocity, n.pitch, n.start, n.end) for n in inst.notes]
        copy_.control_changes = [pretty_midi.ControlChange(c.number, c.value, c.time) for c in inst.control_changes]
        copy_.pitch_bends = [pretty_midi.PitchBend(b.pitch, b.time) for b in inst.pitch_bends]
        flat.instruments.append(copy_)
    return flat


def _fluidsynth(midi, wav_path: Path, *, sample_rate: int, soundfont: Path | None, gain: float = 0.5) -> int:
    """FluidSynth renders `midi` (at one tempo: `_constant_tempo`) to a float WAV at `wav_path`. Returns the
    samples to keep: up to the last note end plus a short release tail."""
    if shutil.which("fluidsynth") is None:
        raise SynthError("fluidsynth is not installed: apt-get install fluidsynth (or run `make install` as root)")
    soundfont = soundfont or find_soundfont()
    if soundfont is None or not Path(soundfont).is_file():
        raise SynthError(f"no General MIDI SoundFont{' at ' + str(soundfont) if soundfont else ''}: "
                         "apt-get install fluid-soundfont-gm (or musescore-general-soundfont)")
    midi = _constant_tempo(midi)
    end_s = _sanitise(midi)
    max_samples = int((end_s + _TAIL_S) * sample_rate)
    mid_path = wav_path.with_suffix(".mid")
    midi.write(str(mid_path))
    cmd = ["fluidsynth", "-ni", "-q", "-g", str(gain), "-r", str(sample_rate),
           "-o", "synth.reverb.active=0", "-o", "synth.chorus.active=0",
           "-o", "synth.dynamic-sample-loading=1",  # load only the samples used: 3x faster on .sf3
           "-F", str(wav_path), "-T", "wav", "-O", "float", str(soundfont), str(mid_path)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60 + 4 * end_s)
    size_cap = max_samples * 2 * 4 * 4 + 1_000_000
    if wav_path.stat().st_size > size_cap:
        raise RuntimeError(f"fluidsynth wrote {wav_path.stat().st_size} bytes, expected < {size_cap}")
    return max_samples


def render_midi(midi, *, sample_rate: int = 44100, soundfont: Path | None = None, gain: float = 0.5) -> np.ndarray:
    """Render a pretty_midi.PrettyMIDI to float32 audio [shape=(2, samples)] at `sample_rate`.

    The result is cut to the last note end plus a short release tail. Missing fluidsynth or
    SoundFont raise SynthError naming the Debian package.
    """
    import soundfile as sf

    with tempfile.TemporaryDirectory() as tmp:
        wav_path = Path(tmp) / "out.wav"
        keep = _fluidsynth(midi, wav_path, sample_rate=sample_rate, soundfont=soundfont, gain=gain)
        y, sr = sf.read(wav_path, dtype="float32", always_2d=True, frames=keep)
    assert sr == sample_rate, (sr, sample_rate)
    return np.ascontiguousarray(y.T)


def part_soundfont(part, default: Path | None, program: int) -> tuple[Path | None, bool]:
    """(SoundFont, is a kit SoundFont) for a part: the first of its own that is installed (a file name
    under /usr/share/sounds/sf2 or sf3, by its extension, or a path), else the General MIDI one (logged
    with what to install). Drums at the style's slow tempo play the General MIDI slow kit (brushes),
    which recorded kits lack."""
    if not part.soundfont or (part.is_drums and program != part.program):
        return default, False
    for name in part.soundfont:
        own = Path(name)
        own = own if own.is_absolute() else Path("/usr/share/sounds", own.suffix[1:]) / own
        if own.is_file():
            return own, part.is_drums
    log.info("%s: none of %s is installed (Debian %s); using %s", part.name, ", ".join(part.soundfont),
             "avldrums.lv2-soundfont" if part.is_drums else "musescore-general-soundfont-lossless", default)
    return default, False


_LATENCY_THRESHOLD = 0.1  # -20 dB of the note's peak: where its sound begins
_LATENCY_MAX_S = 0.05
_PROBE_GAP_S = 0.6
_latency_cache: dict[tuple[str, int, int], float] = {}


def onset_latency_s(soundfont: Path, program: int, pitches) -> dict[int, float]:
    """Seconds from note-on to where each pitch's sample begins to sound (reaches -20 dB of its peak) in
    `soundfont`'s melodic `program`, measured on one FluidSynth render of one short note per pitch.

    Some General MIDI samples start late: FluidR3's picked bass is silent for 18-50 ms after its
    note-on (median 29 over its bass register), so played on the beat it drags behind the kick. A
    player (or a DAW's negative track delay) plays such an instrument early; `playable_part` does the
    same with these latencies.
    Cached per process; capped at 50 ms (a slow bow swell is a sound, not a delay)."""
    import pretty_midi

    font = str(Path(soundfont).resolve())
    todo = sorted({int(p) for p in pitches} - {p for f, prog, p in _latency_cache if f == font and prog == program})
    if todo:
        probe = pretty_midi.PrettyMIDI(initial_tempo=120.0)
        inst = pretty_midi.Instrument(program=program)
        starts = [0.1 + i * _PROBE_GAP_S for i in range(len(todo))]
        inst.notes = [pretty_midi.Note(96, p, s, s + 0.25) for p, s in zip(todo, starts)]
        probe.instruments = [inst]
        sample_rate = 22050
        y = np.abs(render_midi(probe, sample_rate=sample_rate, soundfont=Path(font)).mean(axis=0))
        smooth = int(0.001 * sample_rate)
        envelope = np.convolve(y, np.ones(smooth) / smooth, mode="same")
        for pitch, start in zip(todo, starts):
            a = int(round(start * sample_rate))
            window = envelope[a:a + int(0.3 * sample_rate)]
            peak = window.max() if len(window) else 0.0
            late = int(np.argmax(window >= _LATENCY_THRESHOLD * peak)) / sample_rate if peak > 0 else 0.0
            _latency_cache[(font, program, pitch)] = min(late, _LATENCY_MAX_S)
    return {int(p): _latency_cache[(font, program, int(p))] for p in pitches}


def playable_part(part, inst, default_soundfont: Path | None):
    """(instrument to render, SoundFont) for one part's MIDI track: its own SoundFont (`part_soundfont`;
    a recorded kit is a melodic preset, bank 0 program 0, with General MIDI drum keys), and a melodic
    part's notes moved earlier by their samples' onset latency (`onset_latency_s`), so each note sounds
    at its time on the grid. The MIDI file a user gets (`--midi`) keeps the times on the grid."""
    font, kit = part_soundfont(part, default_soundfont, inst.program)
    if kit:
        inst = copy.copy(inst)
        inst.is_drum, inst.program = False, 0
    elif not inst.is_drum and inst.notes and font is not None:
        import pretty_midi

        late = onset_latency_s(font, inst.program, {n.pitch for n in inst.notes})
        inst = copy.copy(inst)
        inst.notes = [pretty_midi.Note(n.velocity, n.pitch, max(0.0, n.start - late[n.pitch]),
                                       max(0.0, n.end - late[n.pitch])) for n in inst.notes]
    return inst, font


def _grid(grid: LeadSheet | np.ndarray | list[float]) -> tuple[np.ndarray, int, int]:
    if isinstance(grid, LeadSheet):
        return np.asarray(grid.beats_s, float), grid.beats_per_bar, (grid.downbeats[0] if grid.downbeats else 0)
    return np.asarray(grid, float), 4, 0


def _programs(style: Style, beat_times_s: np.ndarray) -> dict[str, int]:
    """Each part's program; drums change to the slow kit (brushes) under the style's slow tempo."""
    tempo_bpm = 60.0 / float(np.median(np.diff(beat_times_s)))
    return {p.name: p.slow_program if p.is_drums and p.slow_program is not None and tempo_bpm < style.slow_below_bpm
            else p.program for p in style.parts}


def to_midi(events: list[Event], grid: LeadSheet | np.ndarray | list[float], *, style: Style,
            beats_per_bar: int | None = None, first_downbeat: int | None = None):
    """A pretty_midi.PrettyMIDI with one track per part, the events placed on `grid`.

    `grid` is a LeadSheet (its beats, meter and first downbeat) or beat times in seconds, e.g.
    the lead sheet's beats divided by the cover's tempo ratio (the stretched grid). Beat b of an
    event sounds at `beat_to_seconds(b, grid)`.
    """
    import pretty_midi

    beats, bpb, first = _grid(grid)
    bpb = beats_per_bar or bpb
    first = first if first_downbeat is None else first_downbeat
    midi = midi_on_grid(beats, beats_per_bar=bpb, first_downbeat=first)
    programs = _programs(style, beats)
    tracks = {p.name: pretty_midi.Instrument(program=programs[p.name], is_drum=p.is_drums, name=p.name)
              for p in style.parts}
    if events:
        starts = beat_to_seconds(np.array([e.beat for e in events]), beats)
        ends = beat_to_seconds(np.array([e.beat + e.length_beats for e in events]), beats)
        for e, start, end in zip(events, starts.tolist(), ends.tolist()):
            start = max(0.0, start)
            tracks[e.part].notes.append(pretty_midi.Note(e.velocity, e.pitch, start, max(end, start + MIN_NOTE_S)))
    midi.instruments = list(tracks.values())
    return midi


def _pan_gains(pan: float) -> np.ndarray:
    """Constant-power balance gains [shape=(2, 1)]; pan -1 is hard left, +1 hard right (as the cover's stem mix)."""
    angle = (pan + 1) * np.pi / 4
    return (np.array([[np.cos(angle)], [np.sin(angle)]]) * np.sqrt(2)).astype(np.float32)


_PART_REFERENCE_LUFS = -20.0
_BALANCE_WINDOW_S = 20
_BALANCE_PREROLL_S = 5


def _blocks(wav_path: Path, n: int, *, start: int = 0):
    """(offset from `start`, float32 block [shape=(2, samples)]) of a rendered part up to sample n, about
    24 s at a time (`mix.CHUNK_SAMPLES`): a 10-minute part is never held whole."""
    import soundfile as sf

    from .. import mix

    with sf.SoundFile(wav_path) as f:
        f.seek(start)
        for offset in range(0, n - start, mix.CHUNK_SAMPLES):
            block = f.read(min(mix.CHUNK_SAMPLES, n - start - offset), dtype="float32", always_2d=True)
            if not len(block):
                return
            yield offset, np.ascontiguousarray(block.T)


def _balance_gain(wav_path: Path, n: int, board, sample_rate: int, gain_db: float) -> float:
    """The gain that puts a part at `gain_db` relative to the band's reference loudness, whatever its
    SoundFont samples' level or its distortion's gain: a part's `mix.gain_db` is its place in the
    balance. Measured through the part's chain on at most 20 s from the middle, with 5 s of the part
    before it through the chain first, so its compressor has settled (loudness varies little in a band part)."""
    from .. import mix

    span = _BALANCE_WINDOW_S * sample_rate
    lo = max(0, (n - span) // 2)
    pre = max(0, lo - _BALANCE_PREROLL_S * sample_rate)
    pieces = [block for _, block in _blocks(wav_path, min(n, lo + span), start=pre)]
    if not pieces:
        return 1.0
    y = board(np.concatenate(pieces, axis=1), sample_rate, reset=True)[:, lo - pre:]
    lufs = mix.integrated_lufs(y, sample_rate=sample_rate) if y.shape[1] >= 0.4 * sample_rate else -np.inf
    return float(10 ** ((_PART_REFERENCE_LUFS + gain_db - lufs) / 20)) if np.isfinite(lufs) else 1.0


def _character(y: np.ndarray, sample_rate: int, character: dict[str, float], level_db: float,
               rng: np.random.Generator) -> np.ndarray:
    """Tape drive, tape hiss and vinyl crackle, added to y in place, one `mix.CHUNK_SAMPLES` block at a time
    (a 10-minute song's noise is never held whole). Noise levels are dB under the music's loudness; each
    noise is scaled by its first block's RMS (filtered noise is stationary: later blocks have the same)."""
    import pedalboard as pb

    from .. import mix

    drive = pb.Pedalboard([pb.Distortion(drive_db=character["tape_drive_db"])]) \
        if character.get("tape_drive_db", 0) > 0 else None
    hiss_board = pb.Pedalboard([pb.HighpassFilter(2000), pb.LowpassFilter(9000)])
    crackle_board = pb.Pedalboard([pb.HighpassFilter(1500), pb.LowpassFilter(6000)])
    for board in (hiss_board, crackle_board):
        mix.fit_filters(board, sample_rate)
    hiss_gain = crackle_gain = None
    for start in range(0, y.shape[1], mix.CHUNK_SAMPLES):
        block = y[:, start:start + mix.CHUNK_SAMPLES]
        m, first = block.shape[1], start == 0
        if drive is not None:
            block[:] = drive(block, sample_rate, reset=first)
        if "tape_hiss_db" in character:
            hiss = hiss_board(rng.standard_normal((2, m), dtype=np.float32), sample_rate, reset=first)
            if hiss_gain is None:
                hiss_gain = np.float32(10 ** ((level_db + character["tape_hiss_db"]) / 20)
                                       / (np.sqrt(np.mean(hiss ** 2)) + 1e-12))
            block += hiss_gain * hiss
        if "vinyl_crackle_db" in character:
            crackle = np.zeros((2, m), np.float32)
            clicks = rng.random(m) < 12.0 / sample_rate  # about 12 clicks a second
            crackle[:, clicks] = rng.pareto(3.0, clicks.sum()).astype(np.float32) * rng.choice([-1, 1], clicks.sum())
            crackle = crackle_board(crackle, sample_rate, reset=first)
            if crackle_gain is None:
                crackle_gain = np.float32(10 ** ((level_db + character["vinyl_crackle_db"]) / 20)
                                          / (np.sqrt(np.mean(crackle ** 2)) + 1e-12))
            block += crackle_gain * crackle
    return y


def render_band(events: list[Event], grid: LeadSheet | np.ndarray | list[float], *, style: Style,
                sample_rate: int = 44100, soundfont: Path | None = None, seed: int = 0,
                duration_s: float | None = None, normalize: bool = False) -> tuple[np.ndarray, dict]:
    """The band as stereo float32 [shape=(2, samples)]: each part rendered alone with FluidSynth,
    mixed with its `mix` settings (its `reverb_wet` is a send to one shared room), summed, mastered
    with the style's chain and character, and gained to the style's `target_lufs`; with
    `normalize=True` also true-peak limited (`mix.normalize_loudness`), for a file of the band
    alone. `duration_s` pads or cuts the result (e.g. to the song's length).

    Returns (audio, facts: soundfont, per-part seconds (FluidSynth and the part's chain), programs, loudness).
    """
    from .. import mix

    soundfont = soundfont or find_soundfont()
    midi = to_midi(events, grid, style=style)
    parts = [inst for inst in midi.instruments if inst.notes]
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="covergen-band-"))

    def synthesise(inst):  # FluidSynth (a subprocess) renders the part to a file; two run at once
        wav = tmp / f"part{parts.index(inst)}.wav"
        single = copy.copy(midi)  # shares the tempo map
        inst, font = playable_part(style.part(inst.name), inst, soundfont)
        single.instruments = [inst]
        t = time.perf_counter()
        keep = _fluidsynth(single, wav, sample_rate=sample_rate, soundfont=font)
        return inst.name, wav, keep, time.perf_counter() - t, font

    n = int(round(duration_s * sample_rate)) if duration_s else None
    bus = room = None
    sends, fonts, seconds = 0.0, {}, {}
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            # parts are mixed in their order, streamed block by block from FluidSynth's file through the
            # part's chain into the bus (and its send into the room): no part is held whole, and the sum is
            # the same float32 additions in the same order on every run (bit-identical output)
            ahead = [pool.submit(synthesise, inst) for inst in parts[:2]]  # at most 3 part files on disk
            for i in range(len(parts)):
                name, wav, keep, dt, font = ahead[i].result()
                if i + 2 < len(parts):
                    ahead.append(pool.submit(synthesise, parts[i + 2]))
                t = time.perf_counter()
                part = style.part(name)
                length = min(keep, n) if n else keep
                if bus is None:
                    n = n or keep
                    bus, room = np.zeros((2, n), np.float32), np.zeros((2, n), np.float32)
                board = mix.build_stem_board(replace(part.mix, reverb_wet=0.0, gain_db=0.0))
                mix.fit_filters(board, sample_rate)
                gain = _pan_gains(part.mix.pan) * np.float32(_balance_gain(wav, length, board, sample_rate,
                                                                           part.mix.gain_db))
                send = np.float32(part.mix.reverb_wet + style.master.reverb_wet)
                for offset, block in _blocks(wav, min(length, n)):
                    block = board(block, sample_rate, reset=offset == 0)
                    block *= gain
                    stop = offset + block.shape[1]
                    bus[:, offset:stop] += block
                    if send > 0:
                        room[:, offset:stop] += send * block
                sends += float(send)
                wav.unlink()
                fonts[name], seconds[name] = str(font), dt + time.perf_counter() - t
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    n = n or 0
    facts = {"style": style.name, "soundfont": str(soundfont), "sample_rate": sample_rate,
             "parts": {name: {"program": next(i.program for i in parts if i.name == name), "soundfont": fonts[name],
                              "notes": sum(e.part == name for e in events), "render_s": round(dt, 3)}
                       for name, dt in seconds.items()},
             "duration_s": round(n / sample_rate, 3), "lufs": None}
    if n == 0 or bus is None:
        facts["render_s"] = round(time.perf_counter() - t0, 3)
        return np.zeros((2, n), np.float32), facts
    if sends > 0:
        import pedalboard as pb

        bus += mix.process_in_place(pb.Pedalboard([pb.Reverb(room_size=style.master.reverb_room_size, wet_level=1.0,
                                                             dry_level=0.0, damping=0.5, width=1.0)]),
                                    room, sample_rate)
    del room
    mix.process_in_place(mix.build_master_board(replace(style.master, reverb_wet=0.0)), bus, sample_rate)
    lufs = mix.integrated_lufs(bus, sample_rate=sample_rate)
    if style.character and np.isfinite(lufs):
        bus = _character(bus, sample_rate, style.character, lufs, np.random.default_rng(seed))
        lufs = mix.integrated_lufs(bus, sample_rate=sample_rate)
    if normalize:
        out = mix.normalize_loudness(bus, sample_rate=sample_rate, target_lufs=style.master.target_lufs,
                                     true_peak_ceiling_dbtp=style.master.true_peak_dbtp, copy=False)
    elif np.isfinite(lufs):  # a plain gain to the style's loudness; the cover's master limits the peaks
        bus *= np.float32(10 ** ((style.master.target_lufs - lufs) / 20))
        out = bus
    else:
        out = bus
    facts.update(render_s=round(time.perf_counter() - t0, 3),
                 lufs=round(style.master.target_lufs, 2) if np.isfinite(lufs) else None)
    return out, facts
