"""Deprecated alias of :mod:`avemotion.metrics` (kept for one release)."""

from avemotion.moved import alias

__getattr__ = alias(__name__, "avemotion.metrics")
