"""covergen: turn a song into a cover of itself in another genre."""
__version__ = "0.1.0"
