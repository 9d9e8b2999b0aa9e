"""Reproducible speed and hit-quality benchmarks (see BENCHMARKS.md)."""
