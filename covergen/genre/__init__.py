"""Genre: GTZAN's 10 genres from audio, and a listener's taste profile.

Three modules, each using the one before it: `features` (the GTZAN feature table's columns from
audio), `classifier` (the registry's model over a song's 30 s segments) and `taste` (a music
folder's genre tags and classifier answers -> a profile -> the favourite cover preset). The names
below are the package's API; `covergen.genre.predict` and the rest keep working as before the split.
"""
from __future__ import annotations

from .classifier import GENRES, MODEL_NAME, SEGMENT_S, load_model, predict, predict_file, top
from .features import FEATURE_SETS, FEATURES, MIN_DURATION_S, SAMPLE_RATE, features, model_inputs
from .taste import PRESET_FOR_GENRE, PROFILE_VERSION, favourite, load_profile, profile, save_profile, tag_genre

__all__ = [
    "GENRES", "FEATURES", "FEATURE_SETS", "SAMPLE_RATE", "SEGMENT_S", "MIN_DURATION_S", "MODEL_NAME",
    "PROFILE_VERSION", "PRESET_FOR_GENRE", "features", "model_inputs", "load_model",
    "predict", "predict_file", "top", "tag_genre", "profile", "save_profile", "load_profile", "favourite",
]
