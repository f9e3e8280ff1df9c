"""Our DQN: :func:`train_dqn` and :class:`DQNConfig` (the loop itself: :mod:`.dqn`)."""

from __future__ import annotations

import importlib
from typing import Any

from avemotion.agents.dqn.config import DQNConfig as DQNConfig


def __getattr__(name: str) -> Any:
    """The loop's public names (``train_dqn``, ``make_q_network``, ``MODEL_NAME``, ...),
    imported on first use so that reading a config does not import torch."""
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(importlib.import_module("avemotion.agents.dqn.dqn"), name)
