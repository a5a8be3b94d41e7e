"""Benchmarks, run as `python -m jreid.bench <command>`."""
