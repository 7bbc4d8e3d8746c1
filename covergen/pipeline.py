"""The cover pipeline: load -> separate -> transfer -> mix -> check.

The only module that imports more than one stage. `make_cover` is what `covergen make`
runs; each stage's wall time, the models it used and where they came from go into the
report, which is plain JSON-able data.
"""
from __future__ import annotations

import contextlib
import json
import logging
import platform
import threading
import time
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import __version__, audio, folders, mix, presets, registry, separate
from .errors import AudioContentError, AudioLoadError, CoverCheckError, OutputError, TransferError
from .leadsheet import NO_CHORD, LeadSheet

__all__ = ["Cover", "make_cover", "write_cover", "mix_stems", "read_stems_folder", "stems_folder_files",
           "transfer_file", "arrange_file", "read_lead_sheet", "lead_sheet_of", "analyse_file",
           "check_writable", "check_writable_file", "separate_song", "SILENT_STEM_DBFS", "STEMS_FACTS"]

log = logging.getLogger(__name__)

STEMS_FACTS = "covergen-stems.json"
SILENT_STEM_DBFS = -50.0
# A vocal stem this far (LU) under the song is taken for an instrumental's: what the separator called voice
# is bleed or a fragment of the lead, so an arranged cover carries the chords but little of the tune.
# Measured (60 s excerpts, spleeter): the shared sung songs 0.9-6.0 LU, the multitracks' true vocal stems 3.1-12.3;
# instrumentals: Vibe Ace 27.8, ragtime piano 48.4, but Tchaikovsky's celesta 12.3 (the separator takes it for a voice).
INSTRUMENTAL_VOCALS_LU = 15.0
# The melody of such a song: the lead line of its `other` stem (`lead.lead_line`), in LeadSheet.source["melody_stem"].
LEAD_LINE = "other: lead line"
# A louder vocal stem can still hold no tune: the separator takes a lead instrument's attacks, a choir of
# pads or the drums' bleed for a voice. When the vocal stem's melody notes cover under MIN_VOCAL_MELODY_SHARE
# of the song and the lead line's cover LEAD_OVER_VOCALS times as much, the lead line is the melody. Chosen on
# dev files (60 s, spleeter): the sung ones' vocal notes cover 0.32-0.86 (Christmas Wonderland, two Maamme
# recordings, the 80s Rock and Britpop multitracks: kept); instrumentals whose vocal stem sat 1.9-14 LU under
# the song 0.01-0.20, their lead lines 0.27-0.90 (renders 5, 7, 8, 10, 11: true notes found 2-9% -> 59-96%).
MIN_VOCAL_MELODY_SHARE = 0.25
LEAD_OVER_VOCALS = 2.0
# Share of beats whose chords the analysis filled in (the recogniser heard none there) from which `make`
# says so in one line: the band then plays the key's triads matched to the recording, not recognised chords.
FILLED_CHORDS_WARN_SHARE = 0.25
# Songs up to this long (s) are separated beside their analysis and checked beside their arrangement: 7-10%
# less wall time on a 3-minute song (bench/speed.md). Longer ones run those one after another: side by side, a
# 20-minute song peaked at 3.80 GB (3.32 as it is; the goal is 3.5), a 10-minute one 2.33 (goal 3).
SIDE_BY_SIDE_MAX_S = 12 * 60.0
# The guard keeps the original's `other` stem (its harmony) under the band at these levels (dB under the
# preset's own), quietest first, until the check passes: as much of the new band as the song allows. Chosen on
# dev covers (covers/, not in a bench): of the 3 the full stem passed, the quiet one passed 2 (two rock covers,
# moved +0.26 and +0.27 more toward rock); on the third it failed and the full one was used, as before.
GUARD_OTHER_DB = (-12.0, 0.0)
ProgressFn = Callable[[str, float], None]


def _side_by_side(duration_s: float) -> bool:
    return duration_s <= SIDE_BY_SIDE_MAX_S


class _Cancelled(Exception):
    """Stops a separation running beside an analysis that failed."""


@dataclass
class Cover:
    """A finished cover: stereo audio at the input's sample rate, and its report.

    `separated` and `transferred` are the stems at `work_rate`, kept so `--stems-dir` can
    write them and `covergen mix` can re-mix them into exactly this output.
    """
    audio: np.ndarray
    sample_rate: int
    report: dict
    separated: dict[str, np.ndarray] = field(default_factory=dict)
    transferred: dict[str, np.ndarray] = field(default_factory=dict)
    work_rate: int = separate.SAMPLE_RATE
    inputs: tuple[Path, ...] = ()  # the files it was made from: `write_cover` never writes over them


@contextlib.contextmanager
def _stage(report: dict, name: str, on_progress: ProgressFn | None):
    """Time one stage into report["stages_s"]; yield its fraction-done callback."""
    t0 = time.perf_counter()
    progress = (lambda fraction: on_progress(name, fraction)) if on_progress else (lambda fraction: None)
    progress(0.0)
    yield progress
    # a stage may run twice (the check's reference before the arrangement, its verdict after; the guard's remix)
    report["stages_s"][name] = round(report["stages_s"].get(name, 0.0) + time.perf_counter() - t0, 3)
    progress(1.0)


def _begin(genre: str, seed: int) -> tuple[presets.GenrePreset, dict]:
    """Seed the random generators, load the preset, and start the report both `make` and `mix` write."""
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed)
    preset = presets.load(genre)
    report = {"covergen_version": __version__, "python": platform.python_version(),
              "preset": {"name": preset.name, "source": preset.source, "tempo_change_bpm": preset.tempo_change_bpm},
              "seed": seed, "stages_s": {}, "transfer": []}
    return preset, report


def _output_facts(out: np.ndarray, sample_rate: int, levels: dict | None = None) -> dict:
    """The written audio's format and levels; `levels` ({"lufs", "true_peak_dbtp"}): as the master measured
    them (`mix`'s facts "master_levels"), else measured here."""
    if levels is None:
        levels = {"lufs": mix.integrated_lufs(out, sample_rate=sample_rate),
                  "true_peak_dbtp": mix.true_peak_dbtp(out, sample_rate=sample_rate)}
    return {"sample_rate": sample_rate, "channels": int(out.shape[0]), "duration_s": round(out.shape[1] / sample_rate, 3),
            "lufs": round(float(levels["lufs"]), 2), "true_peak_dbtp": round(float(levels["true_peak_dbtp"]), 2)}


def _stereo_at_work_rate(y: np.ndarray, sample_rate: int) -> np.ndarray:
    """Stages work on stereo at the separator's rate; the output goes back to the input's rate."""
    y = audio.resample(y, orig_sr=sample_rate, target_sr=separate.SAMPLE_RATE)
    return np.repeat(y, 2, axis=0) if y.shape[0] == 1 else y


def _peak_dbfs(y: np.ndarray) -> float:
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    return 20 * np.log10(peak) if peak > 0 else -np.inf


def _model_facts(name: str) -> dict:
    entry = registry.get(name)
    return {"name": name, "file": str(entry.file_path), "sha256": entry.sha256, "origin": entry.origin,
            "source": entry.source, "license": entry.license}


def _stem_seed(seed: int, stem: str) -> int:
    """One seed per stem from the run's seed: the vocal and bass noise are not one sequence twice."""
    import zlib

    return int(np.random.SeedSequence([seed, zlib.crc32(stem.encode())]).generate_state(1)[0])


def _share_channels(y: np.ndarray) -> np.ndarray:
    """A stem whose channels are one signal (a transfer plays a mono line) held once: a read-only
    stereo view of one channel, half the memory of a long song's stem until the cover is written."""
    if y.ndim == 2 and y.shape[0] > 1 and all(np.array_equal(y[0], ch) for ch in y[1:]):
        return np.broadcast_to(y[0].copy(), y.shape)
    return y


def _transfer(stems: dict[str, np.ndarray], preset: presets.GenrePreset, sample_rate: int,
              report: dict, progress, done: dict[str, np.ndarray] | None = None, *,
              seed: int = 0) -> dict[str, np.ndarray]:
    """Timbre-transfer the stems the preset asks for; refused or silent stems are kept as they are.

    `done` holds stems already transferred to the right instrument (from a kept stems folder).
    `seed` (the run's --seed) seeds each stem's synth noise.
    """
    from . import timbre

    targets = [(s, p.instrument) for s, p in preset.stems.items() if p.action == "transfer"]
    out = {}
    for i, (stem, instrument) in enumerate(targets):
        entry = {"stem": stem, "instrument": instrument}
        if done and stem in done:
            out[stem] = done[stem]
            entry.update(status="transferred", reused=True, model=_model_facts(f"timbre-{instrument}"))
        elif _peak_dbfs(stems[stem]) < SILENT_STEM_DBFS:
            entry.update(status="kept", reason=f"stem is silent (peak below {SILENT_STEM_DBFS:g} dBFS)")
        else:
            model = timbre.load_instrument(instrument)
            try:
                y, info = timbre.transfer_stem(stems[stem], sample_rate=sample_rate, instrument=model,
                                               seed=_stem_seed(seed, stem))
                out[stem] = _share_channels(y)
                entry.update(status="transferred", **info)
            except TransferError as err:
                entry.update(status="kept", reason=str(err))
                log.warning("%s stem kept: %s", stem, err)
            entry["model"] = _model_facts(f"timbre-{instrument}")
        report["transfer"].append(entry)
        progress((i + 1) / max(1, len(targets)))
    return out


@dataclass
class _Reference:
    """What the checks compare the cover with: the original's beat chroma (or why there is none) and
    its genre probabilities at the preset's loudness (or why none). Computed right after separation, so
    the original's audio is not held through the arrangement and the mix (memory on long songs)."""
    chroma: np.ndarray | None
    chroma_error: str
    genre: dict[str, float] | None
    genre_error: str
    tempo_bpm: float = 0.0  # the tempo the check tracked the original's beats at


def _reference(original: np.ndarray, sample_rate: int, preset: presets.GenrePreset,
               lufs: float | None = None) -> _Reference:
    """`original`: any rate and channels (the check and the genre model hear it mono at 22.05 kHz);
    `lufs`: its integrated loudness, when the caller has measured it (on the stereo original)."""
    from . import coverid, genre
    from .errors import GenreError, ModelError

    chroma, chroma_error, probs, genre_error, tempo = None, "", None, "", 0.0
    try:
        chroma, tempo = coverid.beat_chroma_and_tempo(original, sample_rate=sample_rate)
    except CoverCheckError as err:
        chroma_error = str(err)
    # the classifier's probabilities move with level: the original is judged at the cover's loudness
    level = mix.integrated_lufs(original, sample_rate=sample_rate) if lufs is None else lufs
    gain = np.float32(10 ** ((preset.master.target_lufs - level) / 20)) if np.isfinite(level) else np.float32(1)
    try:
        probs = genre.predict(original * gain, sample_rate=sample_rate)
    except (GenreError, ModelError) as err:
        genre_error = str(err)
    return _Reference(chroma, chroma_error, probs, genre_error, tempo)


def _cover_check(reference: _Reference, cover: np.ndarray, sample_rate: int, tempo_ratio: float) -> dict:
    """Both cover-check methods against the bundled background; the verdict is Qmax's (the stronger one).
    The cover's beats are tracked at the tempo it was made at (the original's times `tempo_ratio`, the
    mix's stretch rate), so that the two beat grids count the same beats (`coverid.beat_chroma_and_tempo`)."""
    from . import coverid

    if reference.chroma is None:
        return {"status": "skipped", "reason": reference.chroma_error}
    cover_tempo = reference.tempo_bpm * tempo_ratio
    try:
        chroma_cover, _ = coverid.beat_chroma_and_tempo(cover, sample_rate=sample_rate, tempo_bpm=cover_tempo)
        qmax = coverid.check(reference.chroma, chroma_cover, method="qmax")
    except CoverCheckError as err:
        return {"status": "skipped", "reason": str(err)}
    try:  # 2dftm needs 75 beats; a shorter song still gets qmax's verdict
        ftm = coverid.check(coverid.features_from_chroma(reference.chroma), coverid.features_from_chroma(chroma_cover))
    except CoverCheckError as err:
        ftm = {"status": "skipped", "reason": str(err)}
    return {"status": "done", **qmax, "2dftm": ftm, "beats_at_bpm": {"original": round(reference.tempo_bpm, 2),
                                                                      "cover": round(cover_tempo, 2)}}


def _genre_shift(reference: _Reference, cover: np.ndarray, sample_rate: int, preset: presets.GenrePreset) -> dict:
    """Genre probabilities of original and cover at the same loudness, and the transfer strength
    P(target | cover) - P(target | original)."""
    from . import genre
    from .errors import GenreError, ModelError

    if reference.genre is None:
        return {"status": "skipped", "reason": reference.genre_error}
    try:
        p_cover = genre.predict(cover, sample_rate=sample_rate)
    except (GenreError, ModelError) as err:
        return {"status": "skipped", "reason": str(err)}
    result = {"status": "done", "original": reference.genre, "cover": p_cover, "target": preset.genre_label}
    if preset.genre_label:
        result["transfer_strength"] = p_cover[preset.genre_label] - reference.genre[preset.genre_label]
    return result


def make_cover(
    song: Path,
    *,
    genre: str,
    separator: str = "auto",
    demucs_repo: Path | None = None,
    seed: int = 0,
    use_cache: bool = True,
    check: bool = True,
    mode: str | None = None,
    melody: str | None = None,
    keep_stems: bool = False,
    on_progress: ProgressFn | None = None,
) -> Cover:
    """Cover `song` in `genre` (a preset name or TOML file). Nothing is written to disk but the caches.

    separate -> analyse (lead sheet) -> arrange (a new band on the song's grid and chords) ->
    melody (the voice kept, or re-played by an instrument) -> mix -> check. A preset without a
    [band] table, or with `mode = "revoice"` (or `mode="revoice"` here), re-voices and re-mixes the
    original stems instead.

    Memory on long songs: the original is let go before the arrangement (the check's reference holds a
    mono 22.05 kHz copy until it is computed), and an arranged cover holds only the stems it mixes;
    `keep_stems=True` holds all of them in `Cover.separated` (for `--stems-dir`).
    `melody` ("voice" or an instrument name) replaces the preset's [band] melody.
    """
    preset, report = _begin(genre, seed)
    mode = mode or (preset.band.mode if preset.band is not None else "revoice")
    if mode not in presets.BAND_MODES:
        raise ValueError(f"mode={mode!r}; use one of {presets.BAND_MODES}")
    if melody is not None:
        if mode != "arrange":
            raise presets.PresetError(f"--melody {melody}: the melody is chosen in the arrange mode only; the "
                                      "revoice mode re-voices the vocal stem as the preset's [stems.vocals] says")
        preset = presets.with_melody(preset, melody)
        report["preset"]["melody"] = melody
    if mode == "arrange" and preset.band is None:
        raise presets.PresetError(f"{preset.source}: no [band] table, so it cannot arrange; add [band] with "
                                  "style = \"jazz\" (or another style), or use --mode revoice")
    t_start = time.perf_counter()
    with _stage(report, "load", on_progress):
        y_in, sr_in = audio.load(song)
        lufs_in = mix.integrated_lufs(y_in, sample_rate=sr_in)
        report["input"] = {"path": str(song), "sample_rate": sr_in, "channels": int(y_in.shape[0]),
                           "duration_s": round(y_in.shape[1] / sr_in, 3), "lufs": round(lufs_in, 2)}
        rate = separate.SAMPLE_RATE
    arranged = mode == "arrange"
    # the stems this cover mixes (an arranged one: the melody and the kept ones); the others go to the cache only
    needed = tuple(dict.fromkeys(("vocals", *preset.band.keep))) if arranged and not keep_stems else None
    with _stage(report, "analyse", on_progress) as progress:
        sheet, analysis_info, stems = lead_sheet_of(y_in, sr_in, name=str(song), separator=separator,
                                                    demucs_repo=demucs_repo, use_cache=use_cache, keep=needed,
                                                    song_lufs=lufs_in, on_progress=progress)
    tempo = sheet.tempo_bpm
    report["input"].update(tempo_bpm=round(tempo, 2), tempo_bpm_exact=tempo)
    report["lead_sheet"] = {"key": sheet.key, "tempo_bpm": round(tempo, 2), "meter": f"{sheet.beats_per_bar}/4",
                            "bars": len(sheet.bars()), "melody_notes": len(sheet.melody),
                            "swing_ratio": sheet.swing_ratio, "cache_hit": analysis_info["cache_hit"],
                            "chart": sheet.chart()}
    _chord_warnings(sheet, report, str(song))
    with _stage(report, "separate", on_progress) as progress:
        if stems is None:  # the lead sheet came from the cache: separate (usually a stem-cache hit too)
            if needed is not None and sheet.source.get("melody_stem") == LEAD_LINE:
                needed = tuple(dict.fromkeys(needed + ("other",)))
            stems, sep_info = separate.separate(_stereo_at_work_rate(y_in, sr_in), sample_rate=rate,
                                                separator=separator, demucs_repo=demucs_repo,
                                                use_cache=use_cache, keep=needed, on_progress=progress)
        else:
            sep_info = analysis_info["separation"]
        report["separation"] = sep_info
    report["mode"] = mode
    # The check's reference (the original's beat chroma and genre, 8 s of a 3-minute song) is computed in a
    # second thread while the cover is arranged and mixed, which is mostly one core's work (there rather than
    # beside the separation, which keeps both cores busy: one run of a 3-minute song 50 s against 55).
    helper = reference_job = None
    if check:  # the job holds the original as the check and the genre model hear it: mono at 22.05 kHz
        from .genre.features import SAMPLE_RATE as REFERENCE_RATE, mono_22k

        with _stage(report, "check", on_progress):  # (its first call in a fresh install compiles librosa's numba)
            helper = ThreadPoolExecutor(max_workers=1)
            reference_job = helper.submit(_reference, mono_22k(y_in, sample_rate=sr_in), REFERENCE_RATE, preset,
                                          lufs_in)
            if not _side_by_side(report["input"]["duration_s"]):
                futures.wait([reference_job])  # a long song: its memory is let go before the arrangement
    del y_in
    try:
        if arranged:
            keep = None
            if "no_chords" in report["lead_sheet"]:  # the band would rest all through: keep the original's harmony
                keep = _keep_with_other(preset)
                stems = _with_stems(stems, report, separator=separator, demucs_repo=demucs_repo, use_cache=use_cache)
                report["lead_sheet"]["no_chords"]["kept_stems"] = list(keep)
            out, transferred = _arranged_cover(sheet, stems, preset, report, name=str(song), seed=seed,
                                               output_rate=sr_in, on_progress=on_progress, keep=keep)
        else:
            out, transferred, report["mix"] = _revoiced_cover(stems, preset, report, tempo_bpm=tempo,
                                                              output_rate=sr_in, seed=seed, on_progress=on_progress)
    except BaseException:
        if helper:
            helper.shutdown(wait=False, cancel_futures=True)
        raise
    reference, output = None, None
    if helper:
        with _stage(report, "check", on_progress):
            reference = reference_job.result()
        helper.shutdown()
    if reference is not None:
        with ThreadPoolExecutor(max_workers=1) as judge:  # the cover's genre is judged while it is checked
            genre_job = judge.submit(_genre_shift, reference, out, sr_in, preset)
            with _stage(report, "check", on_progress):
                report["cover_check"] = _cover_check(reference, out, sr_in, report["mix"]["stretch_rate"])
            if arranged and report["cover_check"].get("verdict") not in (None, "cover"):
                out, revoiced = _guard(sheet, stems, preset, report, seed=seed, reference=reference, sr_in=sr_in,
                                       on_progress=on_progress, separator=separator, demucs_repo=demucs_repo,
                                       use_cache=use_cache)
                transferred = transferred if revoiced is None else revoiced
                genre_job = judge.submit(_genre_shift, reference, out, sr_in, preset)  # of the cover kept
            with _stage(report, "genre", on_progress):
                output = _output_facts(out, sr_in, report["mix"].get("master_levels"))
                report["genre"] = genre_job.result()
    report["stages_s"]["total"] = round(time.perf_counter() - t_start, 3)
    report["output"] = output or _output_facts(out, sr_in, report["mix"].get("master_levels"))
    report["real_time_factor"] = round(report["stages_s"]["total"] / report["input"]["duration_s"], 3)
    return Cover(audio=out, sample_rate=sr_in, report=report, separated=stems, transferred=transferred,
                 work_rate=rate, inputs=(Path(song),))


def _revoiced_cover(stems: dict[str, np.ndarray], preset: presets.GenrePreset, report: dict, *, tempo_bpm: float,
                    output_rate: int, seed: int, on_progress: ProgressFn | None
                    ) -> tuple[np.ndarray, dict[str, np.ndarray], dict]:
    """The revoice mode (covergen's first pipeline): the preset's stems re-played by their DDSP instruments,
    then every stem re-mixed with its chain, at the preset's tempo change. Transfers are logged in
    report["transfer"]. Returns (cover at output_rate, the transferred stems, the mix's facts)."""
    with _stage(report, "transfer", on_progress) as progress:
        transferred = _transfer(stems, preset, separate.SAMPLE_RATE, report, progress, seed=seed)
    with _stage(report, "mix", on_progress):
        out, facts = mix.render({**stems, **transferred}, sample_rate=separate.SAMPLE_RATE, preset=preset,
                                tempo_bpm=tempo_bpm, output_sample_rate=output_rate)
    return out, transferred, facts


def _tempo_ratio(sheet: LeadSheet, preset: presets.GenrePreset, name: str) -> float:
    """The cover's tempo over the song's: the preset's tempo change applied to the song's tempo."""
    tempo = sheet.tempo_bpm
    if not preset.tempo_change_bpm or not tempo:
        return 1.0
    if tempo + preset.tempo_change_bpm <= 0.2 * tempo:
        raise AudioContentError(f"{name}: the preset's tempo change ({preset.tempo_change_bpm:+g} BPM) leaves "
                                f"{tempo + preset.tempo_change_bpm:.0f} BPM from {tempo:.0f}")
    return (tempo + preset.tempo_change_bpm) / tempo


def _instrumental_warning(vocals: np.ndarray, rate: int, report: dict, entry: dict, name: str,
                          melody_stem: str) -> None:
    """Note in `entry` how far the vocal stem sits under the song. On an instrumental (INSTRUMENTAL_VOCALS_LU)
    say that the melody is the lead line of `other`, or, for a lead sheet read from a file made without
    that choice, warn that the tune is not in the stem the cover keeps."""
    if "lufs" not in report.get("input", {}):
        return
    under = report["input"]["lufs"] - mix.integrated_lufs(vocals, sample_rate=rate)
    entry["vocals_under_song_lu"] = round(under, 1) if np.isfinite(under) else None
    if melody_stem == LEAD_LINE:
        log.info("%s: an instrumental (the vocal stem is %s LU under the song): the melody is the lead line of "
                 "the other stem", name, entry["vocals_under_song_lu"])
    elif under >= INSTRUMENTAL_VOCALS_LU:
        how_far = f"{under:.0f} LU" if np.isfinite(under) else "far"
        entry["warning"] = (f"the vocal stem is {how_far} under the song: an instrumental? The cover "
                            "carries its chords but little of its tune; --mode revoice keeps the original's parts")
        log.warning("%s: %s", name, entry["warning"])


def _chord_warnings(sheet: LeadSheet, report: dict, name: str) -> None:
    """Say in one line (and in report["lead_sheet"]) when the band has no chords to play, or plays chords the
    analysis filled in from the key because the recogniser heard none (analysis.FILL_MIN_BEATS)."""
    entry = report["lead_sheet"]
    n_beats = max(1, len(sheet.chords))
    filled = int(sheet.source.get("filled_beats", 0))
    entry["filled_beats"] = filled
    if all(c == NO_CHORD for c in sheet.chords):
        entry["no_chords"] = {"warning": "no chords found on any beat: the band has nothing to play, so the cover "
                                         "keeps the original's other stem (its accompaniment) under the melody"}
        log.warning("%s: %s", name, entry["no_chords"]["warning"])
    elif filled >= FILLED_CHORDS_WARN_SHARE * n_beats:
        entry["filled_warning"] = (f"the chord recogniser heard no chord on {filled} of {n_beats} beats; there the "
                                   f"band plays {sheet.key}'s triads matched to the recording")
        log.warning("%s: %s", name, entry["filled_warning"])


def _keep_with_other(preset: presets.GenrePreset) -> tuple[str, ...]:
    """The stems the arranged mix keeps when the band alone does not carry the song: the preset's, and
    the original's `other` (its harmony)."""
    return tuple(dict.fromkeys(preset.band.keep + ("other",)))


def _with_stems(stems: dict[str, np.ndarray], report: dict, names: tuple[str, ...] = ("other",), *,
                separator: str, demucs_repo: Path | None, use_cache: bool) -> dict[str, np.ndarray]:
    """`stems` with the original's stems `names`, separated again (a stem-cache hit) when `make_cover` let them go."""
    missing = tuple(name for name in names if name not in stems)
    if not missing:
        return stems
    y, sr = audio.load(Path(report["input"]["path"]))
    again, _ = separate.separate(_stereo_at_work_rate(y, sr), sample_rate=separate.SAMPLE_RATE, separator=separator,
                                 demucs_repo=demucs_repo, use_cache=use_cache, keep=missing)
    return {**stems, **{name: again[name] for name in missing}}


def _arranged_cover(sheet: LeadSheet, stems: dict[str, np.ndarray], preset: presets.GenrePreset, report: dict,
                    *, name: str, seed: int, output_rate: int, on_progress: ProgressFn | None,
                    keep: tuple[str, ...] | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The band in the preset's style on the song's (stretched) grid, the melody over it, mixed.
    Returns (cover audio at output_rate, {"vocals": transferred melody} if the melody was re-played)."""
    from . import arrange, timbre

    rate = separate.SAMPLE_RATE
    band_preset = preset.band
    keep = band_preset.keep if keep is None else keep
    ratio = _tempo_ratio(sheet, preset, name)
    with _stage(report, "arrange", on_progress):
        band, _, facts = arrange.arrange(sheet, band_preset.resolved, seed=seed, tempo_ratio=ratio, sample_rate=rate)
        report["band"] = {"style": band_preset.resolved.name, "description": band_preset.resolved.description,
                          **facts}
    transferred: dict[str, np.ndarray] = {}
    with _stage(report, "melody", on_progress) as progress:
        melody_stem = sheet.source.get("melody_stem", "vocals")
        entry: dict = {"stem": melody_stem, "melody": band_preset.melody}
        melody, line_facts = _melody_of(stems, melody_stem)
        if line_facts:
            entry["lead_line"] = line_facts
        if _peak_dbfs(melody) < SILENT_STEM_DBFS:
            melody = None
            entry.update(status="none", reason=f"the melody ({melody_stem}) is silent "
                                               f"(peak below {SILENT_STEM_DBFS:g} dBFS)")
        else:
            _instrumental_warning(stems["vocals"], rate, report, entry, name, melody_stem)
            if band_preset.melody == "voice":
                entry.update(status="voice kept")
                gate = timbre.voice_gate(sheet.melody, melody.shape[-1], rate)
                if gate is not None:  # the original band's bleed where the singer rests is not mixed
                    entry["voice_open_share"] = round(float(gate.mean()), 3)
                    melody = (audio.to_mono(melody) * gate)[None]  # mono, as the mix plays the melody
                    del gate
            else:
                model = timbre.load_instrument(band_preset.melody)
                try:
                    melody, info = timbre.transfer_stem(melody, sample_rate=rate, instrument=model,
                                                        seed=_stem_seed(seed, "vocals"), tempo_ratio=ratio,
                                                        on_progress=progress)
                    transferred["vocals"] = melody  # played at the cover's tempo: the mix does not stretch it
                    entry.update({**info, "status": "transferred", "instrument": band_preset.melody,
                                  "tempo_ratio": ratio})
                except TransferError as err:
                    entry.update(status="voice kept", reason=str(err))
                    log.warning("melody kept as sung: %s", err)
                entry["model"] = _model_facts(f"timbre-{band_preset.melody}")
        report["transfer"].append(entry)
    with _stage(report, "mix", on_progress):
        out, facts = mix.render_arrangement(band, melody, {k: stems[k] for k in keep}, sample_rate=rate,
                                            preset=preset, tempo_ratio=ratio, output_sample_rate=output_rate,
                                            melody_at_tempo="vocals" in transferred)
        report["mix"] = {**facts, "kept_stems": list(keep), "tempo_in_bpm": round(sheet.tempo_bpm, 2),
                         "tempo_target_bpm": round(sheet.tempo_bpm * ratio, 2)}
    return out, transferred


def _guard(sheet: LeadSheet, stems: dict[str, np.ndarray], preset: presets.GenrePreset, report: dict, *,
           seed: int, reference: _Reference, sr_in: int, on_progress: ProgressFn | None, separator: str,
           demucs_repo: Path | None, use_cache: bool) -> tuple[np.ndarray, dict[str, np.ndarray] | None]:
    """The arranged cover failed the cover check (e.g. wrong chords, or an instrumental whose tune is not in
    the vocal stem): mix again keeping the original `other` stem (its harmony) under the band, at each level
    of GUARD_OTHER_DB until the check passes; if none does, re-voice the original's parts (the revoice mode)
    and keep whichever the check scores higher. Each step is one line and an entry in report["guard"]. `other`
    (and for the re-voicing drums and bass) are separated again (stem-cache hits) when `make_cover` let them go.
    Returns (cover, the re-voiced stems if the re-voicing was kept, else None)."""
    first = report["cover_check"]
    keep = _keep_with_other(preset)
    song = Path(report["input"]["path"])
    stems = _with_stems(stems, report, separator=separator, demucs_repo=demucs_repo, use_cache=use_cache)
    report["guard"] = {"first_check": first, "action": "kept the original other stem under the band",
                       "kept_stems": list(keep), "tries": []}
    best = None
    for other_db in GUARD_OTHER_DB:
        log.warning("the arranged cover did not pass the cover check (%s, score %.3f); keeping the original "
                    "harmony (other stem) under the band at %+g dB", report["cover_check"].get("verdict"),
                    report["cover_check"].get("score", 0.0), other_db)
        quieter = {**stems, "other": stems["other"] * np.float32(10 ** (other_db / 20))} if other_db else stems
        retry: dict = {"stages_s": report["stages_s"], "transfer": []}
        out, _ = _arranged_cover(sheet, quieter, preset, retry, name=str(song), seed=seed, output_rate=sr_in,
                                 on_progress=on_progress, keep=keep)
        del quieter
        check = _cover_check(reference, out, sr_in, retry["mix"]["stretch_rate"])
        report["guard"]["tries"].append({"other_db": other_db, "check": check})
        report["cover_check"] = check
        passed = check.get("verdict") in (None, "cover")
        if passed or best is None or check.get("score", -np.inf) > best[1].get("score", -np.inf):
            best = (out, check, retry["mix"], other_db)  # the first that passes, else the best scored
        del out
        if passed:
            break
    out, second, report["mix"], other_db = best
    report["guard"].update(second_check=second, other_db=other_db)
    report["cover_check"] = second
    if second.get("verdict") in (None, "cover"):
        return out, None
    log.warning("the cover still does not pass the cover check (%s, score %.3f); re-voicing the original's "
                "parts instead (--mode revoice)", second.get("verdict"), second.get("score", 0.0))
    stems = _with_stems(stems, report, separate.STEMS, separator=separator, demucs_repo=demucs_repo,
                        use_cache=use_cache)
    revoice: dict = {"stages_s": report["stages_s"], "transfer": []}
    revoiced, transferred, facts = _revoiced_cover(stems, preset, revoice, tempo_bpm=sheet.tempo_bpm, output_rate=sr_in,
                                                   seed=seed, on_progress=on_progress)
    third = _cover_check(reference, revoiced, sr_in, facts["stretch_rate"])
    report["guard"]["revoice_check"] = third
    if third.get("score", -np.inf) <= second.get("score", -np.inf):
        log.warning("the re-voiced cover scores no better (%s, score %.3f); keeping the arranged one",
                    third.get("verdict"), third.get("score", 0.0))
        return out, None
    report["guard"]["action"] = "re-voiced the original's parts (the revoice mode)"
    report.update(mode="revoice", mix=facts, cover_check=third, transfer=report["transfer"] + revoice["transfer"])
    if third.get("verdict") != "cover":
        log.warning("the re-voiced cover does not pass the cover check either (%s, score %.3f)",
                    third.get("verdict"), third.get("score", 0.0))
    return revoiced, transferred


def write_cover(cover: Cover, out: Path, *, report_path: Path | None = None,
                stems_dir: Path | None = None) -> None:
    """Write the cover (atomically), optionally its JSON report and its stems."""
    out = Path(out)
    if out.exists() and out.is_dir():
        raise OutputError(f"{out}: is a folder; give a file name like song-jazz.wav")
    audio.check_output_not_input([out, report_path, *_stems_dir_outputs(stems_dir)], cover.inputs)
    if stems_dir is not None:
        stems_dir = Path(stems_dir)
        separate.save_stems(cover.separated, stems_dir / "separated", sample_rate=cover.work_rate)
        if cover.transferred:
            separate.save_stems(cover.transferred, stems_dir / "transferred", sample_rate=cover.work_rate)
        facts = {"song": cover.report["input"]["path"], "tempo_bpm": cover.report["input"]["tempo_bpm_exact"],
                 "output_sample_rate": cover.sample_rate, "preset": cover.report["preset"]["name"],
                 # the re-played stems `covergen mix` can reuse: at the song's tempo (an arranged cover's
                 # melody is played at the cover's; its file is written, not reused)
                 "transferred": {t["stem"]: t["instrument"] for t in cover.report["transfer"]
                                 if t["status"] == "transferred" and t.get("tempo_ratio", 1.0) == 1.0}}
        (stems_dir / STEMS_FACTS).write_text(json.dumps(facts, indent=2))
    audio.save(out, cover.audio, sample_rate=cover.sample_rate)
    cover.report["output"]["path"] = str(out)
    if report_path is not None:
        with audio.atomic_path(Path(report_path)) as tmp:
            tmp.write_text(json.dumps(cover.report, indent=2, default=float))


def check_writable(out: Path, *, inputs=(), report: Path | None = None, stems_dir: Path | None = None) -> None:
    """Fail before any work if `out` cannot be written (missing or read-only folder, a folder name),
    or if `out`, `report` or a file `write_cover` would put in `stems_dir` is one of `inputs`
    (OutputIsInputError, a usage error)."""
    out = Path(out)
    audio.check_output_not_input([out, report, *_stems_dir_outputs(stems_dir)], inputs)
    if out.is_dir():
        raise OutputError(f"{out}: is a folder; give a file name like song-jazz.wav")
    if out.suffix.lower() not in (".wav", ".flac"):
        raise OutputError(f"{out}: unsupported output format {out.suffix or '(none)'}; use .wav or .flac")
    if stems_dir is not None and Path(stems_dir).exists() and not Path(stems_dir).is_dir():
        raise OutputError(f"{stems_dir}: --stems-dir is a file; give a folder")
    check_writable_file(out)


def _stems_dir_outputs(stems_dir: Path | None) -> list[Path]:
    """Every path `write_cover` writes under `stems_dir` (none without one)."""
    if stems_dir is None:
        return []
    root = Path(stems_dir)
    return [root, root / STEMS_FACTS] + [root / sub / f"{name}.wav" for sub in ("separated", "transferred")
                                         for name in separate.STEMS]


def separate_song(song: Path, out_root: Path, *, separator: str = "auto", demucs_repo: Path | None = None,
                  on_progress: Callable[[float], None] | None = None) -> tuple[Path, dict]:
    """`covergen separate`: write stems to OUT/<separator>/<track>/<stem>.wav (the demucs CLI layout)."""
    def stem_paths(names) -> list[Path]:
        return [Path(out_root) / name / Path(song).stem / f"{s}.wav" for name in names for s in separate.STEMS]

    candidates = ["htdemucs", "spleeter", "embedded", "unmix"] if separator == "auto" else [separator]
    audio.check_output_not_input(stem_paths(candidates), [song])
    y, sr = audio.load(song)
    y = _stereo_at_work_rate(y, sr)
    stems, info = separate.separate(y, sample_rate=separate.SAMPLE_RATE, separator=separator,
                                    demucs_repo=demucs_repo, on_progress=on_progress)
    folder = Path(out_root) / info["separator"] / Path(song).stem
    audio.check_output_not_input(stem_paths([info["separator"]]), [song])
    try:
        separate.save_stems(stems, folder, sample_rate=separate.SAMPLE_RATE)
    except PermissionError:
        raise OutputError(f"{folder}: not writable") from None
    return folder, info


_SIX_STEM_ALIASES = {"guitar": "other", "piano": "other"}


def _stem_files(folder: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for file in sorted(folder.iterdir()) if folder.is_dir() else []:
        if file.suffix.lower() in audio.AUDIO_SUFFIXES:
            name = _SIX_STEM_ALIASES.get(file.stem.lower(), file.stem.lower())
            if name in separate.STEMS:
                found.setdefault(name, []).append(file)
    return found


def _find_stem_folder(root: Path) -> Path:
    """The folder holding the stem files: ROOT itself, ROOT/separated (covergen --stems-dir),
    or the one ROOT/<separator>/<track> or ROOT/<track> below it (the demucs CLI layout)."""
    if not root.is_dir():
        raise AudioLoadError(f"{root}: no such folder of stems")
    for candidate in (root, root / "separated"):
        if _stem_files(candidate):
            return candidate
    below = sorted({f.parent for f in root.glob("*/*") if _stem_files(f.parent)}
                   | {f.parent for f in root.glob("*/*/*") if _stem_files(f.parent)})
    if len(below) == 1:
        return below[0]
    if len(below) > 1:
        names = ", ".join(str(b.relative_to(root)) for b in below[:5])
        raise AudioLoadError(f"{root}: holds stems of {len(below)} tracks ({names}); point at one track folder")
    raise AudioLoadError(f"{root}: no stem files named vocals/drums/bass/other (or guitar/piano) .wav/.flac")


def stems_folder_files(root: Path) -> list[Path]:
    """The files `read_stems_folder(root)` reads: stem audio, kept transferred stems, the facts file."""
    root = Path(root)
    files = [f for found in _stem_files(_find_stem_folder(root)).values() for f in found]
    return files + [root / STEMS_FACTS] + [root / "transferred" / f"{name}.wav" for name in separate.STEMS]


def read_stems_folder(root: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict, list[str]]:
    """Load a stems folder at covergen's working rate.

    Returns (stems, transferred, facts, notices): missing stems are silent, guitar/piano add
    into `other`, stems of other rates or lengths are resampled and padded; each such fix
    is a notice. `transferred` and `facts` come from a `make --stems-dir` folder.
    """
    root = Path(root)
    folder = _find_stem_folder(root)
    rate = separate.SAMPLE_RATE
    notices: list[str] = []
    loaded: dict[str, np.ndarray] = {}
    for name, files in _stem_files(folder).items():
        for file in files:
            y, sr = audio.load(file, allow_silence=True, min_duration_s=0.1)
            if sr != rate:
                notices.append(f"{file.name}: resampled {sr} Hz -> {rate} Hz")
            y = _stereo_at_work_rate(y, sr)
            if name in loaded:
                notices.append(f"{file.name}: mixed into {name}")
                n = max(loaded[name].shape[1], y.shape[1])
                y = np.pad(y, ((0, 0), (0, n - y.shape[1]))) + np.pad(loaded[name], ((0, 0), (0, n - loaded[name].shape[1])))
            loaded[name] = y
    lengths = {k: v.shape[1] for k, v in loaded.items()}
    n = max(lengths.values())
    if len(set(lengths.values())) > 1:
        notices.append(f"stems differ in length ({min(lengths.values()) / rate:.2f}-{n / rate:.2f} s); "
                       "shorter ones padded with silence")
    for name in separate.STEMS:
        if name not in loaded:
            notices.append(f"no {name} stem; using silence")
    stems = {k: np.pad(loaded[k], ((0, 0), (0, n - loaded[k].shape[1]))) if k in loaded
             else np.zeros((2, n), np.float32) for k in separate.STEMS}
    facts_file = root / STEMS_FACTS
    facts = json.loads(facts_file.read_text()) if facts_file.is_file() else {}
    transferred = {}
    if facts.get("transferred"):
        for name in facts["transferred"]:
            y, _ = audio.load(root / "transferred" / f"{name}.wav", allow_silence=True, min_duration_s=0.0)
            transferred[name] = y
    return stems, transferred, facts, notices


def mix_stems(stems_dir: Path, *, genre: str, seed: int = 0, on_progress: ProgressFn | None = None) -> Cover:
    """`covergen mix`: transfer (where the preset asks and it was not done already) and mix a stems folder.

    On a folder kept by `make --stems-dir` with the same preset this reproduces make's output.
    """
    preset, report = _begin(genre, seed)
    t_start = time.perf_counter()
    rate = separate.SAMPLE_RATE
    with _stage(report, "load", on_progress):
        stems, transferred, facts, notices = read_stems_folder(Path(stems_dir))
        for notice in notices:
            log.warning(notice)
        report["input"] = {"path": str(stems_dir), "notices": notices, "stems_facts": facts}
        song = sum(stems.values())
    with _stage(report, "analyse", on_progress):
        tempo = facts.get("tempo_bpm") or mix.measure_tempo_bpm(song, sample_rate=rate)
        report["input"].update(tempo_bpm=tempo and round(tempo, 2), duration_s=round(song.shape[1] / rate, 3))
    reusable = {k: v for k, v in transferred.items()
                if facts.get("transferred", {}).get(k) == preset.stems[k].instrument}
    with _stage(report, "transfer", on_progress) as progress:
        transferred = _transfer(stems, preset, rate, report, progress, done=reusable, seed=seed)
    out_rate = int(facts.get("output_sample_rate") or rate)
    with _stage(report, "mix", on_progress):
        out, mix_facts = mix.render({**stems, **transferred}, sample_rate=rate, preset=preset, tempo_bpm=tempo,
                                    output_sample_rate=out_rate)
        report["mix"] = mix_facts
    report["stages_s"]["total"] = round(time.perf_counter() - t_start, 3)
    report["output"] = _output_facts(out, out_rate, mix_facts["master_levels"])
    return Cover(audio=out, sample_rate=out_rate, report=report, separated=stems, transferred=transferred,
                 work_rate=rate, inputs=tuple(stems_folder_files(Path(stems_dir))))


def transfer_file(song: Path, out: Path, *, instrument: str, octave: str | int = "auto",
                  force: bool = False, seed: int = 0, on_progress: Callable[[float], None] | None = None) -> dict:
    """`covergen transfer`: re-play a monophonic recording with an instrument; output at the input's rate."""
    from . import timbre

    check_writable(out, inputs=[song])
    y, sr = audio.load(song)
    model = timbre.load_instrument(instrument)
    try:
        y_out, info = timbre.transfer_stem(y, sample_rate=sr, instrument=model, octave=octave, force=force,
                                           seed=seed, on_progress=on_progress)
    except TransferError as err:
        raise TransferError(f"{song}: {err}") from None
    audio.save(out, y_out, sample_rate=sr)
    return {"input": str(song), "output": str(out), "instrument": instrument, "sample_rate": sr, **info}


def read_lead_sheet(path: Path) -> LeadSheet:
    """A lead sheet .json (`covergen-leadsheet-1`); a missing or malformed file is an AudioLoadError."""
    try:
        return LeadSheet.from_json(Path(path).read_text())
    except FileNotFoundError:
        raise AudioLoadError(f"{path}: no such file") from None
    except (ValueError, TypeError, KeyError) as err:  # json.JSONDecodeError is a ValueError
        raise AudioLoadError(f"{path}: not a covergen lead sheet ({str(err).splitlines()[0]})") from None


ANALYSIS_VERSION = "analysis-8"  # bump when analysis.py changes what it finds: cached lead sheets are keyed by it


def _melody_stem(vocals: np.ndarray, song_lufs: float) -> str:
    """Which stem carries the tune: "vocals", or LEAD_LINE for an instrumental (its vocal stem
    INSTRUMENTAL_VOCALS_LU or more under the song), whose tune the separator leaves in `other`."""
    under = song_lufs - mix.integrated_lufs(vocals, sample_rate=separate.SAMPLE_RATE)
    return LEAD_LINE if not np.isfinite(under) or under >= INSTRUMENTAL_VOCALS_LU else "vocals"


def _melody_and_notes(stems: dict[str, np.ndarray], song_lufs: float, name: str) -> tuple[str, list]:
    """The stem that carries the tune (`_melody_stem`, then MIN_VOCAL_MELODY_SHARE) and its melody notes."""
    from . import timbre

    def notes_of(stem: str) -> list:
        return timbre.melody_notes(_melody_of(stems, stem)[0], sample_rate=separate.SAMPLE_RATE)

    melody_stem = _melody_stem(stems["vocals"], song_lufs)
    notes = notes_of(melody_stem)
    if melody_stem == "vocals":
        seconds = stems["vocals"].shape[-1] / separate.SAMPLE_RATE
        vocal_share = _note_share(notes, seconds)
        if vocal_share < MIN_VOCAL_MELODY_SHARE:
            line_notes = notes_of(LEAD_LINE)
            line_share = _note_share(line_notes, seconds)
            if line_share > 0 and line_share >= LEAD_OVER_VOCALS * vocal_share:
                log.info("%s: the vocal stem's notes cover %.0f%% of the song, the other stem's lead line %.0f%%: "
                         "the melody is the lead line", name, 100 * vocal_share, 100 * line_share)
                melody_stem, notes = LEAD_LINE, line_notes
    return melody_stem, notes


def _note_share(notes: list, seconds: float) -> float:
    """Share of `seconds` the notes sound (they do not overlap: one line)."""
    return sum(n.duration_s for n in notes) / seconds if seconds > 0 else 0.0


def _melody_of(stems: dict[str, np.ndarray], melody_stem: str) -> tuple[np.ndarray, dict]:
    """The song's melody at separate.SAMPLE_RATE, the vocal stem or the lead line of `other`, and the
    lead line's facts (empty for the vocal stem)."""
    if melody_stem != LEAD_LINE:
        return stems["vocals"], {}
    from .lead import lead_line

    line = lead_line(stems["other"], sample_rate=separate.SAMPLE_RATE)
    return line.audio, line.facts()


def lead_sheet_of(y: np.ndarray, sample_rate: int, *, name: str = "input", separator: str = "auto",
                  demucs_repo: Path | None = None, chords: str = "chordia", use_cache: bool = True,
                  keep: tuple[str, ...] | None = None, song_lufs: float | None = None,
                  on_progress: Callable[[float], None] | None = None
                  ) -> tuple[LeadSheet, dict, dict[str, np.ndarray] | None]:
    """The song's lead sheet (beats, meter, key, chords; the melody from the separated vocal stem),
    cached by the audio's content hash, the separator and the analysis version, so a second genre does
    not analyse again. Non-music is refused before anything is separated.

    Returns (lead sheet, info, stems): stems at separate.SAMPLE_RATE when this call separated the
    song (info["separation"] says how; only the stems in `keep` and the vocals, with `keep`), None on a
    cache hit. `song_lufs`: y's integrated loudness, if already measured.
    """
    from . import analysis

    progress = on_progress or (lambda fraction: None)
    y = np.asarray(y, dtype=np.float32)
    separator_name = separate.resolve_separator(separator, demucs_repo)[0]
    key = f"{audio.content_hash(y, sample_rate)[:24]}-{separator_name}-{chords}-{ANALYSIS_VERSION}"
    cache_file = folders.cache_dir("leadsheets") / f"{key}.json"
    if use_cache and cache_file.is_file():
        try:
            sheet = LeadSheet.from_json(cache_file.read_text())
            progress(1.0)
            return sheet, {"cache_hit": True, "separator": separator_name}, None
        except (ValueError, TypeError, KeyError):
            log.warning("ignoring unreadable cached lead sheet %s", cache_file)
    # The song is separated (and its melody tracked) in a second thread while the mix is analysed: the
    # two need nothing of each other, and one alone leaves a core idle much of the time. Separation
    # starts once the analysis has taken the input for music, so non-music is refused before it. A song
    # longer than SIDE_BY_SIDE_MAX_S is separated after its analysis, in this thread (memory).
    side_by_side = _side_by_side(y.shape[-1] / sample_rate)
    done = {"analysis": 0.0, "separation": 0.0}
    stop = threading.Event()  # set when the analysis fails: the separation stops at its next chunk

    def report_progress() -> None:
        progress(0.4 * done["analysis"] + 0.5 * done["separation"])

    def analysis_progress(fraction: float) -> None:
        done["analysis"] = fraction
        report_progress()

    def separation_progress(fraction: float) -> None:
        if stop.is_set():
            raise _Cancelled()
        done["separation"] = fraction
        if not side_by_side:
            report_progress()

    def separate_and_track() -> tuple[dict[str, np.ndarray], dict, list]:
        stems, info = separate.separate(_stereo_at_work_rate(y, sample_rate), sample_rate=separate.SAMPLE_RATE,
                                        separator=separator, demucs_repo=demucs_repo, use_cache=use_cache,
                                        keep=None if keep is None else tuple(dict.fromkeys(("vocals", "other", *keep))),
                                        on_progress=separation_progress)
        level = mix.integrated_lufs(y, sample_rate=sample_rate) if song_lufs is None else song_lufs
        melody_stem, notes = _melody_and_notes(stems, level, name)
        info["melody_stem"] = melody_stem
        if keep is not None and "other" not in keep and melody_stem == "vocals":
            del stems["other"]  # only an instrumental's melody needs it
        return stems, info, notes

    if not side_by_side:
        sheet = analysis.analyse(y, sample_rate=sample_rate, chords=chords, name=name, on_progress=analysis_progress)
        stems, sep_info, sheet.melody = separate_and_track()
    else:
        worker, jobs = ThreadPoolExecutor(max_workers=1), []
        try:
            sheet = analysis.analyse(y, sample_rate=sample_rate, chords=chords, name=name,
                                     on_music=lambda: jobs.append(worker.submit(separate_and_track)),
                                     on_progress=analysis_progress)
            while not futures.wait(jobs, timeout=0.5).done:
                report_progress()  # the separation's, from this thread
            stems, sep_info, sheet.melody = jobs[0].result()
        except BaseException:
            stop.set()
            raise
        finally:
            worker.shutdown(wait=False, cancel_futures=True)
    sheet.source.update(separator=sep_info["separator"], melody_stem=sep_info["melody_stem"])
    progress(1.0)
    if use_cache:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            with audio.atomic_path(cache_file) as tmp:
                tmp.write_text(sheet.to_json())
        except (OSError, OutputError) as err:  # a read-only cache must not stop the analysis
            log.warning("could not cache the lead sheet in %s: %s", cache_file, err)
    return sheet, {"cache_hit": False, "separator": sep_info["separator"], "separation": sep_info}, stems


def analyse_file(song: Path, *, json_out: Path | None = None, lab_out: Path | None = None,
                 midi_out: Path | None = None, separator: str = "auto", demucs_repo: Path | None = None,
                 chords: str = "chordia", use_cache: bool = True,
                 on_progress: Callable[[float], None] | None = None) -> tuple[LeadSheet, dict]:
    """`covergen analyse`: the lead sheet of `song`, optionally written as JSON, .lab and MIDI."""
    outputs = [p for p in (json_out, lab_out, midi_out) if p is not None]
    audio.check_output_not_input(outputs, [song])
    for path in outputs:
        check_writable_file(path)
    y, sr = audio.load(song)
    sheet, info, _ = lead_sheet_of(y, sr, name=str(song), separator=separator, demucs_repo=demucs_repo,
                                   chords=chords, use_cache=use_cache, on_progress=on_progress)
    if json_out is not None:
        with audio.atomic_path(Path(json_out)) as tmp:
            tmp.write_text(sheet.to_json())
    if lab_out is not None:
        with audio.atomic_path(Path(lab_out)) as tmp:
            tmp.write_text(sheet.lab_text())
    if midi_out is not None:
        with audio.atomic_path(Path(midi_out)) as tmp:
            sheet.to_midi().write(str(tmp))
    return sheet, info


def arrange_file(song: Path, out: Path, *, genre: str, midi_out: Path | None = None, seed: int = 0,
                 on_progress: ProgressFn | None = None) -> dict:
    """`covergen arrange`: the band alone, in the preset's style on the song's grid and chords, at the
    preset's tempo. `song` is audio (analysed first) or a lead sheet .json. Writes `out` (at the
    song's sample rate, 44.1 kHz for a lead sheet, at the style's loudness, true-peak limited) and
    the band's MIDI (one track per part) to `midi_out`. Returns the report: key, tempo, meter, chord
    chart, style, what each part played, stage times."""
    from . import arrange

    preset = presets.load(genre)
    if preset.band is None:
        from .errors import PresetError

        raise PresetError(f"{preset.source}: no [band] table; add [band] with style = \"jazz\" (or another "
                          "style) to arrange")
    check_writable(out, inputs=[song, Path(genre) if str(genre).endswith(".toml") else None])
    if midi_out is not None:
        audio.check_output_not_input([midi_out, out if Path(midi_out) == Path(out) else None], [song, out])
        check_writable_file(Path(midi_out))
    report: dict = {"covergen_version": __version__, "seed": seed, "stages_s": {},
                    "preset": {"name": preset.name, "source": preset.source, "tempo_change_bpm": preset.tempo_change_bpm}}
    t_start = time.perf_counter()
    with _stage(report, "analyse", on_progress):
        if Path(song).suffix.lower() == ".json":
            sheet, sample_rate = read_lead_sheet(song), 44100
        else:
            y, sample_rate = audio.load(song)
            sheet, _, _ = lead_sheet_of(y, sample_rate, name=str(song))
    if len(sheet.beats_s) < 2:
        raise AudioContentError(f"{song}: fewer than two beats; nothing to arrange on")
    tempo = sheet.tempo_bpm
    ratio = _tempo_ratio(sheet, preset, str(song))
    style = preset.band.resolved
    with _stage(report, "arrange", on_progress):
        band, events, facts = arrange.arrange(sheet, style, seed=seed, tempo_ratio=ratio, sample_rate=sample_rate)
        band = mix.normalize_loudness(band, sample_rate=sample_rate, target_lufs=style.master.target_lufs,
                                      true_peak_ceiling_dbtp=style.master.true_peak_dbtp)
    audio.save(out, band, sample_rate=sample_rate)
    if midi_out is not None:
        midi = arrange.to_midi(events, arrange.stretched_grid(sheet, ratio), style=style,
                               beats_per_bar=sheet.beats_per_bar,
                               first_downbeat=sheet.downbeats[0] if sheet.downbeats else 0)
        with audio.atomic_path(Path(midi_out)) as tmp:
            midi.write(str(tmp))
    report["stages_s"]["total"] = round(time.perf_counter() - t_start, 3)
    report["lead_sheet"] = {"path": str(song), "key": sheet.key, "tempo_bpm": round(tempo, 2),
                            "meter": f"{sheet.beats_per_bar}/4", "bars": len(sheet.bars()), "chart": sheet.chart()}
    report["band"] = {"style": style.name, "style_source": style.source, "description": style.description, **facts}
    report["output"] = {"path": str(out), **({"midi": str(midi_out)} if midi_out else {}),
                        **_output_facts(band, sample_rate)}
    return report


def check_writable_file(out: Path) -> None:
    """Fail early if an output file cannot be written. Root ignores permission bits, so really create one."""
    import tempfile

    parent = Path(out).parent if str(Path(out).parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{out}: output folder {parent} does not exist")
    try:
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".covergen-probe-"):
            pass
    except OSError as err:
        raise OutputError(f"{out}: cannot write in {parent} ({err.strerror or err})") from None
