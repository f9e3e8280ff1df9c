"""Deprecated alias of :mod:`avemotion.evaluation.plots` (kept for one release)."""

from avemotion.moved import alias

__getattr__ = alias(__name__, "avemotion.evaluation.plots")
