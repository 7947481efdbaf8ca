"""Benchmarks (not part of the installed package): run them as modules from the repository root."""
