"""DDSP timbre transfer (PyTorch)."""
