"""Deprecated alias of :mod:`avemotion.training.choose_posterior` (kept for one release)."""

from avemotion.moved import alias

__getattr__ = alias(__name__, "avemotion.training.choose_posterior")
