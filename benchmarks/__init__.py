"""covergen benchmarks (`make bench`): quality and speed, written to bench/. Not tests."""
