"""Drum stems played from recorded acoustic and electronic kits (Debian `hydrogen-drumkits`).

The General MIDI kits of the two SoundFonts were all the separator heard of drums, and on the
real multitrack the stage-2 model took the recorded kit for bass and vocals (its drum stem held
1-3% of the mix's energy where the truth is 28%). Hydrogen's kits are multi-velocity
recordings of real drums (Tama, Pearl, Sabian, Paiste...) and drum machines; this module reads
their drumkit.xml, writes humanised patterns in several styles (rock, half-time,
four-on-the-floor, sixteenth-note funk, swung ride) with fills and crashes, and plays them
through a random drum-bus chain (compression, room reverb), as produced records do.
"""
from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

__all__ = ["KITS_DIR", "TRAIN_KITS", "DEV_KITS", "available", "load_kit", "drum_stem"]

KITS_DIR = Path("/usr/share/hydrogen/data/drumkits")
TRAIN_KITS = ("ForzeeStereo", "The Black Pearl 1.0", "Millo_MultiLayered2", "Millo_MultiLayered3", "Millo-Drums_v.1",
              "Audiophob", "rumpf_kit_z01_h2", "ElectricEmpireKit", "HardElectro1")
DEV_KITS = ("BJA_Pacific", "ColomboAcousticDrumkit")  # only for choosing the recipe (benchmarks/dev_separation)
SAMPLE_RATE = 44100


def available() -> bool:
    return all((KITS_DIR / k / "drumkit.xml").is_file() for k in TRAIN_KITS + DEV_KITS)


def _role(name: str) -> str | None:
    """The pattern role of a kit instrument, from its name ("Sabian Hat Closed" -> hat_closed)."""
    n = name.lower()
    words = set(re.findall(r"[a-z]+", n))
    hat = "hat" in n or "hh" in words
    if "kick" in n or "bass drum" in n or "bassdrum" in n:
        return "kick"
    if "snare" in n and "roll" not in n and "rim" not in n:
        return "snare"
    if hat and ("pedal" in n or "foot" in n):
        return "hat_pedal"
    if hat and "open" in n and "semi" not in n:
        return "hat_open"
    if hat and "closed" in n:
        return "hat_closed"
    if re.search(r"\btom", n):  # not "custom"
        if "low" in n or "floor" in n:
            return "tom_low"
        if "mid" in n or "2" in n:
            return "tom_mid"
        if "hi" in n or "1" in n:
            return "tom_high"
    if "crash" in n and "bell" not in n and "ride" not in n:
        return "crash"
    if "ride" in n and "bell" not in n and "cup" not in n and "crash" not in n:
        return "ride"
    return None


@functools.lru_cache(maxsize=16)
def load_kit(name: str) -> dict[str, list[tuple[float, float, np.ndarray]]]:
    """role -> velocity layers [(min, max, mono float32 sample at 44.1 kHz)], the first instrument per role."""
    import soundfile as sf
    from librosa import resample

    folder = KITS_DIR / name
    if not (folder / "drumkit.xml").is_file():
        raise FileNotFoundError(f"drum kit {name!r} not found in {KITS_DIR} "
                                "(Debian hydrogen-drumkits; run `make install`)")
    root = ET.parse(folder / "drumkit.xml").getroot()
    ns = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
    kit: dict[str, list] = {}
    for inst in root.iter(ns + "instrument"):
        role = _role(inst.findtext(ns + "name") or "")
        if role is None or role in kit:
            continue
        layers = []
        # Old drumkit.xml files name one sample on the instrument itself, newer ones list velocity layers.
        for layer in list(inst.iter(ns + "layer")) or [inst]:
            file = folder / (layer.findtext(ns + "filename") or "")
            if not file.is_file():
                continue
            y, sr = sf.read(file, dtype="float32", always_2d=True)
            y = y.mean(axis=1)
            if sr != SAMPLE_RATE:
                y = resample(y, orig_sr=sr, target_sr=SAMPLE_RATE)
            gain = float(layer.findtext(ns + "gain") or 1.0)
            layers.append((float(layer.findtext(ns + "min") or 0), float(layer.findtext(ns + "max") or 1), y * gain))
        if layers:
            kit[role] = sorted(layers, key=lambda layer: layer[0])
    if not {"kick", "snare"} <= set(kit) or not {"hat_closed", "ride"} & set(kit):
        raise ValueError(f"drum kit {name!r} lacks a kick, a snare or a hi-hat/ride; it has {sorted(kit)}")
    return kit


def _pattern(rng: np.random.Generator, *, tempo_bpm: float, seconds: float) -> list[tuple[float, str, float]]:
    """Humanised hits (time s, role, velocity 0-1) in one style, with fills every 4 bars."""
    beat = 60.0 / tempo_bpm
    style = rng.choice(["rock", "halftime", "four_floor", "funk", "swing"])
    cymbal = "ride" if style == "swing" or rng.random() < 0.25 else "hat_closed"
    hits = []
    bars = int(np.ceil(seconds / (4 * beat)))
    kick_extra = rng.choice(8, size=2)  # this song's syncopated kicks (eighth-note positions)
    for bar in range(bars):
        t0 = bar * 4 * beat
        fill = bar % 4 == 3 and rng.random() < 0.7
        if bar % 4 == 0:
            hits += [(t0, "crash", 0.9), (t0, "kick", 0.9)]
        for eighth in range(8):
            t = t0 + eighth * beat / 2
            if fill and eighth >= 6:  # the fill takes the last beat
                break
            if style == "swing":
                if eighth % 2 == 0 or eighth in (3, 7):
                    hits.append((t + (beat / 6 if eighth % 2 else 0), "ride", 0.6 + 0.2 * (eighth % 4 == 2)))
                if eighth in (2, 6):
                    hits.append((t, "hat_pedal", 0.6))
                if eighth % 2 == 0:
                    hits.append((t, "kick", 0.3))
                if rng.random() < 0.15:
                    hits.append((t + beat / 6, "snare", 0.35))
                continue
            hits.append((t, cymbal, 0.75 if eighth % 2 == 0 else 0.55))
            if style == "funk":
                hits.append((t + beat / 4, cymbal, 0.4))
            if style == "four_floor":
                if eighth % 2 == 0:
                    hits.append((t, "kick", 0.95))
                else:
                    hits.append((t, "hat_open", 0.6))
                if eighth in (2, 6):
                    hits.append((t, "snare", 0.85))
                continue
            backbeat = (4,) if style == "halftime" else (2, 6)
            if eighth in backbeat:
                hits.append((t, "snare", 0.9))
            elif style == "funk" and rng.random() < 0.3:
                hits.append((t + beat / 4 * rng.integers(0, 2), "snare", 0.25))  # ghost notes
            if eighth in (0, 4 if style != "halftime" else 5) or (eighth in kick_extra and eighth not in backbeat):
                hits.append((t, "kick", 0.9))
            if eighth == 7 and rng.random() < 0.3:
                hits.append((t, "hat_open", 0.6))
        if fill:
            toms = ["tom_high", "tom_high", "tom_mid", "tom_mid", "tom_low", "tom_low"]
            for k in range(4):
                hits.append((t0 + 3 * beat + k * beat / 4, toms[min(k + int(rng.integers(0, 3)), 5)], 0.8))
    jitter = rng.normal(0.0, 0.006, len(hits))
    return [(max(0.0, t + j), role, float(np.clip(v + rng.normal(0, 0.08), 0.1, 1.0)))
            for (t, role, v), j in zip(hits, jitter) if t < seconds - 0.05]


# What plays a role a kit lacks.
_STAND_IN = {"ride": "hat_closed", "hat_closed": "ride", "hat_open": "hat_closed", "hat_pedal": "hat_closed",
             "crash": "ride", "tom_low": "tom_mid", "tom_mid": "tom_high", "tom_high": "snare"}


def _bus(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A drum bus as records have it: sometimes compressed, sometimes in a room."""
    import pedalboard

    chain = []
    if rng.random() < 0.6:
        chain.append(pedalboard.Compressor(threshold_db=float(rng.uniform(-24, -10)), ratio=float(rng.uniform(2, 6)),
                                           attack_ms=float(rng.uniform(1, 20)), release_ms=float(rng.uniform(50, 200))))
    if rng.random() < 0.6:
        chain.append(pedalboard.Reverb(room_size=float(rng.uniform(0.1, 0.6)), damping=float(rng.uniform(0.2, 0.8)),
                                       wet_level=float(rng.uniform(0.05, 0.25)), dry_level=1.0, width=0.0))
    return pedalboard.Pedalboard(chain)(y[None].astype(np.float32), SAMPLE_RATE)[0] if chain else y


def drum_stem(seed: int, kit_name: str, *, tempo_bpm: float, seconds: float, rms: float = 0.045) -> np.ndarray:
    """A mono drum stem [shape=(samples,)] at 44.1 kHz: a humanised pattern on a recorded kit, scaled to `rms`."""
    rng = np.random.default_rng(seed)
    kit = load_kit(kit_name)
    n = int(seconds * SAMPLE_RATE)
    out = np.zeros(n + SAMPLE_RATE * 4, np.float32)
    for t, role, velocity in _pattern(rng, tempo_bpm=tempo_bpm, seconds=seconds):
        while role not in kit:  # ends at snare or a hi-hat/ride, which every kit has
            role = _STAND_IN[role]
        layers = kit[role]
        fits = [y for lo, hi, y in layers if lo <= velocity <= hi] or [layers[-1][2]]
        sample = fits[int(rng.integers(len(fits)))][: SAMPLE_RATE * 4]
        start = int(t * SAMPLE_RATE)
        out[start:start + len(sample)] += sample * velocity
    y = _bus(out[:n], rng)
    return (y * rms / max(float(np.sqrt(np.mean(y ** 2))), 1e-9)).astype(np.float32)
