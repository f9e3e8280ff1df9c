"""The replay's counterfactual correct-answer rewards under the env's stored rewards."""

from __future__ import annotations

import numpy as np
import pytest

from avemotion.agents.dqn.replay import EpisodeReplay, EpisodeScratch, TransitionReplay
from avemotion.envs.core import RewardSpec


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
    spec = RewardSpec.preset("earliness", correct=2.0, earliness_weight=0.5, wait_cost=0.01)
    batch = replay.sample(1, n_step=1, gamma=1.0, rng=rng, spec=spec)
    assert batch.returns.tolist() == [np.float32(-0.01)]
    assert batch.correct_reward.tolist() == [1.75]
    # no earliness term (the signed reward): the correct answer's constant reward, 1
    signed = RewardSpec.preset("signed")
    assert replay.sample(1, 1, 1.0, rng, spec=signed).correct_reward.tolist() == [1.0]


def test_replay_n_step_returns_stop_at_episode_end() -> None:
    replay = TransitionReplay(capacity=20, num_envs=1, obs_dim=1, n_actions=2)
    # one env: an episode of three steps (rewards -0.1, -0.1, +1 terminal), then another step.
    for t, (reward, terminal) in enumerate(
        [(-0.1, False), (-0.1, False), (1.0, True), (-0.1, False)]
    ):
        one = np.array([True])
        replay.add(
            np.array([[t]], np.float32),
            np.array([0]),
            np.array([reward], np.float32),
            np.array([[t + 1]], np.float32),
            np.ones((1, 2), bool),
            np.array([terminal]),
            np.array([False]),
            one,
            np.array([1]),
            np.array([0.5], np.float32),
            np.array([False]),
        )
    rng = np.random.default_rng(0)
    batch = replay.sample(200, n_step=3, gamma=0.5, rng=rng)
    for obs, ret, boot, discount in zip(
        batch.obs[:, 0], batch.returns, batch.bootstrap_obs[:, 0], batch.discount
    ):
        t = int(obs)
        if t == 0:  # -0.1 + 0.5*-0.1 + 0.25*1, terminal: no bootstrap
            assert float(ret) == pytest.approx(-0.1 - 0.05 + 0.25) and float(discount) == 0.0
        elif t == 2:
            assert float(ret) == pytest.approx(1.0) and float(discount) == 0.0
        elif t == 3:  # newest transition: a one-step return bootstrapped from its next obs
            assert (
                float(ret) == pytest.approx(-0.1)
                and float(discount) == pytest.approx(0.5)
                and float(boot) == 4.0
            )


def test_replay_n_step_stops_before_an_exploratory_classification() -> None:
    replay = TransitionReplay(capacity=20, num_envs=1, obs_dim=1, n_actions=3)
    # wait, wait, then classify (action 2, reward -1, terminal)
    for t, (action, reward, terminal) in enumerate(
        [(0, -0.1, False), (0, -0.1, False), (2, -1.0, True)]
    ):
        replay.add(
            np.array([[t]], np.float32),
            np.array([action]),
            np.array([reward], np.float32),
            np.array([[t + 1]], np.float32),
            np.ones((1, 3), bool),
            np.array([terminal]),
            np.array([False]),
            np.array([True]),
            np.array([0]),
            np.array([0.5], np.float32),
            np.array([False]),
        )
    batch = replay.sample(100, n_step=5, gamma=1.0, rng=np.random.default_rng(0))
    for obs, ret, boot, discount in zip(
        batch.obs[:, 0], batch.returns, batch.bootstrap_obs[:, 0], batch.discount
    ):
        if int(obs) == 0:  # two waits, then bootstrap from the state where the class was chosen
            assert (
                float(ret) == pytest.approx(-0.2) and float(boot) == 2.0 and float(discount) == 1.0
            )
        elif int(obs) == 2:
            assert float(ret) == -1.0 and float(discount) == 0.0


def test_replay_skips_invalid_transitions() -> None:
    replay = TransitionReplay(capacity=10, num_envs=2, obs_dim=1, n_actions=2)
    obs = np.zeros((2, 1), np.float32)
    replay.add(
        obs,
        np.array([0, 1]),
        np.zeros(2, np.float32),
        obs,
        np.ones((2, 2), bool),
        np.zeros(2, bool),
        np.zeros(2, bool),
        np.array([True, False]),
        np.zeros(2, np.int64),
        np.ones(2, np.float32),
        np.zeros(2, bool),
    )
    assert len(replay) == 1 and replay.count.tolist() == [1, 0]


def test_sampled_earliness_rewards_use_the_current_weight() -> None:
    replay = TransitionReplay(capacity=10, num_envs=1, obs_dim=1, n_actions=2)
    # wait at 1/4 of the clip, then a correct answer at 2/4
    for t, (action, fraction, hit) in enumerate([(0, 0.25, False), (1, 0.5, True)]):
        replay.add(
            np.array([[t]], np.float32),
            np.array([action]),
            np.zeros(1, np.float32),
            np.array([[t + 1]], np.float32),
            np.ones((1, 2), bool),
            np.array([action != 0]),
            np.array([False]),
            np.array([True]),
            np.array([0]),
            np.array([fraction], np.float32),
            np.array([hit]),
        )
    for weight in (1.0, 0.4):
        spec = RewardSpec.preset("earliness", earliness_weight=weight)
        batch = replay.sample(50, 3, 1.0, np.random.default_rng(0), spec, recompute=True)
        for obs, ret, correct in zip(batch.obs[:, 0], batch.returns, batch.correct_reward):
            if int(obs) == 1:  # the answer itself: 1 - w * 0.5
                assert float(ret) == pytest.approx(1 - weight * 0.5)
            assert float(correct) == pytest.approx(1 - weight * (0.25 if int(obs) == 0 else 0.5))
    stored = replay.sample(4, 3, 1.0, np.random.default_rng(0), RewardSpec.preset("signed"))
    assert stored.returns.max() == 0.0  # the stored rewards (all 0 here), not recomputed


def test_episode_scratch_records_steps_and_pushes_one_episode() -> None:
    scratch = EpisodeScratch(n_envs=2, max_length=2, obs_dim=1, n_actions=2)
    all_allowed = np.ones((2, 2), dtype=bool)
    scratch.start(np.array([True, True]), np.array([[1.0], [2.0]]), all_allowed)
    step_mask = np.array([[True, False], [True, True]])
    # step 1: both envs; step 2: env 0 only (env 1 is not valid)
    scratch.record(
        np.array([True, True]),
        np.array([0, 1]),
        np.array([-0.1, 1.0]),
        np.array([0.5, 0.5]),
        np.array([False, True]),
        np.array([[3.0], [4.0]]),
        step_mask,
    )
    scratch.record(
        np.array([True, False]),
        np.array([1, 0]),
        np.array([0.5, 9.0]),
        np.array([1.0, 9.0]),
        np.array([True, False]),
        np.array([[5.0], [9.0]]),
        all_allowed,
    )
    assert scratch.t.tolist() == [2, 1]
    replay = EpisodeReplay(capacity=2, max_length=2, obs_dim=1, n_actions=2)
    scratch.push(0, replay, terminated=True, label=1)
    assert replay.length[0] == 2 and replay.label[0] == 1 and replay.terminated[0]
    assert replay.obs[0, :, 0].tolist() == [1.0, 3.0, 5.0]
    assert replay.mask[0].tolist() == [[True, True], [True, False], [True, True]]
    assert replay.action[0].tolist() == [0, 1]
    np.testing.assert_allclose(replay.reward[0], [-0.1, 0.5], rtol=1e-6)
    np.testing.assert_allclose(replay.fraction[0], [0.5, 1.0], rtol=1e-6)
    assert replay.hit[0].tolist() == [False, True]


def test_episode_scratch_ignores_steps_past_max_length() -> None:
    scratch = EpisodeScratch(n_envs=1, max_length=1, obs_dim=1, n_actions=2)
    scratch.start(np.array([True]), np.array([[1.0]]), np.ones((1, 2), dtype=bool))
    for value in (2.0, 3.0):
        scratch.record(
            np.array([True]),
            np.array([0]),
            np.array([value]),
            np.array([0.0]),
            np.array([False]),
            np.array([[value]]),
            np.ones((1, 2), dtype=bool),
        )
    # the second step does not fit: t stays 1 and the first step's values are kept
    assert scratch.t.tolist() == [1]
    assert scratch.obs[0, :, 0].tolist() == [1.0, 2.0]
    assert scratch.reward[0].tolist() == [2.0]
