"""Benchmarks: `make bench` (python -m bench). Ratios are measured within one run."""
