"""Dev check for presets: `make` covers of dev excerpts (never bench files), judged by the genre model.

Scored here to choose a preset's settings (the melody, a part's instrument), never reported as quality
(bench_arrange judges the bench files). The dev files are real recordings from ../shared/data/covers and
the Britpop multitrack, and lead-sheet renders with seeds under 1000 (the bench's renders are 1000+),
60 s excerpts, separated by spleeter, covered with seed 0. Per file: P(target | cover) - P(target |
original), the cover's top genre, the check's verdict and what the guard did; then the mean.

    python -m benchmarks.dev_covers bossa_nova --melody voice tenor_sax
    python -m benchmarks.dev_covers /tmp/my_bossa.toml          # a preset file (its style may be a path)
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from .bench_arrange import materialise
from .common import SHARED

COVERS = SHARED / "covers"
DEV_FILES = (
    COVERS / "jingle_bells" / "christmas_wonderland.mp3",
    COVERS / "maamme_vart_land" / "finland_maamme_second_recording.ogg",
    COVERS / "maamme_vart_land" / "estonia_mu_isamaa_1927_vocal.ogg", COVERS / "jingle_bells" / "kevin_macleod.mp3",
    7, 10, COVERS / "nkosi_sikelel_iafrika" / "zambia_anthem.ogg", COVERS / "jingle_bells" / "xmas_card.mp3",
    5, 9, COVERS / "nkosi_sikelel_iafrika" / "south_africa_1994_1997.ogg",
    COVERS / "god_save_the_king" / "us_navy_band_god_save_the_queen.ogg",
    SHARED / "multitrack" / "Music_Delta__Britpop" / "mixture.flac",
)


def _name(source) -> str:
    return f"seed{source}" if isinstance(source, int) else f"{source.parent.name}-{source.stem}"


def main() -> None:
    from covergen import pipeline

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset", help="a preset name or .toml file")
    parser.add_argument("--melody", nargs="*", default=[None], help="melodies to compare (voice, an instrument)")
    parser.add_argument("--files", help="a subset: indices into the dev list, e.g. 0,3")
    args = parser.parse_args()
    files = [DEV_FILES[int(i)] for i in args.files.split(",")] if args.files else list(DEV_FILES)
    moves: dict = {m: [] for m in args.melody}
    with tempfile.TemporaryDirectory() as work:
        for source in files:
            kind = "rendered" if isinstance(source, int) else "real"
            path, _ = materialise(_name(source), kind, source, Path(work), 60.0)
            for melody in args.melody:
                r = pipeline.make_cover(path, genre=args.preset, separator="spleeter", melody=melody).report
                genre, check = r.get("genre", {}), r.get("cover_check", {})
                move = genre.get("transfer_strength", float("nan"))  # P(target | cover) - P(target | original)
                moves[melody].append(move)
                top = max(genre["cover"], key=genre["cover"].get) if "cover" in genre else "-"
                print(f"{_name(source):55s} melody={melody or 'preset'}: move {move:+.2f} (top {top}), "
                      f"{check.get('verdict')} {check.get('score', 0):.2f}, guard: "
                      f"{r.get('guard', {}).get('action', '-')}", flush=True)
    for melody, values in moves.items():
        print(f"melody={melody or 'preset'}: mean move {np.nanmean(values):+.3f} over {len(values)} files")


if __name__ == "__main__":
    main()
