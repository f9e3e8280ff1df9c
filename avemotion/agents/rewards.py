"""Deprecated alias of :mod:`avemotion.agents.dqn.earliness_weight` (kept for one release)."""

from avemotion.moved import alias

__getattr__ = alias(__name__, "avemotion.agents.dqn.earliness_weight", "avemotion.agents.dqn.dqn")
