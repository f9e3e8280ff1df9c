"""Deprecated alias of :mod:`avemotion.stopping.aeon` (kept for one release)."""

from avemotion.moved import alias

__getattr__ = alias(__name__, "avemotion.stopping.aeon")
