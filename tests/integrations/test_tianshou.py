"""Tianshou 2.x: the mask travels in ``obs.mask``; DQN runs through its collector and trainer."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip(
    "tianshou", reason="the tianshou extra is not installed (pip install 'avemotion[tianshou]')"
)

from tianshou.data import Batch  # noqa: E402

from avemotion.integrations.tianshou import make_env, make_policy, train_dqn  # noqa: E402


def test_observation_carries_the_env_mask(synthetic) -> None:
    env = make_env(store=synthetic)
    obs, info = env.reset(seed=0, options={"clip_index": 0})
    assert env.observation_space.contains(obs)
    np.testing.assert_array_equal(obs["mask"], info["action_mask"])
    length = int(info["clip_length"])
    for _ in range(length - 1):
        obs, _, _, _, info = env.step(0)
    assert obs["mask"][0] == 0 and obs["mask"][1:].all()


def test_policy_and_its_exploration_respect_the_mask(synthetic) -> None:
    env = make_env(store=synthetic)
    policy = make_policy(env, eps_training=1.0)
    obs, _ = env.reset(seed=0)
    n_actions = synthetic.n_classes + 1
    mask = np.zeros((n_actions, n_actions), dtype=np.int8)
    mask[np.arange(n_actions), np.arange(n_actions)] = 1
    batch = Batch(
        obs=Batch(obs=np.repeat(obs["obs"][None], n_actions, axis=0), mask=mask), info=Batch()
    )
    greedy = policy(batch).act
    assert greedy.tolist() == list(range(n_actions))
    policy.is_within_training_step = True
    explored = policy.add_exploration_noise(greedy.copy(), batch)
    assert explored.tolist() == list(range(n_actions))


def test_short_dqn_run_through_collector_and_trainer(synthetic) -> None:
    result = train_dqn(epochs=1, epoch_steps=300, seed=0, store=synthetic)
    assert result["train_steps"] >= 300
    assert result["final_masked_waits"] == 0
    assert 0.0 <= result["final_accuracy"] <= 1.0
    assert np.isfinite(result["final_mean_return"])
