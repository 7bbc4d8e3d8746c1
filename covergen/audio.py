"""Audio I/O. Everything inside covergen is float32 [shape=(channels, samples)] plus a sample rate.

`load` is the one place where files become arrays: it names the file in every error.
`save` writes atomically (temp file in the same folder, then rename), so a failed run
never leaves a partial output file.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from . import __version__
from .errors import AudioContentError, AudioLoadError, OutputError, OutputIsInputError

__all__ = ["load", "read_channels_first", "save", "resample", "to_mono", "content_hash", "atomic_path", "same_file",
           "check_output_not_input", "is_covergen_output", "onset_strength", "tempo_bpm", "beat_track", "SOFTWARE_TAG", "MIN_DURATION_S", "MAX_DURATION_S",
           "FORMATS", "AUDIO_SUFFIXES", "SILENCE_DBFS", "find_audio", "true_runs"]

MIN_DURATION_S = 1.0
MAX_DURATION_S = 20 * 60.0
SILENCE_DBFS = -70.0  # a peak below this is silence: nothing to cover, compare or classify
FORMATS = {"wav": "WAV", "flac": "FLAC"}
# File suffixes `load` decodes: libsndfile's containers that carry music (Ogg holds Vorbis or Opus).
_SUFFIXES_BY_FORMAT = {"WAV": (".wav",), "FLAC": (".flac",), "OGG": (".ogg", ".oga", ".opus"), "MP3": (".mp3",),
                       "AIFF": (".aif", ".aiff")}
AUDIO_SUFFIXES = tuple(suffix for fmt, suffixes in _SUFFIXES_BY_FORMAT.items() if fmt in sf.available_formats()
                       for suffix in suffixes)
_BLOCK_SAMPLES = 1 << 18  # files are read, checked and written this many frames at a time
SOFTWARE_TAG = f"covergen {__version__}"  # written into every file `save` writes (WAV INFO ISFT, FLAC comment)


def load(
    path: Path,
    *,
    sample_rate: int | None = None,
    min_duration_s: float = MIN_DURATION_S,
    max_duration_s: float = MAX_DURATION_S,
    allow_silence: bool = False,
) -> tuple[np.ndarray, int]:
    """Read wav/flac/ogg/mp3 (any rate, mono or stereo, any bit depth).

    Returns (y float32 [shape=(channels, samples)], sample_rate). With `sample_rate`
    the audio is resampled to it. Raises AudioLoadError / AudioContentError naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise AudioLoadError(f"{path}: no such file")
    if path.is_dir():
        raise AudioLoadError(f"{path}: is a folder, expected an audio file")
    if path.stat().st_size == 0:
        raise AudioLoadError(f"{path}: empty file (0 bytes)")
    try:
        info = sf.info(str(path))
    except Exception as err:  # libsndfile's messages vary by format; all mean "not readable audio"
        raise AudioLoadError(f"{path}: not a readable audio file ({_short(err)})") from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioLoadError(f"{path}: no audio frames (truncated or corrupt header)")
    duration_s = info.frames / info.samplerate
    if duration_s > max_duration_s:
        raise AudioContentError(
            f"{path}: {duration_s / 60:.1f} min is longer than the {max_duration_s / 60:.0f} min limit; cut it first")
    try:
        y, sr = read_channels_first(path)
    except Exception as err:
        raise AudioLoadError(f"{path}: corrupt or truncated audio ({_short(err)})") from None
    missing = _wav_missing_bytes(path)
    if missing:
        raise AudioLoadError(f"{path}: truncated WAV file ({missing} bytes of audio data missing)")
    if y.shape[1] / sr < min_duration_s:
        raise AudioContentError(
            f"{path}: only {1000 * y.shape[1] / sr:.0f} ms of audio; need at least {min_duration_s:g} s")
    peak = 0.0
    for start in range(0, y.shape[1], _BLOCK_SAMPLES):  # in blocks: no song-sized temporaries
        block = y[:, start:start + _BLOCK_SAMPLES]
        if not np.all(np.isfinite(block)):
            raise AudioLoadError(f"{path}: audio contains NaN or infinite samples")
        peak = max(peak, float(np.max(np.abs(block))))
    if y.shape[0] > 2:
        y = np.ascontiguousarray(y[:2])
    if not allow_silence and (20 * np.log10(peak) if peak > 0 else -np.inf) < SILENCE_DBFS:
        raise AudioContentError(f"{path}: the audio is silent (peak below {SILENCE_DBFS:g} dBFS)")
    if sample_rate is not None and sample_rate != sr:
        y, sr = resample(y, orig_sr=sr, target_sr=sample_rate), sample_rate
    return y, int(sr)


def read_channels_first(path: Path) -> tuple[np.ndarray, int]:
    """Decode to float32 [shape=(channels, samples)] block by block into one array: no whole
    (samples, channels) copy beside it (a 20-minute stereo song is 424 MB either way). The header's
    frame count sizes the array; a decoder that yields more or fewer is followed. No checks: `load`
    is the reader for users' files."""
    with sf.SoundFile(str(path)) as f:
        y = np.empty((f.channels, max(f.frames, 0)), np.float32)
        filled, extra = 0, []
        for block in f.blocks(blocksize=_BLOCK_SAMPLES, dtype="float32", always_2d=True):
            fits = min(len(block), y.shape[1] - filled)
            y[:, filled:filled + fits] = block[:fits].T
            filled += fits
            if fits < len(block):
                extra.append(np.ascontiguousarray(block[fits:].T))
        sample_rate = f.samplerate
    if extra:
        y = np.concatenate([y, *extra], axis=1)
    elif filled < y.shape[1]:
        y = np.ascontiguousarray(y[:, :filled])
    return y, int(sample_rate)


def find_audio(folder: Path, *, recursive: bool = True) -> list[Path]:
    """The audio files (by AUDIO_SUFFIXES) in `folder`, sorted; hidden files and hidden folders are skipped
    (covergen's own temp files are hidden too: `.name.XXXX.part.wav`)."""
    folder = Path(folder)
    candidates = folder.rglob("*") if recursive else folder.glob("*")
    return sorted(p for p in candidates if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _wav_missing_bytes(path: Path) -> int:
    """Bytes the WAV 'data' chunk declares beyond the end of the file (0 if complete or not WAV).

    libsndfile silently reads what is there, so a cut-off download would pass unnoticed.
    """
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return 0
        size = path.stat().st_size
        while True:
            chunk = fh.read(8)
            if len(chunk) < 8:
                return 0
            chunk_id, chunk_size = chunk[:4], int.from_bytes(chunk[4:], "little")
            if chunk_id == b"data":
                if chunk_size == 0xFFFFFFFF:  # streaming writers leave the size unset
                    return 0
                return max(0, fh.tell() + chunk_size - size)
            fh.seek(chunk_size + (chunk_size & 1), 1)


def _short(err: Exception) -> str:
    return str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__


def resample(y: np.ndarray, *, orig_sr: int, target_sr: int) -> np.ndarray:
    """Band-limited resampling (soxr via librosa). y: [shape=(..., samples)]."""
    if orig_sr == target_sr:
        return y.astype(np.float32, copy=False)
    import librosa

    return librosa.resample(y, orig_sr=orig_sr, target_sr=target_sr, res_type="soxr_hq").astype(np.float32)


def onset_strength(y: np.ndarray, *, sample_rate: int, hop_samples: int, n_fft: int = 2048,
                   chunk_frames: int = 4096) -> np.ndarray:
    """`librosa.onset.onset_strength(y=y, sr=sample_rate, hop_length=hop_samples)` in bounded memory.

    y: mono [shape=(samples,)]. The mel power spectrogram (librosa's defaults: centred frames,
    zero padding, 128 bands) is computed `chunk_frames` frames at a time, so only the small mel
    matrix grows with the song, not its STFT (a 10-minute song's full STFT at hop 256 is 420 MB).
    Returns the onset envelope [shape=(frames,)], the same values as librosa's up to rounding.
    """
    import librosa

    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"y must be mono [shape=(samples,)], got shape {y.shape}")
    pad = n_fft // 2
    n_frames = 1 + (len(y) + 2 * pad - n_fft) // hop_samples
    mel_basis = librosa.filters.mel(sr=sample_rate, n_fft=n_fft)
    mel = np.empty((mel_basis.shape[0], n_frames), dtype=np.float32)
    for first in range(0, n_frames, chunk_frames):
        last = min(n_frames, first + chunk_frames)
        lo, hi = first * hop_samples - pad, (last - 1) * hop_samples + n_fft - pad  # in y's samples
        segment = np.pad(y[max(lo, 0):min(hi, len(y))], (max(0, -lo), max(0, hi - len(y))))
        power = np.abs(librosa.stft(segment, n_fft=n_fft, hop_length=hop_samples, center=False)) ** 2
        mel[:, first:last] = mel_basis @ power
    return librosa.onset.onset_strength(S=librosa.power_to_db(mel), sr=sample_rate, hop_length=hop_samples,
                                        n_fft=n_fft)


def tempo_bpm(onset_envelope: np.ndarray, *, sample_rate: int, hop_samples: int, chunk_frames: int = 4096,
              frame_step: int = 1) -> float:
    """`librosa.feature.tempo(onset_envelope=..., sr=sample_rate, hop_length=hop_samples)` in bounded memory.

    librosa estimates the global tempo from the mean of an autocorrelation tempogram (8 s windows, one
    per frame); built whole for a 10-minute song that is 1.7 GB of FFT buffers. Here each window's
    normalised autocorrelation is summed `chunk_frames` at a time into the mean, and the tempo is
    librosa's own. `frame_step` > 1 averages every frame_step-th window only (the 8 s windows overlap
    by all but one frame, so their mean hardly changes): frame_step times less work.
    """
    import librosa
    from scipy.signal import get_window

    env = np.asarray(onset_envelope, dtype=np.float64)
    if env.ndim != 1:
        raise ValueError(f"onset_envelope must be 1-D, got shape {env.shape}")
    if not env.any():
        return 0.0
    win = int(librosa.time_to_frames(8.0, sr=sample_rate, hop_length=hop_samples))
    n = env.shape[-1]
    padded = np.pad(env, (win // 2, win // 2), mode="linear_ramp", end_values=[0, 0])
    window = get_window("hann", win, fftbins=True)[:, None]
    total, count = np.zeros(win), 0
    for first in range(0, n, chunk_frames):
        last = min(n, first + chunk_frames)
        frames = librosa.util.frame(padded[first:last - 1 + win], frame_length=win, hop_length=1)
        frames = frames[:, (-first) % frame_step::frame_step]  # windows first, first + step, ... of the song
        total += librosa.util.normalize(librosa.autocorrelate(frames * window, axis=-2), norm=np.inf,
                                        axis=-2).sum(axis=-1)
        count += frames.shape[1]
    return float(librosa.feature.tempo(tg=(total / count)[:, None], sr=sample_rate, hop_length=hop_samples)[0])


def beat_track(onset_envelope: np.ndarray, *, sample_rate: int, hop_samples: int,
               chunk_frames: int = 4096) -> tuple[float, np.ndarray]:
    """`librosa.beat.beat_track(onset_envelope=..., sr=sample_rate, hop_length=hop_samples)` in bounded
    memory (the tempo by `tempo_bpm`, the tracker librosa's own, compiled once: `beattrack`). Returns
    (tempo_bpm, beat frame indices)."""
    from .beattrack import beat_frames

    tempo = tempo_bpm(onset_envelope, sample_rate=sample_rate, hop_samples=hop_samples, chunk_frames=chunk_frames)
    if tempo == 0.0:
        return 0.0, np.zeros(0, dtype=int)
    return tempo, beat_frames(onset_envelope, bpm=tempo, frame_rate=sample_rate / hop_samples)


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """The [start, end) spans where a 1-d boolean mask (e.g. per frame) is True."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    edges = np.flatnonzero(np.diff(m.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def to_mono(y: np.ndarray) -> np.ndarray:
    """[shape=(channels, samples)] -> [shape=(samples,)] by averaging channels."""
    return y.mean(axis=0) if y.ndim == 2 else y


def content_hash(y: np.ndarray, sample_rate: int) -> str:
    """sha256 of the decoded samples and rate: the same song gives the same key whatever its file name."""
    h = hashlib.sha256()
    h.update(str(sample_rate).encode())
    h.update(memoryview(np.ascontiguousarray(y, dtype=np.float32)).cast("B"))  # no bytes copy of the song
    return h.hexdigest()


def same_file(a: Path, b: Path) -> bool:
    """True when `a` and `b` name one file: the same path once symlinks are resolved, or the same
    inode (st_dev and st_ino: a hard link, a bind mount, a case-insensitive file system)."""
    a, b = Path(a), Path(b)
    try:
        if a.resolve() == b.resolve():
            return True
    except (OSError, RuntimeError):  # a symlink loop: fall through to the inode test
        pass
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): they cannot be one file
        return False


def check_output_not_input(outputs, inputs) -> None:
    """Raise OutputIsInputError (a usage error, exit code 2) if any output path is one of the inputs.

    outputs, inputs: paths (None entries are ignored). Every command that writes a file calls this
    before any work, so `-o song.wav` on `song.wav`, or on a symlink or hard link to it, never
    replaces the user's file.
    """
    inputs = [Path(p) for p in inputs if p is not None]
    for out in (Path(p) for p in outputs if p is not None):
        for inp in inputs:
            if same_file(out, inp):
                via = "" if out.absolute() == inp.absolute() else " (the same file through a link)"
                raise OutputIsInputError(f"{out}: output is the input file {inp}{via}; writing it would destroy "
                                         "the input, choose another output path")


@contextlib.contextmanager
def atomic_path(path: Path):
    """Yield a temp path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{path}: output folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"{path}: output folder {parent} is not writable")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + path.suffix, dir=parent)
    except OSError as err:
        raise OutputError(f"{path}: cannot write in {parent} ({err.strerror or err})") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)  # mkstemp makes owner-only files; give the output the usual permissions
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def save(path: Path, y: np.ndarray, *, sample_rate: int, subtype: str | None = None) -> Path:
    """Write y [shape=(channels, samples)] atomically. Format from the suffix (.wav or .flac)."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower().lstrip("."))
    if fmt is None:
        raise OutputError(f"{path}: unsupported output format; use .wav or .flac")
    if subtype is None:
        subtype = "PCM_24"
    with atomic_path(path) as tmp:
        try:
            with sf.SoundFile(str(tmp), "w", samplerate=sample_rate, channels=y.shape[0], subtype=subtype,
                              format=fmt) as fh:
                fh.software = SOFTWARE_TAG  # marks covergen's own files: `batch` never covers them again
                for start in range(0, y.shape[1], _BLOCK_SAMPLES):  # no whole transposed copy of y
                    fh.write(np.ascontiguousarray(y[:, start:start + _BLOCK_SAMPLES].T))
        except (OSError, sf.LibsndfileError) as err:
            raise OutputError(f"{path}: cannot write ({_short(err)})") from None
    return path


def is_covergen_output(path: Path) -> bool:
    """True for a file `save` wrote (its software tag starts with SOFTWARE_TAG's "covergen ").

    Reads only the header and tags; a file that cannot be read is not covergen's.
    """
    try:
        with sf.SoundFile(str(path)) as fh:
            return fh.copy_metadata().get("software", "").startswith(SOFTWARE_TAG.split()[0] + " ")
    except Exception:  # libsndfile's errors vary by format; unreadable means "not ours"
        return False
