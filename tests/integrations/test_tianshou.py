"""Tianshou 2.x: the mask travels in ``obs.mask``; DQN runs through its collector and trainer."""

from __future__ import annotations

import numpy as np
from optional_extras import require_extra

require_extra("tianshou", "tianshou")

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


def test_dqn_learns_the_easy_store_through_collector_and_trainer(easy_store) -> None:
    result = train_dqn(
        epochs=1,
        epoch_steps=1_500,
        seed=0,
        store=easy_store,
        exclude_speakers=["E3"],
        test_kwargs={"speakers": ["E3"], "exclude_speakers": None},
    )
    assert result["train_steps"] >= 1_500
    assert result["final_episodes"] == easy_store.subset(speakers=["E3"]).n_clips
    assert result["final_masked_waits"] == 0
    # Chance is 1/3 on three classes; the first step already names the class.
    assert result["final_accuracy"] >= 0.9
    # Earliness reward 1 - t/T on clips of 4-7 steps: above 0.5 means right and early.
    assert result["final_mean_return"] > 0.5
    assert result["reward"]["name"] == "earliness"
