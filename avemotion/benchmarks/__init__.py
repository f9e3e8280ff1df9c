"""Benchmarks behind ``avemotion bench``: speed figures are measured here, never in unit tests."""
