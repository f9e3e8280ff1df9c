"""Deprecated alias of :mod:`avemotion.training.options` (kept for one release)."""

from avemotion.moved import alias

__getattr__ = alias(__name__, "avemotion.training.options")
