"""Deprecated alias of :mod:`avemotion.agents.dqn.checkpoint` (kept for one release)."""

from avemotion.moved import alias

__getattr__ = alias(__name__, "avemotion.agents.dqn.checkpoint")
