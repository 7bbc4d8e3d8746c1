"""Mix stage: per-stem chains, tempo change and mastering to a loudness target.

Effects come from pedalboard (Spotify): EQ filters, compressor, distortion, reverb,
bit-crusher, a true-peak brick-wall limiter, and time-stretching through its built-in
Rubber Band library (in-process, no `rubberband` binary needed, unlike pyrubberband).
Loudness is measured with pyloudnorm (ITU-R BS.1770-4); true peak by 4x oversampling.
"""
from __future__ import annotations

import logging

import numba
import numpy as np
import pedalboard as pb
import pyloudnorm
from scipy.signal import firwin, sosfilt

from .audio import beat_track, onset_strength, resample, to_mono
from .presets import CompressorSettings, EqBand, GenrePreset, MasterPreset, StemPreset

__all__ = ["build_stem_board", "build_master_board", "process_in_place", "render", "stretch", "measure_tempo_bpm", "pulse_strength",
           "integrated_lufs", "true_peak_dbtp", "normalize_loudness"]

log = logging.getLogger(__name__)

# Long songs are measured and processed this many samples at a time (about 24 s at 44.1 kHz), so
# memory does not grow with the song: a 10-minute stereo song is 212 MB as float32, and a measure
# that converts it whole to float64 and oversamples it 4x needed 2 GB more.
CHUNK_SAMPLES = 1 << 20
_TRUE_PEAK_OVERSAMPLING = 4
_CHANNEL_GAINS = (1.0, 1.0, 1.0, 1.41, 1.41)  # BS.1770 channel weights (L, R, C, Ls, Rs)


def _eq_plugins(bands: tuple[EqBand, ...]) -> list[pb.Plugin]:
    """Pedalboard's high/low-pass filters are first order (6 dB/oct); two in series give 12 dB/oct."""
    makers = {
        "highpass": lambda b: pb.Pedalboard([pb.HighpassFilter(cutoff_frequency_hz=b.cutoff_hz) for _ in "12"]),
        "lowpass": lambda b: pb.Pedalboard([pb.LowpassFilter(cutoff_frequency_hz=b.cutoff_hz) for _ in "12"]),
        "lowshelf": lambda b: pb.LowShelfFilter(cutoff_frequency_hz=b.cutoff_hz, gain_db=b.gain_db, q=b.q),
        "highshelf": lambda b: pb.HighShelfFilter(cutoff_frequency_hz=b.cutoff_hz, gain_db=b.gain_db, q=b.q),
        "peak": lambda b: pb.PeakFilter(cutoff_frequency_hz=b.cutoff_hz, gain_db=b.gain_db, q=b.q),
    }
    return [makers[b.kind](b) for b in bands]


def _compressor(c: CompressorSettings | None) -> list[pb.Plugin]:
    if c is None:
        return []
    return [pb.Compressor(threshold_db=c.threshold_db, ratio=c.ratio, attack_ms=c.attack_ms, release_ms=c.release_ms)]


def _reverb(wet: float, room_size: float = 0.4) -> list[pb.Plugin]:
    if wet <= 0:
        return []
    return [pb.Reverb(room_size=room_size, wet_level=wet, dry_level=1.0 - 0.5 * wet, damping=0.5)]


def build_stem_board(stem: StemPreset) -> pb.Pedalboard:
    """EQ -> distortion -> compressor -> gain -> reverb for one stem (pan is applied after)."""
    chain = _eq_plugins(stem.eq)
    if stem.distortion_drive_db > 0:
        chain.append(pb.Distortion(drive_db=stem.distortion_drive_db))
    chain += _compressor(stem.compressor)
    chain.append(pb.Gain(gain_db=stem.gain_db))
    chain += _reverb(stem.reverb_wet)
    return pb.Pedalboard(chain)


def build_master_board(master: MasterPreset) -> pb.Pedalboard:
    """EQ -> compressor -> bit-crusher -> reverb on the summed mix (loudness comes after)."""
    chain = _eq_plugins(master.eq) + _compressor(master.compressor)
    if master.bitcrush_bits is not None:
        chain.append(pb.Bitcrush(bit_depth=master.bitcrush_bits))
    chain += _reverb(master.reverb_wet, master.reverb_room_size)
    return pb.Pedalboard(chain)


_MAX_CUTOFF_OF_NYQUIST = 0.95


def fit_filters(board: pb.Pedalboard, sample_rate: int) -> None:
    """Pull high/low-pass cutoffs above the Nyquist frequency just under it: pedalboard's filters
    there output inf (a style's 12 kHz low-pass on a 22.05 kHz song), while the filter the user asked
    for leaves such a signal as it is, which a cutoff at 0.95 Nyquist nearly does."""
    limit = _MAX_CUTOFF_OF_NYQUIST * sample_rate / 2
    for plugin in board:
        if isinstance(plugin, (pb.Pedalboard, pb.Chain)):  # a nested Pedalboard is iterated as a Chain
            fit_filters(plugin, sample_rate)
        elif isinstance(plugin, (pb.LowpassFilter, pb.HighpassFilter)) and plugin.cutoff_frequency_hz > limit:
            plugin.cutoff_frequency_hz = limit


def _process(board: pb.Pedalboard, chunk: np.ndarray, sample_rate: int, *, first: bool) -> np.ndarray:
    """Run one chunk of a longer signal through `board`, keeping the effects' state from the chunk before.

    Chunks of CHUNK_SAMPLES (a multiple of pedalboard's 8192-sample buffer) give bit-identical output
    to one call on the whole signal for every plugin the presets use (none has latency).
    """
    if first:
        fit_filters(board, sample_rate)
    return board(np.ascontiguousarray(chunk, dtype=np.float32), sample_rate, reset=first)


def process_in_place(board: pb.Pedalboard, y: np.ndarray, sample_rate: int) -> np.ndarray:
    """`board` over a float32 y [shape=(channels, samples)], CHUNK_SAMPLES at a time, written back into y
    (the same output as one call on the whole signal, without a second song-sized array). Returns y."""
    for start in range(0, y.shape[-1], CHUNK_SAMPLES):
        stop = start + CHUNK_SAMPLES
        y[:, start:stop] = _process(board, y[:, start:stop], sample_rate, first=start == 0)
    return y


def _to_stereo(y: np.ndarray) -> np.ndarray:
    return np.repeat(y, 2, axis=0) if y.shape[0] == 1 else y[:2]


def _pan(y: np.ndarray, pan: float) -> np.ndarray:
    """Constant-power balance of a stereo signal; pan -1 is hard left, +1 hard right."""
    if pan == 0:
        return y
    angle = (pan + 1) * np.pi / 4
    gains = np.array([[np.cos(angle)], [np.sin(angle)]], dtype=np.float32) * np.sqrt(2)
    return (y * gains).astype(np.float32)


def _onset_envelope(y: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int, int]:
    import librosa

    mono = y.mean(axis=0) if y.ndim == 2 else y
    sr, hop = 22050, 256
    mono = librosa.resample(mono, orig_sr=sample_rate, target_sr=sr) if sample_rate != sr else mono
    return onset_strength(mono, sample_rate=sr, hop_samples=hop), sr, hop


def pulse_strength(y: np.ndarray, *, sample_rate: int) -> float:
    """Peak autocorrelation (0..1) of the onset envelope at beat-like lags (0.25-2 s).

    Music with a beat scores about 0.35-0.9; speech and whale song about 0.05-0.1.
    """
    import librosa

    onset, sr, hop = _onset_envelope(y, sample_rate)
    ac = librosa.autocorrelate(onset - onset.mean(), max_size=int(2.5 * sr / hop))
    if ac[0] <= 0:
        return 0.0
    lags_s = np.arange(len(ac)) * hop / sr
    band = (lags_s > 0.25) & (lags_s < 2.0)
    return float(max(0.0, (ac[band] / ac[0]).max())) if band.any() else 0.0


def measure_tempo_bpm(y: np.ndarray, *, sample_rate: int) -> float | None:
    """Tempo from beat tracking, refined by a least-squares fit of beat times (finer than librosa's tempo bins).

    Returns None when fewer than 8 beats are found.
    """
    import librosa

    onset, sr, hop = _onset_envelope(y, sample_rate)
    _, beat_frames = beat_track(onset, sample_rate=sr, hop_samples=hop)  # librosa's tracker, bounded memory
    beats = librosa.frames_to_time(beat_frames, sr=sr, hop_length=hop)
    if len(beats) < 8:
        return None
    ibi = np.diff(beats)
    med = np.median(ibi)
    # keep the longest run of beats spaced like the median (drops tracking glitches)
    good = np.abs(ibi - med) < 0.15 * med
    idx = np.round((beats - beats[0]) / med)
    keep = np.concatenate([[True], good]) | np.concatenate([good, [True]])
    slope = np.polyfit(idx[keep], beats[keep], 1)[0]
    return float(60.0 / slope)


# Long signals are stretched in pieces of about this length (Rubber Band holds a whole input and its output
# in its own buffers: over 1 GB for a 20-minute stem). Pieces are cut at the quietest 50 ms within
# _STRETCH_SEARCH_S of each mark, each stretched with _STRETCH_CONTEXT_S of its neighbours on both sides,
# and joined with a _STRETCH_FADE_S cross-fade there.
_STRETCH_PIECE_S = 120.0
_STRETCH_SEARCH_S = 10.0
_STRETCH_CONTEXT_S = 1.0
_STRETCH_FADE_S = 0.02


# (name in the report, pedalboard.time_stretch options) by `monophonic`; see `_stretch_whole`
_STRETCH_ENGINES = {False: ("rubberband-r3", {"high_quality": True, "transient_mode": "mixed"}),
                    True: ("rubberband-r2", {"high_quality": False})}


def _stretch_whole(y: np.ndarray, sample_rate: int, rate: float, monophonic: bool = False) -> np.ndarray:
    """Rubber Band's R3 ("finer") engine, transients mixed; R2 (the standard engine, its defaults) for a
    monophonic line: on the spleeter vocals of four dev songs (30 s each, rate 0.88) R2 came closer to the
    original (log-spectral distance of the stretch against the original's time-mapped frames 5.1-5.3 dB
    vs R3's 9.0-11.0; stretched and back, 6.0-6.5 vs 9.3-12.0) at a quarter of the CPU time."""
    options = _STRETCH_ENGINES[monophonic][1]
    out = pb.time_stretch(np.ascontiguousarray(y, dtype=np.float32), sample_rate, stretch_factor=rate, **options)
    return np.ascontiguousarray(out, dtype=np.float32)


def _quiet_cuts(y: np.ndarray, sample_rate: int) -> list[int]:
    """Sample positions to cut y into pieces: the quietest 50 ms near every _STRETCH_PIECE_S."""
    n, frame = y.shape[-1], int(0.05 * sample_rate)
    cuts = []
    for mark in np.arange(_STRETCH_PIECE_S, n / sample_rate - _STRETCH_PIECE_S / 2, _STRETCH_PIECE_S):
        lo = int((mark - _STRETCH_SEARCH_S) * sample_rate)
        window = y[:, lo:lo + int(2 * _STRETCH_SEARCH_S * sample_rate)]
        frames = window[:, :window.shape[-1] // frame * frame].reshape(y.shape[0], -1, frame)
        cuts.append(lo + int(np.argmin(np.square(frames).sum(axis=(0, 2)))) * frame + frame // 2)
    return cuts


def stretch(y: np.ndarray, *, sample_rate: int, rate: float, monophonic: bool = False) -> np.ndarray:
    """Change tempo by `rate` (>1 faster) keeping pitch, with Rubber Band (via pedalboard): the R3 engine,
    or R2 for a `monophonic` line (a voice, a re-played melody; see `_stretch_whole`). Long signals go in
    pieces cut at quiet moments (bounded memory; see above)."""
    if abs(rate - 1.0) < 1e-4:
        return y
    cuts = _quiet_cuts(y, sample_rate)
    if not cuts:
        return _stretch_whole(y, sample_rate, rate, monophonic)
    n, context, fade = y.shape[-1], int(_STRETCH_CONTEXT_S * sample_rate), int(_STRETCH_FADE_S * sample_rate / rate)
    bounds = [0, *cuts, n]
    out = np.zeros((y.shape[0], int(round(n / rate)) + fade), dtype=np.float32)
    ramp = np.linspace(0.0, 1.0, 2 * fade, dtype=np.float32)
    for a, b in zip(bounds[:-1], bounds[1:]):
        lo, hi = max(0, a - context), min(n, b + context)
        piece = _stretch_whole(y[:, lo:hi], sample_rate, rate, monophonic)
        start = int(round(a / rate)) - (fade if a > 0 else 0)  # the output span of [a, b), cross-fades included
        stop = min(out.shape[-1], int(round(b / rate)) + (fade if b < n else 0))
        first = start - int(round(lo / rate))
        part = piece[:, first:first + stop - start]
        if a > 0:
            part[:, :2 * fade] *= ramp
        if b < n:
            part[:, -2 * fade:] *= ramp[::-1]
        out[:, start:start + part.shape[-1]] += part
    return out[:, :int(round(n / rate))]


def integrated_lufs(y: np.ndarray, *, sample_rate: int) -> float:
    """Integrated loudness (LUFS, BS.1770-4 gated). -inf for silence.

    y: [shape=(channels, samples)] or [shape=(samples,)]. pyloudnorm's K-weighting filters (one
    second-order-section cascade, its state carried across chunks), 400 ms blocks with 75% overlap and
    gating, computed in chunks of CHUNK_SAMPLES, so memory stays flat whatever the length; the value matches
    `pyloudnorm.Meter.integrated_loudness` on the whole signal. Each block's energy is the sum of the
    pieces between consecutive block edges (each piece summed once: 4x less work than per block).
    """
    y = np.asarray(y)
    y = y[None] if y.ndim == 1 else y
    channels, n = y.shape
    meter = pyloudnorm.Meter(sample_rate)
    block_s, step = meter.block_size, 1.0 - meter.overlap
    if n < block_s * sample_rate:
        raise ValueError(f"audio of {n} samples is shorter than one {block_s:g} s loudness block")
    stages = list(meter._filters.values())
    sos = np.array([np.concatenate([f.b, f.a]) for f in stages])
    gain = float(np.prod([f.passband_gain for f in stages]))
    state = np.zeros((len(stages), channels, 2))
    n_blocks = int(np.round((n / sample_rate - block_s) / (block_s * step))) + 1
    j = np.arange(n_blocks)
    starts = (block_s * (j * step) * sample_rate).astype(np.int64)  # as pyloudnorm bounds its blocks
    ends = np.minimum((block_s * (j * step + 1) * sample_rate).astype(np.int64), n)
    edges = np.unique(np.concatenate([starts, ends, [n]]))
    pieces = np.zeros((channels, len(edges) - 1))  # energy of the weighted signal in [edges[i], edges[i + 1])
    for start in range(0, n, CHUNK_SAMPLES):
        x, state = sosfilt(sos, y[:, start:start + CHUNK_SAMPLES].astype(np.float64), axis=-1, zi=state)
        stop = start + x.shape[1]
        inner = edges[(edges > start) & (edges < stop)]
        cuts = np.concatenate([[start], inner]) - start
        sums = np.add.reduceat(np.square(gain * x), cuts, axis=1)
        which = np.searchsorted(edges, cuts + start, side="right") - 1
        np.add.at(pieces, (slice(None), which), sums)  # a piece cut by a chunk edge gets both parts
    first, last = np.searchsorted(edges, starts), np.searchsorted(edges, ends)
    span = first[:, None] + np.arange(int((last - first).max()))[None]
    inside = span < last[:, None]
    z = np.where(inside, pieces[:, np.minimum(span, pieces.shape[1] - 1)], 0.0).sum(axis=2) / (block_s * sample_rate)
    gains = np.asarray(_CHANNEL_GAINS[:channels])[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        block_lufs = -0.691 + 10.0 * np.log10(np.sum(gains * z, axis=0))
        above_abs = block_lufs >= -70.0
        if not above_abs.any():
            return float("-inf")
        relative = -0.691 + 10.0 * np.log10(np.sum(gains[:, 0] * z[:, above_abs].mean(axis=1))) - 10.0
        gated = (block_lufs > relative) & (block_lufs > -70.0)
        mean_square = np.nan_to_num(z[:, gated].mean(axis=1)) if gated.any() else np.zeros(channels)
        return float(-0.691 + 10.0 * np.log10(np.sum(gains[:, 0] * mean_square)))


@numba.njit(parallel=True, fastmath=True, cache=True)
def _oversampled_peaks(padded, taps, block):
    """Peak |.| of each `block` output frames of a polyphase upsampler: frame m, phase p is
    sum_i taps[p, i] * padded[m + i] (see `true_peak_dbtp`). Blocks run in parallel; within one, each tap
    is added to the whole block (a loop the compiler vectorises: twice as fast as a sum per sample)."""
    n, width = padded.shape[0] - taps.shape[1] + 1, taps.shape[1]
    peaks = np.zeros((n + block - 1) // block)
    for b in numba.prange(peaks.shape[0]):
        first = b * block
        size = min(n, first + block) - first
        best = 0.0
        for p in range(taps.shape[0]):
            acc = np.zeros(size)
            for i in range(width):
                tap = taps[p, i]
                for m in range(size):
                    acc[m] += tap * padded[first + m + i]
            for m in range(size):
                best = max(best, abs(acc[m]))
        peaks[b] = best
    return peaks


def true_peak_dbtp(y: np.ndarray, *, sample_rate: int) -> float:
    """True peak (dBTP) by 4x polyphase oversampling, as BS.1770-4 Annex 2 suggests: the peak of
    `resample_poly(y, 4, 1)` (its 81-tap Kaiser-windowed FIR), computed without building the 4x signal
    (0.6 s for a 3-minute stereo song on 2 cores, against 1.5-2.8 s).

    resample_poly's output sample 4m + p is sum_k h[4k + p] * y[m + 10 - k]; with y padded by 10 zeros on
    each side that is sum_i taps[p, i] * padded[m + i], taps[p, i] = h[4 (20 - i) + p] (0 past the filter).
    """
    del sample_rate  # the oversampling factor, not the rate, sets accuracy
    y = np.asarray(y)
    factor, reach = _TRUE_PEAK_OVERSAMPLING, 10
    h = firwin(2 * reach * factor + 1, 1.0 / factor, window=("kaiser", 5.0)) * factor  # resample_poly's filter
    h = np.concatenate([h, np.zeros(factor)])
    taps = np.array([[h[factor * (2 * reach - i) + p] for i in range(2 * reach + 1)] for p in range(factor)])
    peak, n = 0.0, y.shape[-1]
    for channel in y.reshape(-1, n) if y.size else ():
        for start in range(0, n, CHUNK_SAMPLES):  # CHUNK_SAMPLES at a time: memory stays flat with length
            lo, hi = max(0, start - reach), min(n, start + CHUNK_SAMPLES + reach)
            padded = np.pad(np.asarray(channel[lo:hi], dtype=np.float64),
                            (reach - (start - lo), reach - (hi - min(n, start + CHUNK_SAMPLES))))
            peak = max(peak, float(np.max(_oversampled_peaks(padded, taps, 65536), initial=0.0)))
    return 20 * np.log10(peak) if peak > 0 else -np.inf


def normalize_loudness(y: np.ndarray, *, sample_rate: int, target_lufs: float = -14.0,
                       true_peak_ceiling_dbtp: float = -1.0, copy: bool = True) -> np.ndarray:
    """Gain to `target_lufs`, with a brick-wall limiter and a measured true peak holding peaks under the ceiling.

    Limiting lowers loudness a little, so gain and limiting alternate until both hold
    (usually 2-3 rounds). If the limiter cannot reach the target without crushing the
    mix (over 12 dB of gain reduction), the ceiling wins and loudness ends up lower. With
    copy=False a float32 `y` is scaled in place (one song-sized array less at the peak).
    """
    return _normalized(y, sample_rate=sample_rate, target_lufs=target_lufs,
                       true_peak_ceiling_dbtp=true_peak_ceiling_dbtp, copy=copy)[0]


def _normalized(y: np.ndarray, *, sample_rate: int, target_lufs: float, true_peak_ceiling_dbtp: float,
                copy: bool) -> tuple[np.ndarray, dict]:
    """`normalize_loudness`, and the result's levels as it measured them: {"lufs", "true_peak_dbtp"}, so the
    report need not measure the master again (1.5 s of a 3-minute song). A gain moves integrated loudness and
    true peak by its own dB (the -70 LUFS gate aside, which only near-silent blocks cross)."""
    out = np.array(y, dtype=np.float32, copy=copy or None)  # scaled in place below
    peak = None  # the true peak of `out` as it is now, once measured (0.6 s on a 3-minute song)
    for _ in range(6):
        lufs = integrated_lufs(out, sample_rate=sample_rate)
        if not np.isfinite(lufs):
            return out, {"lufs": lufs, "true_peak_dbtp": true_peak_dbtp(out, sample_rate=sample_rate)}
        out *= np.float32(10 ** ((target_lufs - lufs) / 20))
        lufs = target_lufs
        peak = true_peak_dbtp(out, sample_rate=sample_rate)
        if peak <= true_peak_ceiling_dbtp:
            break
        # a sample-peak limiter 0.5 dB under the ceiling; the true peak is measured after it and the last
        # resort below holds the ceiling. Its true-peak mode gave the same loudness (within 0.11 LU) and
        # peaks under the ceiling on a cover and the demo song (90 s, -14 and -9 LUFS) in about twice the
        # time (2.2 s against 0.5 on a 3-minute song).
        limiter = pb.BrickwallLimiter(ceiling_db=true_peak_ceiling_dbtp - 0.5, release_ms=80, true_peak=False)
        out, peak = limiter(out, sample_rate), None
        lufs = integrated_lufs(out, sample_rate=sample_rate)
        if abs(lufs - target_lufs) < 0.2:
            break
    if peak is None:
        peak = true_peak_dbtp(out, sample_rate=sample_rate)
    if peak > true_peak_ceiling_dbtp:  # last resort: the ceiling is a promise, loudness a target
        shift_db = true_peak_ceiling_dbtp - 0.05 - peak
        out *= np.float32(10 ** (shift_db / 20))
        lufs, peak = lufs + shift_db, peak + shift_db
    return out, {"lufs": lufs, "true_peak_dbtp": peak}


def render(stems: dict[str, np.ndarray], *, sample_rate: int, preset: GenrePreset,
           tempo_bpm: float | None = None, output_sample_rate: int | None = None) -> tuple[np.ndarray, dict]:
    """Mix stems [each shape=(channels, samples)] into a mastered stereo cover.

    `tempo_bpm` is the song's detected tempo; the preset's `tempo_change_bpm` is applied
    relative to it. Loudness is set after resampling to `output_sample_rate` (default:
    `sample_rate`), so the target and the true-peak ceiling hold in the written file.
    Returns (audio [shape=(2, samples)], facts about the mix).
    """
    n = max(s.shape[-1] for s in stems.values())
    bus = np.zeros((2, n), dtype=np.float32)
    for name, y in stems.items():
        settings = preset.stems.get(name, StemPreset())
        if settings.action == "mute":
            continue
        board = build_stem_board(settings)
        for start in range(0, n, CHUNK_SAMPLES):
            stop = min(n, start + CHUNK_SAMPLES)
            chunk = _to_stereo(np.asarray(y[:, start:stop], dtype=np.float32))
            if chunk.shape[-1] < stop - start:  # a shorter stem: silence after its end
                chunk = np.pad(chunk, ((0, 0), (0, stop - start - chunk.shape[-1])))
            bus[:, start:stop] += _pan(_process(board, chunk, sample_rate, first=start == 0), settings.pan)
    rate = 1.0
    if preset.tempo_change_bpm and tempo_bpm:
        rate = (tempo_bpm + preset.tempo_change_bpm) / tempo_bpm
        bus = stretch(bus, sample_rate=sample_rate, rate=rate)
    out, levels = _master(bus, preset, sample_rate=sample_rate, output_sample_rate=output_sample_rate)
    facts = {"tempo_in_bpm": tempo_bpm, "tempo_target_bpm": tempo_bpm * rate if tempo_bpm else None,
             "stretch_rate": rate, "master_levels": levels}
    return out, facts


def _master(bus: np.ndarray, preset: GenrePreset, *, sample_rate: int,
            output_sample_rate: int | None) -> tuple[np.ndarray, dict]:
    """The preset's master chain (in chunks, in place), resampling to the output rate, then loudness
    and the true-peak ceiling set in the output rate, so they hold in the written file. Returns (audio,
    its levels: {"lufs", "true_peak_dbtp"})."""
    process_in_place(build_master_board(preset.master), bus, sample_rate)
    out_rate = output_sample_rate or sample_rate
    if out_rate != sample_rate:
        bus = resample(bus, orig_sr=sample_rate, target_sr=out_rate)
    return _normalized(bus, sample_rate=out_rate, target_lufs=preset.master.target_lufs,
                       true_peak_ceiling_dbtp=preset.master.true_peak_dbtp, copy=False)


def _add_stem_bus(bus: np.ndarray, y: np.ndarray, settings: StemPreset, sample_rate: int) -> None:
    """One stem through its preset chain (EQ, compressor, gain, reverb) and pan, in chunks, summed into
    `bus` (stereo, at least as long as y): no song-sized copy of the layer (423 MB on a 20-minute song)."""
    board = build_stem_board(settings)
    for start in range(0, y.shape[-1], CHUNK_SAMPLES):
        stop = min(y.shape[-1], start + CHUNK_SAMPLES)
        chunk = _to_stereo(np.asarray(y[:, start:stop], dtype=np.float32))
        bus[:, start:stop] += _pan(_process(board, chunk, sample_rate, first=start == 0), settings.pan)


def render_arrangement(band: np.ndarray, melody: np.ndarray | None, kept: dict[str, np.ndarray], *,
                       sample_rate: int, preset: GenrePreset, tempo_ratio: float = 1.0,
                       output_sample_rate: int | None = None, melody_at_tempo: bool = False) -> tuple[np.ndarray, dict]:
    """Mix an arranged cover: the band (already at the cover's tempo, mixed per part by the arranger)
    plus the melody and any kept original stems, which are time-stretched by `tempo_ratio` onto the
    band's grid and processed with the preset's [stems.*] chains; then the preset's master chain and
    loudness; with `melody_at_tempo` the melody is already at the band's tempo (re-played there) and is not
    stretched. The layers are summed into `band` in place (it is the bus: one song-sized array less on
    a long song). Returns (stereo audio [shape=(2, samples)], facts)."""
    bus = np.asarray(band, dtype=np.float32)
    if bus.shape[0] != 2:
        bus = _to_stereo(bus)
    if not bus.flags.writeable or not bus.flags.c_contiguous:
        bus = np.ascontiguousarray(bus).copy()
    originals = ({"vocals": melody} if melody is not None else {}) | kept
    monophonic = {name: name == "vocals" for name in originals}  # the melody is one line; kept stems are not
    for name, y in originals.items():
        if monophonic[name]:  # one line: its stereo in a separated stem is the original's room and bleed, and
            y = to_mono(np.asarray(y))[None]  # a mono stretch takes half the time (3 s of a 3-minute cover)
        # stretched before the chain, so the preset's reverb rings at the cover's tempo
        if not (name == "vocals" and melody_at_tempo):
            y = stretch(y, sample_rate=sample_rate, rate=tempo_ratio, monophonic=monophonic[name])
        if y.shape[-1] > bus.shape[-1]:  # a layer that outlasts the band (it ends with a bar's tail)
            bus = np.pad(bus, ((0, 0), (0, y.shape[-1] - bus.shape[-1])))
        _add_stem_bus(bus, y, preset.stems.get(name, StemPreset()), sample_rate)
        del y
    out, levels = _master(bus, preset, sample_rate=sample_rate, output_sample_rate=output_sample_rate)
    return out, {"layers": ["band", *sorted(originals)], "stretch_rate": tempo_ratio, "master_levels": levels,
                 "stretch_engine": {name: "none: re-played at the cover's tempo" if name == "vocals" and melody_at_tempo
                                    else _STRETCH_ENGINES[mono][0] for name, mono in monophonic.items()}}
