"""What our DQN's loop stores and learns from, seen from outside: the replay of a short run
(saved in its checkpoint) holds the env's transitions and rewards, feed-forward or recurrent,
and the replay's rewards come from the env's reward spec."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avemotion.agents.dqn.dqn import replay_rewards
from avemotion.agents.dqn.earliness_weight import MatchedEarlinessWeight
from avemotion.agents.training_log import read_log
from avemotion.envs.core import RewardSpec
from avemotion.training.train import train

TINY = {"num_envs": 4, "learning_starts": 40, "batch_size": 32, "hidden": [8], "log_every": 50}


def test_replay_recomputes_only_the_env_earliness_reward_or_a_matched_weight() -> None:
    earliness, signed = (
        RewardSpec.preset("earliness", earliness_weight=0.5),
        RewardSpec.preset("signed"),
    )
    assert replay_rewards(earliness, None) == (earliness, True)
    assert replay_rewards(signed, None) == (signed, False)  # its waits cost: stored rewards
    spec, recompute = replay_rewards(signed, MatchedEarlinessWeight(0.4))
    # a right answer after half the clip, under the matched weight 0.4: 1 − 0.4 · 0.5 = 0.8
    assert recompute and spec.answer_rewards(
        np.float32([0.5, 0.5]), np.array([True, False])
    ).tolist() == pytest.approx([0.8, 0.0])


def test_answer_rewards_refuse_a_reward_whose_waits_cost() -> None:
    with pytest.raises(ValueError, match="signed"):
        RewardSpec.preset("signed").answer_rewards(np.float32([0.5]), np.array([True]))


def stored_replay(run) -> dict[str, np.ndarray]:
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    return {k: v.numpy() for k, v in state["replay"].items()}


def test_feed_forward_replay_holds_every_env_step(tiny_store, tmp_path) -> None:
    run = train("dqn", tiny_store, 300, 0, tmp_path / "run", progress=False, **TINY)
    replay = stored_replay(run)
    assert replay["count"].sum() == 300  # every real transition, never a reset one
    # their rewards: test_dqn.py::test_earliness_reward_reaches_the_replay


def test_recurrent_replay_holds_whole_clips_ending_in_their_one_answer(
    tiny_store, tmp_path
) -> None:
    run = train("dqn-recurrent", tiny_store, 300, 0, tmp_path / "run", progress=False, **TINY)
    replay = stored_replay(run)
    count = int(replay["count"])
    assert 0 < count <= int(read_log(run)["episodes"][-1])  # finished clips only
    lengths = replay["length"][:count]
    assert (lengths >= 1).all() and (lengths <= tiny_store.lengths.max()).all()
    for e in range(count):
        n = lengths[e]
        actions, rewards = replay["action"][e, :n], replay["reward"][e, :n]
        assert (actions[: n - 1] == 0).all()  # waits, then at most one answer
        if replay["terminated"][e] and actions[-1] != 0:
            hit = actions[-1] - 1 == replay["label"][e]
            assert rewards[-1] == pytest.approx(
                1.0 - replay["fraction"][e, n - 1] if hit else 0.0, abs=1e-6
            )
        assert (rewards[: n - 1] == 0).all()
