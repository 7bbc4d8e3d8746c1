"""Multitrack training songs for the learned separator, rendered with FluidSynth.

Each stem is rendered on its own, so the targets are exact and the mix is their sum.
Four song families, all different from the benchmark's held-out songs (demo_song seeds >= 1000):
- Ryan's Mammoth tunes (music21 corpus) arranged as in cover_songs: melody -> vocals,
  accompaniment -> other, with that module's instrument, style and tempo variety;
- demo_song arrangements with seeds 100-159 (the bundled demo song is seed 7, the benchmark's
  held-out songs are seeds >= 1000) and instruments drawn from the wider lists;
- "rock": demo_song arrangements with seeds 200-247 voiced like band music: overdriven and
  distorted guitars, rock organ, synth leads and pads, brass as "other"; voice-like and synth
  leads; electric and synth basses. Real mixes hold these sounds and the first two families
  have none (the stage-2 fine-tune of train_separator adds this family);
- "kit": demo_song arrangements with seeds 400-447, band- or GM-voiced, whose drums play
  humanised patterns on recorded Hydrogen kits through a drum bus (drumkits; stage 3 adds it).
Songs alternate between two SoundFonts (FluidR3, MuseScore General) and between GM drum kits,
so the separator does not learn one sample set. Stored as mono float16 at 44.1 kHz:
data/separation/<name>.npy [shape=(4, samples)], stems in separate.STEMS order.

    python -m covergen.training.separation_data      # ~10 min on 2 cores
"""
from __future__ import annotations

import argparse
import logging
import os
import random
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ..audio import atomic_path
from . import drumkits

__all__ = ["data_dir", "build", "load_songs", "SAMPLE_RATE", "SEED"]

log = logging.getLogger(__name__)

SAMPLE_RATE = 44100
SEED = 4242
SONG_S = 24.0  # seconds of each song kept: the tunes loop, more adds little variety
DEMO_FAMILY_SONGS = 60
ROCK_FAMILY_SONGS = 48
ROCK_FIRST_SEED = 200
ROCK_DEV_SEEDS = range(300, 306)  # rendered only for choosing the recipe (benchmarks/dev_separation.py)
# 0-based GM programs of the rock family
_ROCK_OTHERS = (29, 30, 27, 18, 81, 90, 61, 62, 26, 88)  # overdriven, distortion, clean electric guitar,
#   rock organ, saw lead, polysynth, brass section, synth brass, jazz guitar, new-age pad
_ROCK_LEADS = (52, 53, 54, 85, 80, 65, 66, 56, 40)  # choir, voice oohs, synth voice, voice lead, square lead,
#   alto and tenor sax, trumpet, violin
_ROCK_BASSES = (33, 34, 38, 39, 36)  # finger, pick, synth bass 1 and 2, slap
KIT_FAMILY_SONGS = 48
KIT_FIRST_SEED = 400
KIT_DEV_SEEDS = range(600, 606)  # played on drumkits.DEV_KITS; only for benchmarks/dev_separation.py
_DRUM_KITS = (0, 8, 16, 24, 25, 32, 40)  # GM kits: standard, room, power, electronic, 808, jazz, brush
_SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf3/MuseScore_General.sf3")
# melody role of cover_songs.arrange -> covergen stem
_ROLE_TO_STEM = {"melody": "vocals", "drums": "drums", "bass": "bass", "accompaniment": "other"}


def data_dir() -> Path:
    """$COVERGEN_DATA/separation or the checkout's data/separation (gitignored)."""
    base = os.environ.get("COVERGEN_DATA")
    root = Path(base) if base else Path(__file__).resolve().parents[2] / "data"
    return root / "separation"


def _soundfonts() -> list[Path]:
    found = [Path(p) for p in _SOUNDFONTS if Path(p).is_file()]
    if not found:
        raise RuntimeError("no General MIDI SoundFont found (Debian fluid-soundfont-gm; run `make install`)")
    return found


def _render_stems(parts: dict, *, soundfont: Path, end_s: float) -> np.ndarray:
    """parts: stem -> pretty_midi.Instrument. Returns mono float16 [shape=(4, samples)]."""
    import pretty_midi

    from ..separate import STEMS
    from .render import render_midi

    n = int(end_s * SAMPLE_RATE)
    out = np.zeros((len(STEMS), n), np.float32)
    for i, stem in enumerate(STEMS):
        inst = parts[stem]
        inst.notes = [note for note in inst.notes if note.start < end_s - 0.25]
        for note in inst.notes:
            note.end = min(note.end, end_s)
        if not inst.notes:
            continue
        midi = pretty_midi.PrettyMIDI()
        midi.instruments.append(inst)
        y = render_midi(midi, sample_rate=SAMPLE_RATE, soundfont=soundfont, gain=0.6).mean(axis=0)[:n]
        out[i, :len(y)] = y
    return out.astype(np.float16)


def _tune_song(index: int, source: str) -> tuple[str, np.ndarray] | None:
    from .cover_songs import arrange, arrangements, load_work

    work = load_work(source)
    if work is None:
        return None
    rng = random.Random(f"{SEED}:{source}")
    arr = rng.choice(arrangements(work, 4))
    midi = arrange(work, arr)
    parts = {_ROLE_TO_STEM[inst.name]: inst for inst in midi.instruments}
    parts["drums"].program = rng.choice(_DRUM_KITS)
    fonts = _soundfonts()
    return f"tune-{index:03d}", _render_stems(parts, soundfont=fonts[index % len(fonts)], end_s=SONG_S)


def _demo_parts(seed: int, tempo: float, programs: dict[str, int]) -> dict:
    """stem -> pretty_midi.Instrument of a demo_song arrangement SONG_S long."""
    from .demo_song import compose

    song = compose(seed=seed, bars=int(np.ceil(SONG_S / (240.0 / tempo))), tempo_bpm=tempo, programs=programs)
    return {stem: midi.instruments[0] for stem, midi in song.items()}


def _demo_family_song(index: int) -> tuple[str, np.ndarray]:
    from .cover_songs import _ACCOMP, _BASS, _MELODY

    seed = 100 + index  # not the demo song's seed 7, nor the benchmark's held-out seeds >= 1000
    rng = random.Random(f"{SEED}:demo:{seed}")
    tempo = rng.uniform(80, 150)
    programs = {"vocals": rng.choice(_MELODY)[0], "bass": rng.choice(_BASS), "other": rng.choice(_ACCOMP)}
    parts = _demo_parts(seed, tempo, programs)
    parts["drums"].program = rng.choice(_DRUM_KITS)
    fonts = _soundfonts()
    return f"demo-{index:03d}", _render_stems(parts, soundfont=fonts[(index + 1) % len(fonts)], end_s=SONG_S)


def rock_song(seed: int) -> np.ndarray:
    """A band-voiced demo_song arrangement: mono float16 stems [shape=(4, samples)], SONG_S long."""
    rng = random.Random(f"{SEED}:rock:{seed}")
    tempo = rng.uniform(80, 160)
    programs = {"vocals": rng.choice(_ROCK_LEADS), "bass": rng.choice(_ROCK_BASSES), "other": rng.choice(_ROCK_OTHERS)}
    parts = _demo_parts(seed, tempo, programs)
    parts["drums"].program = rng.choice(_DRUM_KITS)
    fonts = _soundfonts()
    return _render_stems(parts, soundfont=fonts[seed % len(fonts)], end_s=SONG_S)


def kit_song(seed: int, kits: tuple[str, ...] = drumkits.TRAIN_KITS) -> np.ndarray:
    """A demo_song arrangement, band- or GM-voiced, whose drums play on a recorded Hydrogen kit (drumkits)."""
    from ..separate import STEMS
    from .cover_songs import _ACCOMP, _BASS, _MELODY

    rng = random.Random(f"{SEED}:kit:{seed}")
    tempo = rng.uniform(70, 170)
    programs = {"vocals": rng.choice(_ROCK_LEADS + tuple(p for p, _ in _MELODY)),
                "bass": rng.choice(_ROCK_BASSES + tuple(_BASS)), "other": rng.choice(_ROCK_OTHERS + tuple(_ACCOMP))}
    parts = _demo_parts(seed, tempo, programs)
    parts["drums"].notes = []  # played from the kit below
    fonts = _soundfonts()
    stems = _render_stems(parts, soundfont=fonts[seed % len(fonts)], end_s=SONG_S)
    drums = drumkits.drum_stem(seed, kits[seed % len(kits)], tempo_bpm=tempo, seconds=SONG_S,
                               rms=rng.uniform(0.025, 0.06))
    stems[STEMS.index("drums")] = drums[: stems.shape[1]]
    return stems


def _job(job: tuple[str, int, str]) -> str | None:
    kind, index, source = job
    folder = data_dir()
    if kind == "rock":
        result = f"rock-{index:03d}", rock_song(ROCK_FIRST_SEED + index)
    elif kind == "kit":
        result = f"kit-{index:03d}", kit_song(KIT_FIRST_SEED + index)
    else:
        result = _tune_song(index, source) if kind == "tune" else _demo_family_song(index)
    if result is None:
        return None
    name, stems = result
    with atomic_path(folder / f"{name}.npy") as tmp:
        np.save(tmp, stems)
    return name


def build(*, workers: int = 2) -> list[Path]:
    """Render every training song not yet on disk; returns all song files."""
    from . import cover_songs

    folder = data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    sources = [s for split in cover_songs.cached_selection(cover_songs.data_dir()).values() for s in split]
    jobs = ([("tune", i, s) for i, s in enumerate(sources)] + [("demo", i, "") for i in range(DEMO_FAMILY_SONGS)]
            + [("rock", i, "") for i in range(ROCK_FAMILY_SONGS)] + [("kit", i, "") for i in range(KIT_FAMILY_SONGS)])
    todo = [j for j in jobs if not (folder / f"{j[0]}-{j[1]:03d}.npy").exists()]
    log.info("%d songs to render (%d on disk)", len(todo), len(jobs) - len(todo))
    with ProcessPoolExecutor(workers) as pool:
        for done, name in enumerate(pool.map(_job, todo), 1):
            if done % 20 == 0:
                log.info("rendered %d/%d", done, len(todo))
    return sorted(folder.glob("[!.]*.npy"))


def load_songs(folder: Path | None = None) -> dict[str, np.ndarray]:
    """name -> mono float16 stems [shape=(4, samples)] (memory-mapped)."""
    folder = folder or data_dir()
    return {p.stem: np.load(p, mmap_mode="r") for p in sorted(folder.glob("[!.]*.npy"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    files = build(workers=args.workers)
    seconds = sum(np.load(p, mmap_mode="r").shape[1] for p in files) / SAMPLE_RATE
    print(f"{len(files)} songs, {seconds / 60:.1f} min of audio in {data_dir()}")


if __name__ == "__main__":
    main()
