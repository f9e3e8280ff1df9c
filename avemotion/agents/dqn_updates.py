"""The stateless arithmetic of one iteration of our DQN (:mod:`~avemotion.agents.dqn`):
the ε schedule and the exploration draw, the gradient step and the target-network update."""

from __future__ import annotations

import numpy as np
import torch

from avemotion.agents.dqn_config import DQNConfig


def epsilon_at(config: DQNConfig, step: int, total: int) -> float:
    """Linear ε schedule from ``start_epsilon`` to ``end_epsilon``."""
    fraction = min(1.0, step / max(1.0, config.exploration_fraction * total))
    return config.start_epsilon + fraction * (config.end_epsilon - config.start_epsilon)


def explore(mask: np.ndarray, wait_prob: float, rng: np.random.Generator) -> np.ndarray:
    """Random valid actions: wait with ``wait_prob`` where allowed, else a uniform class."""
    classes = 1 + rng.integers(mask.shape[1] - 1, size=len(mask))
    wait = mask[:, 0] & (rng.random(len(mask)) < wait_prob)
    return np.where(wait, 0, classes)


def gradient_step(
    online: torch.nn.Module, optimiser: torch.optim.Optimizer, loss: torch.Tensor, max_norm: float
) -> None:
    """One clipped optimiser step on ``loss``."""
    optimiser.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(online.parameters(), max_norm, foreach=True)
    optimiser.step()


def update_target(online: torch.nn.Module, target: torch.nn.Module, tau: float) -> None:
    """Move the target network toward the online one (``tau`` 1: copy it); buffers are
    copied whatever ``tau``."""
    with torch.no_grad():
        for p_target, p_online in zip(target.parameters(), online.parameters()):
            p_target.lerp_(p_online, tau)
        for b_target, b_online in zip(target.buffers(), online.buffers()):
            b_target.copy_(b_online)
