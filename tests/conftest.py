"""Shared fixtures: seeded audio generated in the test, the bundled demo song, the committed clips in
tests/fixtures (a few seconds of CC BY recordings, remade by `python -m tests.fixtures.make`), ../shared data.

Tests that read ../shared/data are marked `realdata`: skipped where it is absent, an error when CI is set
(CI must run them). Tests marked `slow` (end-to-end make, batch and --cluster runs) are left out of
`make test`; `make test-slow` runs them.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from benchmarks.evaluation import SHARED_DATA

REPO = Path(__file__).resolve().parents[1]
SHARED = SHARED_DATA
DEMO_SONG = REPO / "covergen" / "data" / "demo_song.flac"
FIXTURES = REPO / "tests" / "fixtures"
SPEECH = FIXTURES / "speech-5s.ogg"  # read speech, 0-5 s of ../shared/data/real/198-209-0000.ogg
TRUMPET = FIXTURES / "solo-trumpet-5s.ogg"  # a monophonic phrase: ../shared/data/real/sorohanro_-_solo-trumpet-06.ogg
JAZZ_MIX = FIXTURES / "jazz-combo-6s.ogg"  # a full mix, 0-6 s of ../shared/data/real/Kevin_MacLeod_-_Vibe_Ace.ogg
_running = {}  # the test being set up: shared_file checks that it is marked realdata


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def _missing(what: str) -> None:
    """Data a realdata test needs is absent: skip it, or fail under CI, which must run every realdata test."""
    if _in_ci():
        pytest.fail(f"{what}; CI is set, so the realdata tests must run: provide ../shared/data", pytrace=False)
    pytest.skip(f"{what} (../shared/data not available)")


def pytest_runtest_setup(item):
    _running["item"] = item
    if item.get_closest_marker("realdata") and not SHARED.is_dir():
        _missing(f"{SHARED} absent")


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
    """A file under ../shared/data for a test marked realdata (skipped, or failed under CI, where absent)."""
    item = _running.get("item")
    assert item is None or item.get_closest_marker("realdata"), f"{item.nodeid} reads ../shared/data: mark it realdata"
    path = SHARED.joinpath(*parts)
    if not path.exists():
        _missing(f"{path} absent")
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
