"""Train DDSP timbre models: the shipped instruments (`python -m covergen.training.train_timbre`) and user ones.

Training is resumable: a full checkpoint (weights, optimiser, step) is written every
`save_every` steps beside the data, and each step draws its clips and noise from
(seed, step), so a resumed run follows the same path as an uninterrupted one.
The shipped file holds only weights, config and feature stats.
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .. import audio as caudio, folders, registry
from ..timbre import features as feat
from ..timbre.net import DecoderConfig, TimbreDecoder, n_parameters, spectral_loss
from ..timbre import synth
from . import timbre_data

__all__ = ["TrainSettings", "train", "feature_stats", "evaluate", "export", "write_card", "build_shipped",
           "train_user_instrument", "rewrite_shipped_cards", "main", "LICENSE", "CHECKPOINT_FORMAT"]

log = logging.getLogger(__name__)

from ..timbre.transfer import CHECKPOINT_FORMAT  # noqa: E402 - one definition, read by load_instrument
LICENSE = "MIT (weights); data: FluidR3_GM SoundFont (MIT), music21 corpus (public domain/BSD)"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = REPO_ROOT / "data" / "timbre"


class TrainSettings(dict):
    """Hyper-parameters, recorded in checkpoints and cards."""

    def __init__(self, **kw):
        super().__init__(batch_size=12, clip_frames=150, lr=1e-3, lr_final=1e-4, grad_clip=3.0,
                         save_every=50, log_every=25)
        unknown = set(kw) - set(self)
        if unknown:
            raise ValueError(f"unknown training settings {sorted(unknown)}")
        self.update(kw)


def _clip_starts(ds: timbre_data.Dataset, clip_frames: int) -> np.ndarray:
    """Clip start frames whose clip is mostly sounding (silence teaches nothing)."""
    sounding = (ds.loudness_db > -60.0).astype(np.float32)
    n = len(sounding) - clip_frames
    if n <= 0:
        raise ValueError(f"only {len(sounding)} frames of training audio; need more than {clip_frames}")
    frac = np.convolve(sounding, np.ones(clip_frames) / clip_frames, mode="valid")[:n]
    starts = np.flatnonzero(frac > 0.5)
    return starts if len(starts) else np.arange(n)


def _batch(ds, starts, rng, batch_size, clip_frames):
    hop = feat.HOP_SAMPLES
    idx = rng.choice(starts, size=batch_size)
    f0 = np.stack([ds.f0_hz[i:i + clip_frames] for i in idx])
    ld = np.stack([ds.loudness_db[i:i + clip_frames] for i in idx])
    y = np.stack([ds.audio[i * hop:(i + clip_frames) * hop] for i in idx])
    return torch.from_numpy(f0), torch.from_numpy(ld), torch.from_numpy(y)


def _save_atomic(obj, path: Path) -> None:
    with caudio.atomic_path(path) as tmp:
        torch.save(obj, tmp)


def train(ds: timbre_data.Dataset, *, steps: int, seed: int, checkpoint: Path, settings: TrainSettings | None = None,
          config: dict | None = None, on_progress: Callable[[float], None] | None = None) -> tuple[TimbreDecoder, dict]:
    """Train (or resume) a decoder on `ds` for `steps` steps. Returns the model and timing info."""
    settings = settings or TrainSettings()
    checkpoint = Path(checkpoint)
    torch.manual_seed(seed)
    model = TimbreDecoder(config or DecoderConfig())
    opt = torch.optim.Adam(model.parameters(), lr=settings["lr"])
    step, elapsed_s = 0, 0.0
    if checkpoint.is_file():
        ck = torch.load(checkpoint, map_location="cpu", weights_only=False)
        step, elapsed_s = ck["step"], ck["elapsed_s"]
        model = TimbreDecoder(ck["config"])
        model.load_state_dict(ck["model"])
        opt = torch.optim.Adam(model.parameters(), lr=settings["lr"])
        opt.load_state_dict(ck["opt"])
        log.info("resumed %s at step %d (%.1f min trained)", checkpoint, step, elapsed_s / 60)
    starts = _clip_starts(ds, settings["clip_frames"])
    model.train()
    t_last, loss_acc, n_acc = time.perf_counter(), 0.0, 0

    def save():
        _save_atomic({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "config": model.config,
                      "elapsed_s": elapsed_s, "seed": seed, "settings": dict(settings)},
                     checkpoint)

    while step < steps:
        lr = settings["lr"] * (settings["lr_final"] / settings["lr"]) ** (step / max(1, steps))
        for group in opt.param_groups:
            group["lr"] = lr
        rng = np.random.default_rng([seed, step])
        gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
        f0, ld, target = _batch(ds, starts, rng, settings["batch_size"], settings["clip_frames"])
        pred = model(f0, ld, generator=gen)
        loss = spectral_loss(pred, target)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), settings["grad_clip"])
        opt.step()
        step += 1
        now = time.perf_counter()
        elapsed_s += now - t_last
        t_last = now
        loss_acc, n_acc = loss_acc + loss.item(), n_acc + 1
        if step % settings["log_every"] == 0 or step == steps:
            log.info("step %d/%d loss %.3f lr %.2e  %.2f steps/s", step, steps, loss_acc / n_acc, lr,
                     step / max(elapsed_s, 1e-9) if elapsed_s else 0.0)
            loss_acc, n_acc = 0.0, 0
        if step % settings["save_every"] == 0 or step == steps:
            save()
        if on_progress is not None:
            on_progress(step / steps)
    model.eval()
    return model, {"steps": step, "train_seconds": elapsed_s, "steps_per_s": step / max(elapsed_s, 1e-9)}


def feature_stats(ds: timbre_data.Dataset) -> dict:
    """What transfer needs to map new input onto this model: loudness quantiles and f0 range."""
    sounding = feat.sounding(ds.loudness_db)
    voiced = sounding & (ds.periodicity >= 0.5)
    f0 = ds.f0_hz[voiced] if voiced.any() else ds.f0_hz
    p5, p50, p95 = np.percentile(f0, [5, 50, 95])
    return {"loudness_quantiles_db": np.percentile(ds.loudness_db[sounding], np.linspace(0, 100, 101)).tolist(),
            "f0_range_hz": [float(p5), float(p95)], "f0_median_hz": float(p50),
            "f0_centre_hz": float(np.sqrt(p5 * p95)), "seconds": round(ds.seconds, 1), "files": ds.files}


@torch.no_grad()
def evaluate(model: TimbreDecoder, ds: timbre_data.Dataset, *, segment_s: float = 4.0, seed: int = 0) -> dict:
    """Multi-scale spectral loss of resynthesis on `ds`, against a sine at the same f0 and frame level."""
    hop = feat.HOP_SAMPLES
    seg = int(segment_s * feat.FRAME_RATE_HZ)
    gen = torch.Generator().manual_seed(seed)
    ddsp, sine, n = 0.0, 0.0, 0
    for s in range(0, len(ds.f0_hz) - seg + 1, seg):
        f0 = torch.from_numpy(ds.f0_hz[s:s + seg])[None]
        ld = torch.from_numpy(ds.loudness_db[s:s + seg])[None]
        y = torch.from_numpy(ds.audio[s * hop:(s + seg) * hop])[None]
        if float((ld > -60).float().mean()) < 0.5:
            continue
        ddsp += float(spectral_loss(model(f0, ld, generator=gen), y))
        rms = torch.sqrt(torch.nn.functional.avg_pool1d((y ** 2)[None], hop, hop)[0] + 1e-12)
        amp = np.sqrt(2) * rms * (torch.from_numpy(ds.periodicity[s:s + seg])[None] >= 0.5)
        sine += float(spectral_loss(synth.sine(f0, amp, sample_rate=feat.SAMPLE_RATE, hop_samples=hop), y))
        n += 1
    return {"segments": n, "segment_s": segment_s, "ddsp_loss": ddsp / max(n, 1), "sine_loss": sine / max(n, 1)}


def export(model: TimbreDecoder, stats: dict, path: Path, *, meta: dict) -> Path:
    """Write the shipped checkpoint: config, float32 weights, feature stats, training facts."""
    path = Path(path)
    _save_atomic({"format": CHECKPOINT_FORMAT, "config": model.config,
                  "state_dict": {k: v.detach().float().clone() for k, v in model.state_dict().items()},
                  "stats": stats, "meta": meta}, path)
    return path


def write_card(path: Path, *, name: str, meta: dict, stats: dict, scores: dict, data: dict) -> Path:
    """A model card beside the weights: what it learned from, how long, how well."""
    lo, hi = stats["f0_range_hz"]
    lines = [
        f"# timbre-{name}",
        "",
        "DDSP decoder (solo-instrument autoencoder without z) for covergen's timbre transfer.",
        "",
        "## Model",
        f"- Architecture: f0 & loudness MLPs ({meta['config']['hidden']}) -> GRU ({meta['config']['gru']}) -> MLP -> "
        f"{meta['config']['n_harmonics']} harmonics + {meta['config']['n_noise_bands']} noise bands + learned reverb "
        f"({meta['config']['reverb_samples']} samples); {meta['parameters']:,} parameters. The reverb is trained "
        "with the rest so the decoder learns the dry instrument; transfer leaves it out (the genre preset adds "
        "the room), see covergen/timbre/transfer.py.",
        f"- Sample rate {meta['config']['sample_rate']} Hz, hop {meta['config']['hop_samples']} samples "
        f"({feat.FRAME_RATE_HZ:g} frames/s). DDSP uses 250 frames/s; 100 frames/s cuts the GRU's cost 2.5x, which "
        "is what makes training on a shared 2-core CPU possible, and 10 ms still resolves onsets and vibrato.",
        "- Features: f0 and periodicity from swift-f0 (bundled ONNX weights), A-weighted loudness (1024-point STFT).",
        "",
        "## Data",
        f"- {data.get('description', 'see source')}",
        f"- Training audio: {stats['seconds'] / 60:.1f} min in {stats['files']} files; "
        f"pitch range (5th-95th percentile of voiced f0) {lo:.0f}-{hi:.0f} Hz.",
    ]
    if "heldout" in data:
        lines.append(f"- Held-out: {data['heldout']}")
    lines += [
        "",
        "## Training",
        f"- Steps: {meta['steps']}, batch {meta['settings']['batch_size']} x "
        f"{meta['settings']['clip_frames'] / feat.FRAME_RATE_HZ:g} s clips, Adam lr {meta['settings']['lr']:g} -> "
        f"{meta['settings']['lr_final']:g} (exponential), seed {meta['seed']}.",
        "- Loss: multi-scale spectral (FFT 2048..64, linear + log magnitude).",
        f"- Training time: {meta['train_seconds'] / 60:.1f} min wall-clock, {meta['steps_per_s']:.2f} steps/s measured "
        f"(torch {meta['threads']} thread(s) on a 2-core CPU shared with other jobs; 2.5 steps/s at the quietest).",
        "",
        "## Held-out scores",
    ]
    if scores.get("segments"):
        lines += [
            f"- Multi-scale spectral loss on {scores['segments']} held-out {scores['segment_s']:g} s segments: "
            f"**{scores['ddsp_loss']:.2f}** (DDSP resynthesis) vs {scores['sine_loss']:.2f} "
            "(sine at the same f0 and frame RMS). Lower is better.",
        ]
    else:
        lines.append("- None: no held-out audio was given.")
    lines += ["- Transfer pitch accuracy and speed: see `bench/timbre.md` (`python -m benchmarks.bench_timbre`).",
              "", "## Limits",
              "- Trained on SoundFont renders, so it sounds like FluidR3's sample, not a recorded player.",
              "- Short training on CPU: expect a recognisable but simplified timbre.", ""]
    path.write_text("\n".join(lines))
    return path


def _meta(model, info, seed, settings) -> dict:
    return {"steps": info["steps"], "train_seconds": round(info["train_seconds"], 1),
            "steps_per_s": round(info["steps_per_s"], 3), "seed": seed, "settings": dict(settings),
            "config": model.config, "parameters": n_parameters(model), "threads": torch.get_num_threads()}


def build_shipped(name: str, *, steps: int, seed: int = 0, minutes: float = 10.0, data_dir: Path = DEFAULT_DATA,
                  settings: TrainSettings | None = None) -> Path:
    """Render data, train, evaluate, export, write the card and register `timbre-<name>` in models/."""
    import json

    spec = timbre_data.INSTRUMENTS[name]
    settings = settings or TrainSettings()
    work = Path(data_dir) / name
    work.mkdir(parents=True, exist_ok=True)
    mel_cache = Path(data_dir) / "melodies.json"
    lines = json.loads(mel_cache.read_text()) if mel_cache.is_file() else None
    if lines is None and not (work / "summary.json").is_file():
        lines = timbre_data.melodies()
        mel_cache.write_text(json.dumps(lines))
    summary = timbre_data.render_phrases(spec, work, minutes=minutes, seed=seed, lines=lines)
    train_ds = timbre_data.load_dataset(sorted((work / "train").glob("*.wav")), cache=work / "train.npz")
    held_ds = timbre_data.load_dataset(sorted((work / "heldout").glob("*.wav")), cache=work / "heldout.npz")
    model, info = train(train_ds, steps=steps, seed=seed, checkpoint=work / "checkpoint.pt", settings=settings)
    stats = feature_stats(train_ds)
    scores = evaluate(model, held_ds, seed=seed)
    log.info("%s held-out: ddsp %.3f vs sine %.3f", name, scores["ddsp_loss"], scores["sine_loss"])
    meta = _meta(model, info, seed, settings)
    meta.update({"instrument": name, "gm_program": spec.gm_program, "data": summary, "heldout_scores": scores})
    root = registry.models_dir()
    file = export(model, stats, root / f"timbre-{name}.pt", meta=meta)
    write_card(root / f"timbre-{name}.md", name=name, meta=meta, stats=stats, scores=scores,
               data=_shipped_data_text(spec, summary, seed))
    registry.register(f"timbre-{name}", file, kind="timbre", card=f"timbre-{name}.md", license=LICENSE,
                      source=f"python -m covergen.training.train_timbre --instruments {name}: FluidR3 renders of "
                             f"music21 chorale lines, seed {seed}, {info['steps']} steps")
    return file


def _shipped_data_text(spec: timbre_data.InstrumentSpec, summary: dict, seed: int) -> dict:
    return {"description": f"{summary['train']['phrases']} solo phrases rendered with FluidSynth + FluidR3_GM "
                           f"(GM program {spec.gm_program}) from Bach chorale voices in the music21 corpus, transposed "
                           f"into MIDI {spec.low_midi}-{spec.high_midi}, random tempo 60-150 bpm, velocity arcs "
                           f"and articulation, seed {seed}, 16 kHz mono.",
            "heldout": f"{summary['heldout']['phrases']} phrases ({summary['heldout']['seconds'] / 60:.1f} min) from "
                       "chorales never used for training (every 5th chorale in corpus order)."}


def rewrite_shipped_cards() -> list[Path]:
    """Rewrite the shipped cards from the facts saved in each checkpoint (after editing the card template)."""
    out = []
    for reg_name, entry in registry.entries(kind="timbre").items():
        if entry.origin != "shipped":
            continue
        ck = torch.load(entry.file_path, map_location="cpu", weights_only=True)
        meta, name = ck["meta"], reg_name[len("timbre-"):]
        spec = timbre_data.INSTRUMENTS[name]
        out.append(write_card(entry.root / entry.card, name=name, meta=meta, stats=ck["stats"],
                              scores=meta["heldout_scores"], data=_shipped_data_text(spec, meta["data"], meta["seed"])))
    return out


def train_user_instrument(audio_dir: Path, *, name: str, steps: int, seed: int = 0,
                          on_progress: Callable[[float], None] | None = None) -> Path:
    """Train `timbre-<name>` from a folder of monophonic recordings into the user models folder."""
    from ..errors import AudioLoadError

    audio_dir = Path(audio_dir)
    if not audio_dir.is_dir():
        raise AudioLoadError(f"{audio_dir}: not a folder of recordings")
    files = caudio.find_audio(audio_dir)
    if not files:
        raise AudioLoadError(f"{audio_dir}: no audio files ({', '.join(caudio.AUDIO_SUFFIXES)}) found")
    root = folders.user_models_dir()
    work = root / f".timbre-{name}-work"
    work.mkdir(parents=True, exist_ok=True)
    ds = timbre_data.load_dataset(files)
    # Use the last ~10% of the audio as held-out, when there is enough for one 4 s segment.
    held = None
    split = int(len(ds.f0_hz) * 0.9)
    if len(ds.f0_hz) - split >= 4 * feat.FRAME_RATE_HZ and split > 300:
        hop = feat.HOP_SAMPLES
        held = timbre_data.Dataset(ds.audio[split * hop:], ds.f0_hz[split:], ds.periodicity[split:],
                                   ds.loudness_db[split:], 1)
        ds = timbre_data.Dataset(ds.audio[:split * hop], ds.f0_hz[:split], ds.periodicity[:split],
                                 ds.loudness_db[:split], ds.files)
    settings = TrainSettings()
    model, info = train(ds, steps=steps, seed=seed, checkpoint=work / "checkpoint.pt", settings=settings,
                        on_progress=on_progress)
    stats = feature_stats(ds)
    scores = evaluate(model, held, seed=seed) if held is not None else {"segments": 0}
    meta = _meta(model, info, seed, settings)
    meta.update({"instrument": name, "data": {"folder": str(audio_dir), "files": len(files)}, "heldout_scores": scores})
    file = export(model, stats, root / f"timbre-{name}.pt", meta=meta)
    write_card(root / f"timbre-{name}.md", name=name, meta=meta, stats=stats, scores=scores,
               data={"description": f"{len(files)} recordings from {audio_dir}"
                                    + ("; last 10% of the audio held out" if held is not None else "")})
    registry.register(f"timbre-{name}", file, kind="timbre", card=f"timbre-{name}.md", root=root,
                      license="as the training recordings", source=f"covergen train-instrument {audio_dir}, "
                                                                       f"seed {seed}, {info['steps']} steps")
    return file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m covergen.training.train_timbre", description=__doc__.splitlines()[0])
    parser.add_argument("--instruments", nargs="*", default=list(timbre_data.INSTRUMENTS),
                        choices=list(timbre_data.INSTRUMENTS))
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=10.0, help="training audio per instrument")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--force", action="store_true", help="retrain even if models/ holds these steps already")
    parser.add_argument("--cards-only", action="store_true", help="only rewrite the shipped model cards")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.cards_only:
        for card in rewrite_shipped_cards():
            log.info("wrote %s", card)
        return 0
    torch.set_num_threads(args.threads)
    for name in args.instruments:
        shipped = registry.models_dir() / f"timbre-{name}.pt"
        if shipped.is_file() and not args.force:
            meta = torch.load(shipped, map_location="cpu", weights_only=False).get("meta", {})
            if meta.get("steps", 0) >= args.steps:
                log.info("%s: shipped model already has %d steps; skip", name, meta["steps"])
                continue
        t0 = time.perf_counter()
        build_shipped(name, steps=args.steps, seed=args.seed, minutes=args.minutes, data_dir=args.data_dir)
        log.info("%s done in %.1f min", name, (time.perf_counter() - t0) / 60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
