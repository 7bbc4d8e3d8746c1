"""covergen's user folders, the one place that decides where caches and user models live.

platformdirs gives each platform's usual place (on Linux: $XDG_CACHE_HOME/covergen, default
~/.cache/covergen, and $XDG_DATA_HOME/covergen/models, default ~/.local/share/covergen/models);
$COVERGEN_CACHE and $COVERGEN_USER_MODELS override them (tests and clusters point them elsewhere).
"""
from __future__ import annotations

import os
from pathlib import Path

import platformdirs

__all__ = ["cache_dir", "user_models_dir"]

APP_NAME = "covergen"


def cache_dir(kind: str) -> Path:
    """Cache folder for one kind of cached thing ("stems", "leadsheets", ...): $COVERGEN_CACHE/<kind>
    or the platform's user cache folder."""
    base = os.environ.get("COVERGEN_CACHE") or platformdirs.user_cache_path(APP_NAME)
    return Path(base) / kind


def user_models_dir() -> Path:
    """Folder of user-trained and user-fetched models: $COVERGEN_USER_MODELS or the platform's user data folder."""
    env = os.environ.get("COVERGEN_USER_MODELS")
    return Path(env) if env else platformdirs.user_data_path(APP_NAME) / "models"
