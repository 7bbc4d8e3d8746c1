"""Dev check for band styles: the band alone, rendered from hand-made lead sheets, judged twice.

Scored here to choose a style's settings (balance, voicings, extensions, kit), never reported as
quality (the benchmark judges covers of real songs):
- genre: the project's genre model on the band-only render (top 3), 40 bars of a pop and a
  jazz progression at a tempo typical of the style;
- harmony: the analysis stage re-reads the band's chords; the share of beats whose triad is the
  lead sheet's (16 bars, C Am F G7 in C major).

    python -m benchmarks.dev_arrange [STYLE or style.toml ...]    # all shipped styles by default
"""
from __future__ import annotations

import argparse

import numpy as np

from covergen import arrange
from covergen.arrange.styles import available
from covergen.leadsheet import LeadSheet, chord_pitch_classes

TEMPO_BPM = {"jazz": 130, "bossa_nova": 135, "rock": 125, "classical": 90, "lofi": 80}
PROGRESSIONS = {"pop": ("C:maj", "A:min", "F:maj", "G:7"), "jazz": ("D:min7", "G:7", "C:maj7", "A:7")}


def lead_sheet(*, bars: int, tempo_bpm: float, progression: tuple[str, ...], key: str = "C major") -> LeadSheet:
    beats = 0.3 + np.arange(bars * 4) * 60.0 / tempo_bpm
    return LeadSheet(beats_s=beats.tolist(), downbeats=list(range(0, bars * 4, 4)), beats_per_bar=4,
                     chords=[progression[(i // 4) % len(progression)] for i in range(bars * 4)], key=key,
                     duration_s=float(beats[-1] + 1.0))


def genre_check(style: str) -> dict[str, list]:
    from covergen import genre, separate

    name = style.rsplit("/", 1)[-1].removesuffix(".toml")
    out = {}
    for label, progression in PROGRESSIONS.items():
        sheet = lead_sheet(bars=40, tempo_bpm=TEMPO_BPM.get(name, 110), progression=progression)
        # at the rate make renders bands: a band rendered at 22.05 kHz (FluidSynth's samples and the tape
        # drive's aliasing) is judged differently, e.g. a lo-fi band P(hiphop) 0.25 there, 0.05 at 44.1 kHz
        band, _, _ = arrange.arrange(sheet, style, seed=0, sample_rate=separate.SAMPLE_RATE)
        out[label] = [(g, round(p, 2)) for g, p in genre.top(genre.predict(band, sample_rate=separate.SAMPLE_RATE), 3)]
    return out


def harmony_check(style: str) -> float:
    from covergen import analysis

    sheet = lead_sheet(bars=16, tempo_bpm=120, progression=PROGRESSIONS["pop"])
    band, _, _ = arrange.arrange(sheet, style, seed=0, sample_rate=44100)
    heard = analysis.analyse(band, sample_rate=44100)
    grid = np.asarray(heard.beats_s)
    same = [set(chord_pitch_classes(heard.chords[int(np.argmin(np.abs(grid - t)))])[:3])
            == set(chord_pitch_classes(chord)[:3]) for t, chord in zip(sheet.beats_s, sheet.chords)]
    return float(np.mean(same))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("styles", nargs="*", default=available())
    for style in parser.parse_args().styles:
        print(f"{style}: chords re-heard {harmony_check(style):.2f}; genre {genre_check(style)}", flush=True)


if __name__ == "__main__":
    main()
