"""Benchmarks (run with ``make bench``); each writes a small report under ``bench/results``."""
