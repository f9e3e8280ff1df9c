"""The stateless arithmetic of one DQN iteration, against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avemotion.agents.dqn_config import DQNConfig
from avemotion.agents.dqn_updates import epsilon_at, explore, gradient_step, update_target


def test_epsilon_reaches_its_end_after_the_exploration_fraction() -> None:
    """1.0 → 0.2 over 0.25 of 400 steps (100 steps): step 50 → 1.0 + 0.5 · (0.2 − 1.0) = 0.6."""
    config = DQNConfig(start_epsilon=1.0, end_epsilon=0.2, exploration_fraction=0.25)
    assert [epsilon_at(config, s, 400) for s in (0, 50, 100, 399)] == pytest.approx(
        [1.0, 0.6, 0.2, 0.2]
    )


def test_explore_waits_only_where_allowed() -> None:
    rng = np.random.default_rng(0)
    no_wait = np.array([[False, True, True, True]] * 200)
    actions = explore(no_wait, wait_prob=1.0, rng=rng)
    assert actions.min() >= 1 and actions.max() <= 3 and set(actions) == {1, 2, 3}
    always = explore(np.ones((50, 4), dtype=bool), wait_prob=1.0, rng=rng)
    assert (always == 0).all()


def test_gradient_step_clips_the_norm_before_stepping() -> None:
    """loss = w · x with x = (3, 4): the gradient (3, 4) has norm 5, clipped to 1 it is
    (0.6, 0.8); SGD at lr 1 moves w from (1, 1) to (0.4, 0.2)."""
    w = torch.nn.Parameter(torch.ones(2))
    module = torch.nn.Module()
    module.w = w
    optimiser = torch.optim.SGD([w], lr=1.0)
    gradient_step(module, optimiser, (w * torch.tensor([3.0, 4.0])).sum(), max_norm=1.0)
    torch.testing.assert_close(w.detach(), torch.tensor([0.4, 0.2]))


def test_update_target_moves_parameters_by_tau_and_copies_buffers() -> None:
    """Target 0, online 4, τ = 0.25: the target parameter becomes 0 + 0.25 · (4 − 0) = 1;
    buffers are copied whole whatever τ."""

    def net(value: float) -> torch.nn.Module:
        module = torch.nn.Linear(1, 1, bias=False)
        torch.nn.init.constant_(module.weight, value)
        module.register_buffer("bias_seen", torch.tensor(value))
        return module

    online, target = net(4.0), net(0.0)
    update_target(online, target, tau=0.25)
    assert target.weight.item() == 1.0 and target.bias_seen.item() == 4.0
    update_target(online, target, tau=1.0)
    assert target.weight.item() == 4.0
