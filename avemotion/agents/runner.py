"""Deprecated alias of :mod:`avemotion.training.train` (kept for one release)."""

from avemotion.moved import alias

__getattr__ = alias(__name__, "avemotion.training.train")
