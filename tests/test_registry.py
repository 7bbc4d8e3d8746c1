import os
import subprocess
import sys
import zipfile

import pytest

from covergen import registry
from covergen.errors import ModelError

from .conftest import REPO


def test_unknown_model_lists_known_names():
    with pytest.raises(ModelError, match="unknown model 'nope'; known models: .*timbre-"):
        registry.get("nope")


def test_corrupted_weights_fail_the_sha256_check(tmp_path, monkeypatch):
    monkeypatch.setenv("COVERGEN_USER_MODELS", str(tmp_path))
    weights = tmp_path / "toy.pt"
    weights.write_bytes(b"weights v1")
    registry.register("toy", weights, kind="timbre", source="test", license="MIT", card="toy.md", root=tmp_path)
    assert registry.path("toy") == weights and registry.get("toy").origin == "user"
    weights.write_bytes(b"weights v2")
    registry._verified.clear()
    with pytest.raises(ModelError, match="fails its sha256 check"):
        registry.path("toy")
    weights.unlink()
    with pytest.raises(ModelError, match="is missing"):
        registry.path("toy")


def test_every_shipped_model_has_weights_and_card():
    shipped = {n: e for n, e in registry.entries().items() if e.origin == "shipped"}
    assert shipped
    for name, entry in shipped.items():
        assert registry.path(name).stat().st_size < 10 * 2**20, name
        assert (entry.root / entry.card).is_file(), f"{name}: model card {entry.card} missing"


def test_installed_wheel_finds_models_and_presets(tmp_path):
    """A non-editable install must carry models/ and presets/ (as covergen._models, covergen._presets)."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path / "wheel")], check=True, capture_output=True)
    wheel = next((tmp_path / "wheel").glob("covergen-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(tmp_path / "site")
    code = ("import covergen, covergen.registry as r, covergen.presets as p;"
            "assert covergen.__file__.startswith(%r), covergen.__file__;"
            "[r.path(n) for n in r.entries()];"
            "print(len(r.entries()), ','.join(p.available()))") % str(tmp_path / "site")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "COVERGEN_USER_MODELS": str(tmp_path / "none")}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    count, names = out.stdout.split()
    assert int(count) == len([e for e in registry.entries().values() if e.origin in ("shipped", "package")])
    assert {"jazz", "rock", "bossa_nova", "classical", "lofi"} <= set(names.split(","))
