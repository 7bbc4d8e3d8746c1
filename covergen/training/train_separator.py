"""Train the `unmix` separator (covergen.unmix.MaskNet) on rendered multitrack songs.

Recipe: songs from covergen.training.separation_data (last HOLDOUT_SONGS of each family held
out for the validation loss), random 3 s excerpts, and the usual separation augmentations
(Demucs, Open-Unmix): each stem from a random song at a random offset half of the time,
random gain per stem (+-6 dB), a stem left out now and then. Loss: per-stem energy-normalised
squared error of the masked complex spectrum, which tracks SDR. Adam, fixed seed; a checkpoint
every 100 steps, so a cut-off run resumes where it stopped.

Three stages, as a cosine schedule with warm restarts: stage 1 learns on the tune and demo
families; stage 2 starts from its weights, adds the band-voiced "rock" family and per-stem
EQ and saturation (real mixes are produced; GM renders are clean), at a lower learning rate;
stage 3 adds the "kit" family, whose drums are recorded kits through a drum bus, and plays
such drums in 40% of the excerpts (GM drum kits are all the earlier stages hear of drums).

    python -m covergen.training.train_separator --stage 1 --steps 4000
    python -m covergen.training.train_separator --stage 2 --steps 2500
    python -m covergen.training.train_separator --stage 3 --steps 1500   # writes models/separator-unmix.pt
"""
from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.evaluation import score_separator, separation_sets, summarise_separation  # a checkout-only recipe

from .. import registry, unmix
from ..audio import atomic_path
from ..separate import STEMS
from . import cover_songs, drumkits, separation_data

log = logging.getLogger(__name__)

SEED = 0
BATCH = 12
EXCERPT_S = 3.0
HOLDOUT_SONGS = 8  # per family
# stage -> (song families, learning rate at the start of the cosine, EQ/saturation augmentation,
#           share of excerpts whose drums come from a recorded-kit song)
STAGES = {1: (("tune", "demo"), 1e-3, False, 0.0), 2: (("tune", "demo", "rock"), 3e-4, True, 0.0),
          3: (("tune", "demo", "rock", "kit"), 1e-4, True, 0.4)}
STAGE_STEPS = {1: 4000, 2: 2500, 3: 1500}
SHIPPED_HIDDEN = unmix.NetConfig()["hidden"]  # other widths are experiments (--hidden)
MODEL_NAME = "separator-unmix"
LICENSE = ("MIT (weights); data: FluidR3_GM (MIT) and MuseScore_General (MIT) SoundFonts, music21 corpus "
           "(BSD/public domain), Hydrogen drum kits (GPL, CC BY/BY-SA/0)")


def split_songs(songs: dict[str, np.ndarray], families=STAGES[1][0]) -> tuple[list[str], list[str]]:
    """(train, validation) song names: the last HOLDOUT_SONGS of each family validate."""
    train, valid = [], []
    for family in families:
        names = sorted(n for n in songs if n.startswith(family))
        train += names[:-HOLDOUT_SONGS]
        valid += names[-HOLDOUT_SONGS:]
    return train, valid


class Batches:
    """Random training excerpts [shape=(batch, stems, samples)], remixed across songs."""

    def __init__(self, songs: dict[str, np.ndarray], names: list[str], seed: int, *, augment: bool = False,
                 kit_drums: float = 0.0):
        self.songs, self.names, self.augment, self.kit_drums = songs, names, augment, kit_drums
        self.kit_names = [n for n in names if n.startswith("kit")]
        self.rng = np.random.default_rng(seed)
        self.length = int(EXCERPT_S * unmix.SAMPLE_RATE)

    def _excerpt(self, name: str, stem: int) -> np.ndarray:
        song = self.songs[name]
        start = self.rng.integers(0, song.shape[1] - self.length)
        return np.asarray(song[stem, start:start + self.length], np.float32)

    def next(self) -> torch.Tensor:
        out = np.zeros((BATCH, len(STEMS), self.length), np.float32)
        for b in range(BATCH):
            remix = self.rng.random() < 0.5
            name = self.names[self.rng.integers(len(self.names))]
            song = self.songs[name]
            start = self.rng.integers(0, song.shape[1] - self.length)
            for s in range(len(STEMS)):
                if remix:
                    out[b, s] = self._excerpt(self.names[self.rng.integers(len(self.names))], s)
                else:
                    out[b, s] = song[s, start:start + self.length]
                out[b, s] *= 10 ** (self.rng.uniform(-6, 6) / 20)
            if self.kit_names and self.rng.random() < self.kit_drums:
                drums = STEMS.index("drums")
                out[b, drums] = self._excerpt(self.kit_names[self.rng.integers(len(self.kit_names))], drums)
                out[b, drums] *= 10 ** (self.rng.uniform(-6, 6) / 20)
            if self.rng.random() < 0.2:
                out[b, self.rng.integers(len(STEMS))] = 0.0
            if self.augment:
                for s in range(len(STEMS)):
                    out[b, s] = self._colour(out[b, s], saturate=STEMS[s] in ("vocals", "other"))
        return torch.from_numpy(out)

    def _colour(self, x: np.ndarray, *, saturate: bool) -> np.ndarray:
        """Production on one stem, at its own level: a tilt EQ (half the time) and, for vocals and other,
        tanh saturation (a third of the time, drive 2-10x over the RMS), which makes clean GM patches
        sound like distorted guitars and pushed voices. The stem stays the target, so the mix is still their sum."""
        from scipy.signal import lfilter

        rms = float(np.sqrt(np.mean(x ** 2)))
        if rms < 1e-6:
            return x
        if self.rng.random() < 0.5:  # one-pole split at 150-5000 Hz, each side +-6 dB
            a = np.exp(-2 * np.pi * np.exp(self.rng.uniform(np.log(150), np.log(5000))) / unmix.SAMPLE_RATE)
            low = lfilter([1 - a], [1, -a], x)
            x = (10 ** (self.rng.uniform(-6, 6) / 20) * low + 10 ** (self.rng.uniform(-6, 6) / 20) * (x - low))
        if saturate and self.rng.random() < 1 / 3:
            drive = self.rng.uniform(2, 10) / (3 * rms)
            x = np.tanh(drive * x) / drive
        return (x * rms / max(float(np.sqrt(np.mean(x ** 2))), 1e-9)).astype(np.float32)


def loss_fn(model: unmix.MaskNet, stems: torch.Tensor) -> torch.Tensor:
    """Mean over stems of ||mask * X - S||^2 / ||S||^2 on the complex STFT (an SDR-like error).

    Expanded as mask^2 |X|^2 - 2 mask Re(X* S) + |S|^2 so autograd sees only real tensors (3x faster).
    """
    with torch.no_grad():
        mix = stems.sum(1)
        scale = mix.pow(2).mean(-1, keepdim=True).sqrt().clamp_min(1e-5)
        mix_spec = unmix.stft(mix / scale)                                 # (batch, bins, frames)
        x = torch.view_as_real(mix_spec)
        s = torch.view_as_real(unmix.stft(stems / scale[:, None]))         # (batch, stems, bins, frames, 2)
        power = x.pow(2).sum(-1)[:, None]
        cross = (x[:, None] * s).sum(-1)
        energy = s.pow(2).sum((-3, -2, -1))                                # (batch, stems)
        features = unmix.mix_features(mix_spec)
    masks = model(features)
    error = (masks.pow(2) * power - 2 * masks * cross).sum((-2, -1)) + energy
    present = energy > 1e-3 * energy.sum(1, keepdim=True)                  # a left-out stem has nothing to match
    return (error / (energy + 1e-3 * energy.sum(1, keepdim=True)))[present].mean()


def validation_batches(songs: dict[str, np.ndarray], names: list[str]) -> list[torch.Tensor]:
    """Fixed aligned excerpts (no remix, no gain change) of the validation songs."""
    length = int(EXCERPT_S * unmix.SAMPLE_RATE)
    excerpts = [np.asarray(songs[n][:, o:o + length], np.float32)
                for n in names for o in (5 * unmix.SAMPLE_RATE, 15 * unmix.SAMPLE_RATE)]
    return [torch.from_numpy(np.stack(excerpts[i:i + BATCH])) for i in range(0, len(excerpts), BATCH)]


def evaluate(model: unmix.MaskNet, batches: list[torch.Tensor]) -> float:
    model.eval()
    with torch.inference_mode():
        value = float(np.mean([loss_fn(model, b).item() for b in batches]))
    model.train()
    return value


def checkpoint_path(stage: int, seed: int, hidden: int = SHIPPED_HIDDEN) -> Path:
    """The resumable training state of one stage (data/separator-work, gitignored)."""
    work = separation_data.data_dir().parent / "separator-work"
    work.mkdir(parents=True, exist_ok=True)
    size = "" if hidden == SHIPPED_HIDDEN else f"-hidden{hidden}"
    return work / (f"checkpoint{size}-seed{seed}.pt" if stage == 1 else f"checkpoint{size}-stage{stage}-seed{seed}.pt")


def train(steps: int, *, stage: int = 1, seed: int = SEED,
          hidden: int = SHIPPED_HIDDEN) -> tuple[unmix.MaskNet, dict]:
    families, learning_rate, augment, kit_drums = STAGES[stage]
    songs = separation_data.load_songs()
    train_names, valid_names = split_songs(songs, families)
    missing = [f for f in families if not any(n.startswith(f) for n in train_names)]
    if missing:
        raise RuntimeError(f"no {'/'.join(missing)} songs in {separation_data.data_dir()}; "
                           "run python -m covergen.training.separation_data")
    torch.manual_seed(seed)
    model = unmix.MaskNet(unmix.NetConfig(hidden=hidden), STEMS)
    if stage > 1:
        start = checkpoint_path(stage - 1, seed, hidden)
        if not start.is_file():
            raise RuntimeError(f"stage {stage} starts from stage {stage - 1}'s weights, {start} is missing; "
                               f"run --stage {stage - 1} first")
        model.load_state_dict(torch.load(start, map_location="cpu", weights_only=False)["model"])
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=learning_rate / 10)
    batches = Batches(songs, train_names, seed, augment=augment, kit_drums=kit_drums)
    history, step, seconds = [], 0, 0.0
    checkpoint = checkpoint_path(stage, seed, hidden)
    if checkpoint.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        batches.rng.bit_generator.state = state["rng"]
        history, step, seconds = state["history"], state["step"], state["seconds"]
        log.info("resumed at step %d", step)
    valid = validation_batches(songs, valid_names)
    t0, last = time.perf_counter(), []
    while step < steps:
        loss = loss_fn(model, batches.next())
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        scheduler.step()
        step += 1
        last.append(loss.item())
        if step % 100 == 0 or step == steps:
            seconds += time.perf_counter() - t0
            t0 = time.perf_counter()
            history.append({"step": step, "train": float(np.mean(last)), "valid": evaluate(model, valid)})
            last = []
            log.info("step %d train %.3f valid %.3f (%.2f s/step)", step, history[-1]["train"],
                     history[-1]["valid"], seconds / step)
            with atomic_path(checkpoint) as tmp:
                torch.save({"config": model.config, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                            "scheduler": scheduler.state_dict(), "rng": batches.rng.bit_generator.state,
                            "history": history, "step": step, "seconds": seconds}, tmp)
    model.eval()
    info = {"stage": stage, "steps": step, "seed": seed, "train_seconds": round(seconds), "history": history,
            "learning_rate": learning_rate, "families": list(families), "augment": augment,
            "train_songs": len(train_names), "valid_songs": len(valid_names),
            "train_minutes_audio": round(sum(songs[n].shape[1] for n in train_names) / unmix.SAMPLE_RATE / 60, 1)}
    if stage > 1:
        info["earlier_stages"] = []
        for k in range(1, stage):
            done = torch.load(checkpoint_path(k, seed, hidden), map_location="cpu", weights_only=False)
            info["earlier_stages"].append({"stage": k, "steps": done["step"], "train_seconds": round(done["seconds"]),
                                           "final_valid_loss": done["history"][-1]["valid"]})
    return model, info


def export(model: unmix.MaskNet, info: dict, path: Path) -> Path:
    """Save in float16, which halves the file (a shipped model stays under 10 MB); unmix.load casts back."""
    meta = info | {"final_valid_loss": info["history"][-1]["valid"], "stems": list(STEMS)}
    weights = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    torch.save({"config": model.config, "state_dict": weights, "meta": meta}, path)
    return path


def write_shipped_card() -> Path:
    """Measure the shipped model on the held-out songs and write its card."""
    model, info = unmix.load(registry.path(MODEL_NAME))
    rows = score_separator("unmix", separation_sets())
    return write_card(registry.models_dir() / f"{MODEL_NAME}.md", model=model, info=info, rows=rows)


def write_card(path: Path, *, model: unmix.MaskNet, info: dict, rows: list[dict]) -> Path:
    """The model card: what the network is, what it learned from, how well it separates held-out songs."""
    summary = summarise_separation(rows)
    n_params = sum(p.numel() for p in model.parameters())
    lines = [
        f"# {MODEL_NAME}: the `unmix` separator", "",
        "Spectrogram-mask network (covergen/unmix.py, Open-Unmix style): log-magnitude STFT of the mono mix "
        f"(44.1 kHz, FFT {unmix.N_FFT}, hop {unmix.HOP}) -> linear {model.config['hidden']} -> 2-layer "
        f"bidirectional LSTM -> one mask per stem and bin, softmax across stems (stems sum to the mix); at "
        f"inference the masks are sharpened Wiener-style (m**{unmix.MASK_POWER:g}, renormalised; chosen on dev "
        f"songs) and applied to each channel's complex STFT. {n_params / 1e6:.2f} M parameters, stored as "
        "float16 (computed in float32).", "",
        "## Training", "",
        f"- Data: `python -m covergen.training.separation_data` (seed {separation_data.SEED}): each stem rendered "
        "on its own with FluidSynth, alternating FluidR3 GM and MuseScore General SoundFonts and GM drum kits. "
        "Ryan's Mammoth tunes (music21 corpus) arranged as in cover_songs "
        f"({len(cover_songs._MELODY)} lead, {len(cover_songs._ACCOMP)} accompaniment, {len(cover_songs._BASS)} bass "
        f"instruments; {len(cover_songs._ACCOMP_STYLES)} accompaniment, {len(cover_songs._BASS_STYLES)} bass, "
        f"{len(cover_songs._DRUM_STYLES)} drum styles), demo_song arrangements with seeds 100-159, and "
        f"band-voiced demo_song arrangements with seeds {separation_data.ROCK_FIRST_SEED}-"
        f"{separation_data.ROCK_FIRST_SEED + separation_data.ROCK_FAMILY_SONGS - 1} (overdriven and distorted "
        "guitars, organ, synths, brass as other). The last 8 songs of each family validate.",
        f"- Drums of the kit family (seeds {separation_data.KIT_FIRST_SEED}-"
        f"{separation_data.KIT_FIRST_SEED + separation_data.KIT_FAMILY_SONGS - 1}): humanised patterns in five styles "
        f"on recorded Hydrogen kits ({', '.join(drumkits.TRAIN_KITS)}; Debian hydrogen-drumkits, GPL/CC), "
        "through a random compressor and room reverb (covergen/training/drumkits.py).",
        f"- Recipe, {len(STAGES)} stages (a cosine schedule with warm restarts):"]
    for stage in info.get("earlier_stages", []) + [info]:
        families, learning_rate, augment, kit_drums = STAGES[stage["stage"]]
        lines.append(
            f"  - `python -m covergen.training.train_separator --stage {stage['stage']} --steps {stage['steps']}`: "
            f"families {', '.join(families)}; Adam {learning_rate:g} with cosine decay"
            + (", per-stem tilt EQ and tanh saturation" if augment else "")
            + (f", recorded-kit drums in {kit_drums:.0%} of excerpts" if kit_drums else "")
            + f"; validation loss {stage['final_valid_loss']:.3f}; {stage['train_seconds'] / 60:.0f} min on this "
            f"2-core CPU ({stage['train_seconds'] / max(stage['steps'], 1):.2f} s/step).")
    lines += [
        f"- All stages: seed {info['seed']}; batch {BATCH} x {EXCERPT_S:g} s; half the excerpts remix stems from "
        "different songs, gains +-6 dB per stem, 20% with one stem left out. Loss: per-stem energy-normalised "
        f"complex-spectrum error. Final stage: {info['train_songs']} songs ({info['train_minutes_audio']} min) train, "
        f"{info['valid_songs']} validate.",
        "- Recipe chosen on dev songs (benchmarks/dev_separation.py: demo_song seeds 500-504, band-voiced seeds "
        f"{separation_data.ROCK_DEV_SEEDS.start}-{separation_data.ROCK_DEV_SEEDS.stop - 1}, kit songs with seeds "
        f"{separation_data.KIT_DEV_SEEDS.start}-{separation_data.KIT_DEV_SEEDS.stop - 1} on kits never trained on: "
        f"{', '.join(drumkits.DEV_KITS)}), not on the songs below.",
        "",
        "## Held-out quality (SDR dB, median; mix/4 floor in brackets)", "",
        "Rendered: covergen.training.demo_song.held_out_songs (6 songs, seeds >= 1000, FluidR3; never used in "
        "training). Their generator family (seeds 100-159) is in the training data: these numbers are "
        "in-distribution. Real: the MUSDB18 excerpt Music_Delta 80s Rock (out of distribution).", "",
        "| set | vocals | drums | bass | other | RTF |", "|---|---|---|---|---|---|"]
    for key, val in summary.items():
        cells = " | ".join(f"{val[s]['median_sdr_db']:.1f} ({val[s]['median_floor_db']:.1f})" for s in STEMS)
        lines.append(f"| {key.split('/')[0]} | {cells} | {val['median_rtf']:.2f} |")
    lines += ["", "## Limits", "",
              "- Its pitched parts are General MIDI renders only (GM overdriven and distorted guitars and the "
              "stage-2 EQ and saturation stand in for produced band sound); only its drums include recorded "
              "instruments. Real voices and real mixes are outside its data: on the real excerpt its drums beat "
              "covergen's DSP separator (`embedded`) but its vocals and other are well behind, so `embedded` stays "
              "the offline default; htdemucs is better than both where its weights can be had.",
              "- Masks keep the mix's phase; stems of loud overlapping sources keep some bleed.", ""]
    path.write_text("\n".join(lines))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m covergen.training.train_separator",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--stage", type=int, choices=sorted(STAGES), default=1,
                        help="1: from scratch; 2, 3: fine-tune the stage before (3 writes the shipped model)")
    parser.add_argument("--steps", type=int,
                        help=", ".join(f"stage {k}: {v}" for k, v in STAGE_STEPS.items()) + " by default")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=SHIPPED_HIDDEN,
                        help="network width (for experiments; the shipped recipe uses the default)")
    parser.add_argument("--card-only", action="store_true", help="only measure the shipped model and write its card")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.card_only:
        log.info("wrote %s", write_shipped_card())
        return 0
    torch.set_num_threads(args.threads)
    steps = args.steps or STAGE_STEPS[args.stage]
    model, info = train(steps, stage=args.stage, seed=args.seed, hidden=args.hidden)
    if args.stage < max(STAGES):
        log.info("stage %d done (%d steps, %.0f min): %s; next: --stage %d", args.stage, info["steps"],
                 info["train_seconds"] / 60, checkpoint_path(args.stage, args.seed, args.hidden), args.stage + 1)
        return 0
    if args.hidden != SHIPPED_HIDDEN:  # an experiment: compare it on dev songs, do not ship it
        file = export(model, info, checkpoint_path(args.stage, args.seed, args.hidden).with_name(
            f"{MODEL_NAME}-hidden{args.hidden}.pt"))
        log.info("wrote %s; compare: python -m benchmarks.dev_separation %s", file, file)
        return 0
    file = export(model, info, registry.models_dir() / f"{MODEL_NAME}.pt")
    registry.register(MODEL_NAME, file, kind="separator", card=f"{MODEL_NAME}.md", license=LICENSE,
                      source=f"python -m covergen.training.train_separator --stage 1, 2, then 3: "
                             f"{info['train_songs']} FluidSynth multitrack renders (covergen.training.separation_data, "
                             f"seed {separation_data.SEED}), seed {args.seed}, "
                             f"{sum(e['steps'] for e in info['earlier_stages']) + info['steps']} steps")
    log.info("wrote %s; measuring it on the held-out songs", file)
    # A fresh process: after set_num_threads, MKL's LAPACK fails inside fast_bss_eval (DLASWP errors, hangs).
    return subprocess.run([sys.executable, "-m", "covergen.training.train_separator", "--card-only"], check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main())
