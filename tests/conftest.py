"""Shared fixtures: seeded audio generated in the test, the bundled demo song, ../shared data."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from covergen.evaluation import SHARED_DATA

REPO = Path(__file__).resolve().parents[1]
SHARED = SHARED_DATA
DEMO_SONG = REPO / "covergen" / "data" / "demo_song.flac"


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """The test session gets its own stem cache and user-model folder (before any module fixture runs)."""
    base = tmp_path_factory.getbasetemp()
    saved = {k: os.environ.get(k) for k in ("COVERGEN_CACHE", "COVERGEN_USER_MODELS", "COVERGEN_DEMUCS_REPO")}
    os.environ["COVERGEN_CACHE"] = str(base / "cache")
    os.environ["COVERGEN_USER_MODELS"] = str(base / "user-models")
    os.environ.pop("COVERGEN_DEMUCS_REPO", None)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def shared_file(*parts: str) -> Path:
    """A file under ../shared/data, or skip the test with a reason."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} absent (../shared/data not available)")
    return path


@pytest.fixture(scope="session")
def demo_song() -> tuple[np.ndarray, int]:
    y, sr = sf.read(DEMO_SONG, dtype="float32", always_2d=True)
    return np.ascontiguousarray(y.T), sr


def write(path: Path, y: np.ndarray, sr: int, subtype: str = "PCM_16") -> Path:
    sf.write(path, np.asarray(y).T if np.ndim(y) == 2 else y, sr, subtype=subtype)
    return path


def sine(freq_hz: float, seconds: float, sr: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)
