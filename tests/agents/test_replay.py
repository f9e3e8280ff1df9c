"""The replay's counterfactual correct-answer rewards under the env's stored rewards."""

from __future__ import annotations

import numpy as np

from avemotion.agents.replay import TransitionReplay


def _one_step(replay: TransitionReplay, fraction: float) -> None:
    one = np.ones(1, dtype=bool)
    replay.add(
        obs=np.zeros((1, 1), np.float32),
        action=np.zeros(1, np.int64),
        reward=np.full(1, -0.01, np.float32),  # a wait under a wait cost
        next_obs=np.zeros((1, 1), np.float32),
        next_mask=np.ones((1, 2), dtype=bool),
        terminated=~one,
        truncated=~one,
        valid=one,
        label=np.zeros(1, np.int64),
        fraction=np.full(1, fraction, np.float32),
        hit=~one,
    )


def test_stored_rewards_keep_the_earliness_of_a_correct_answer() -> None:
    """An "earliness" reward with a wait cost is not the preset, so the replay samples the
    stored rewards; a correct answer there would still earn c · (1 − w · t / T):
    with c = 2, w = 0.5 at t / T = 0.25: 2 · (1 − 0.125) = 1.75."""
    replay = TransitionReplay(capacity=4, num_envs=1, obs_dim=1, n_actions=2)
    _one_step(replay, 0.25)
    rng = np.random.default_rng(0)
    batch = replay.sample(1, n_step=1, gamma=1.0, rng=rng, correct=(2.0, 0.5))
    assert batch.returns.tolist() == [np.float32(-0.01)]
    assert batch.correct_reward.tolist() == [1.75]
    # no earliness term (the signed reward): the constant of the losses
    assert replay.sample(1, 1, 1.0, rng, correct=(1.0, 0.0)).correct_reward is None
    assert replay.sample(1, 1, 1.0, rng).correct_reward is None
