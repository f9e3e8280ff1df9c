"""Deprecated alias of :mod:`avemotion.agents.dqn.dqn` (kept for one release)."""

from avemotion.moved import alias

__getattr__ = alias(__name__, "avemotion.agents.dqn.dqn")
