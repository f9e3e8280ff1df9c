"""Deprecated alias of :mod:`avemotion.agents.dqn.config` (kept for one release)."""

from avemotion.moved import alias

__getattr__ = alias(__name__, "avemotion.agents.dqn.config")
