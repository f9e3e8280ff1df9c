"""Deprecated alias of :mod:`avemotion.benchmarks.agents` (kept for one release)."""

from avemotion.moved import alias

__getattr__ = alias(__name__, "avemotion.benchmarks.agents")
