"""Genre presets (installed as covergen._presets)."""
