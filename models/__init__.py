"""Shipped model weights and cards (installed as covergen._models). See registry.toml."""
