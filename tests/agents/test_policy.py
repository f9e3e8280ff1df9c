"""The greedy agent interface (:mod:`avemotion.agents.policy`): hand-set Q-networks.

:class:`DQNAgent` acts on one stream (``reset``/``act``, recurrent state kept inside) or
on many (``act_batch``, a clip's first step resets its row's state); it never picks a
masked action, and it keeps the posterior a stopping rule read. :func:`load_dqn_agent`
rebuilds the network from a run's ``config.json`` and loads ``model.pt``, including
older runs' files (no reward field, no stop-tuning buffers). Actions are
``[wait, class 0, class 1]``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from linear_q import linear_q
from torch import nn

from avemotion.agents.dqn.dqn import MODEL_NAME, DQNConfig, make_q_network
from avemotion.agents.dqn.networks import (
    STOP_BUFFERS,
    FrontEnd,
    RecurrentQNetwork,
    StoppingQNetwork,
)
from avemotion.agents.policy import DQNAgent, load_dqn_agent

ALL = np.ones(3, dtype=bool)


class RunningSum(nn.Module):
    """A recurrent Q-network by hand: the state is the sum of the observations of the
    clip so far, ``Q = [sum, 1.5, 0]``: wait once the evidence sum exceeds 1.5, else
    answer class 0 (class 1 is never best)."""

    recurrent = True

    def zero_state(self, batch: int) -> torch.Tensor:
        return torch.zeros(1, batch, 1)

    def step(self, obs: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        total = state + obs[None, :, :1]
        q = torch.cat([total[0], torch.full_like(total[0], 1.5), torch.zeros_like(total[0])], -1)
        return q, total


def test_feed_forward_q_values_and_greedy_action() -> None:
    """Q([1, 2]) = [1·1 + 0·2, 0·1 + 1·2, 1·1 + 1·2] = [1, 2, 3]: class 1 (action 2)
    when allowed; with class 1 masked, class 0 (2 > 1); with both masked, wait."""
    agent = DQNAgent(linear_q([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), "frame")
    obs = np.array([1.0, 2.0])
    np.testing.assert_allclose(agent.q_values(obs), [1.0, 2.0, 3.0], rtol=0, atol=1e-6)
    assert agent.act(obs, ALL) == 2
    assert agent.act(obs, np.array([True, True, False])) == 1
    assert agent.act(obs, np.array([True, False, False])) == 0
    assert agent.last_posterior is None  # a plain Q-network reads no posterior
    assert agent.obs_mode == "frame" and agent.max_length is None
    assert not agent.network.training  # acting puts the network in eval mode


def test_feed_forward_batch_masks_each_stream_on_its_own() -> None:
    """Rows [1, 2] → Q [1, 2, 3] and [2, 0] → Q [2, 0, 2]. Row 0 with class 1 forbidden
    picks class 0 (2 > 1); row 1 with wait forbidden picks class 1 (2 > 0). Unmasked, the
    argmax would be [2, 0]."""
    agent = DQNAgent(linear_q([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), "frame")
    actions = agent.act_batch(
        np.array([[1.0, 2.0], [2.0, 0.0]]),
        np.array([[True, True, False], [False, True, True]]),
        np.array([True, True]),
    )
    assert actions.tolist() == [1, 2]


def test_recurrent_agent_carries_its_state_until_reset() -> None:
    """Observations 1, 1, 1 of one clip: sums 1, 2, 3 → Q(wait) 1 < 1.5 answers class 0
    (action 1), then 2 and 3 > 1.5 wait. After ``reset`` the sum restarts at 1 → action 1."""
    agent = DQNAgent(RunningSum(), "frame")
    one = np.array([1.0])
    assert [agent.act(one, ALL) for _ in range(3)] == [1, 0, 0]
    np.testing.assert_allclose(agent.q_values(one), [4.0, 1.5, 0.0])  # sum 4
    agent.reset()
    assert agent.act(one, ALL) == 1


def test_recurrent_batch_resets_only_the_rows_that_start_a_clip() -> None:
    """Two streams, observations 1 each step. Step 1 (both start): sums [1, 1] → [1, 1].
    Step 2, only row 1 starts a new clip: sums [2, 1] → [wait, class 0] = [0, 1].
    Step 3, no start: sums [3, 2] → [0, 0]."""
    agent = DQNAgent(RunningSum(), "frame")
    obs, masks = np.ones((2, 1)), np.ones((2, 3), dtype=bool)
    assert agent.act_batch(obs, masks, np.array([True, True])).tolist() == [1, 1]
    assert agent.act_batch(obs, masks, np.array([False, True])).tolist() == [0, 1]
    assert agent.act_batch(obs, masks, np.array([False, False])).tolist() == [0, 0]


def test_recurrent_batch_starts_afresh_when_the_number_of_streams_changes() -> None:
    """Two streams run to sums [2, 2]; a batch of three (no episode start flagged) gets a
    new zero state: sums [1, 1, 1] → class 0 everywhere, not wait."""
    agent = DQNAgent(RunningSum(), "frame")
    two = np.ones((2, 1))
    agent.act_batch(two, np.ones((2, 3), dtype=bool), np.array([True, True]))
    agent.act_batch(two, np.ones((2, 3), dtype=bool), np.array([False, False]))
    actions = agent.act_batch(np.ones((3, 1)), np.ones((3, 3), dtype=bool), np.zeros(3, bool))
    assert actions.tolist() == [1, 1, 1]


def test_recurrent_stream_and_batch_agree_on_a_real_gru() -> None:
    """One GRU, two clips of 4 steps: acting clip by clip with ``act`` gives the same
    actions as both clips side by side with ``act_batch`` (each row keeps its stream's
    state). The clips are chosen so that the state matters: acting on each step with a
    fresh state gives other actions."""
    torch.manual_seed(9)
    network = RecurrentQNetwork(FrontEnd(2, 2, 2, "raw"), 3, [4], dueling=True, cell="gru")
    clips = np.random.default_rng(9).normal(0.0, 3.0, size=(2, 4, 2)).astype(np.float32)
    single = DQNAgent(network, "frame")
    streamed = []
    for clip in clips:
        single.reset()
        streamed.append([single.act(obs, ALL) for obs in clip])
    stateless = []
    for obs in clips.reshape(-1, 2):
        single.reset()
        stateless.append(single.act(obs, ALL))
    assert np.reshape(stateless, (2, 4)).tolist() != streamed
    batch = DQNAgent(network, "frame")
    starts = np.array([True, True])
    batched = []
    for t in range(4):
        batched.append(batch.act_batch(clips[:, t], np.ones((2, 3), bool), starts))
        starts = np.zeros(2, bool)
    assert np.array(batched).T.tolist() == streamed


def stopping_network() -> StoppingQNetwork:
    """A stopping rule with a 2-class posterior: obs ``[frame, mean (2 dims each), time]``,
    a zero classifier with bias [log 3, 0] → p = [3/4, 1/4] whatever the observation;
    no hidden layer, Q(wait) = 0.2 (zero weights, bias 0.2); rewards (1, 0):
    Q(class k) = 0 + (1 − 0) · p_k → Q = [0.2, 0.75, 0.25]."""
    frontend = FrontEnd(obs_dim=5, store_dim=2, n_classes=2, kind="posterior")
    frontend.set(torch.zeros(2), torch.ones(2), torch.zeros(2, 2), torch.tensor([math.log(3), 0]))
    net = StoppingQNetwork(frontend, 3, [], rewards=(1.0, 0.0))
    with torch.no_grad():
        net.wait.weight.zero_()
        net.wait.bias.fill_(0.2)
    return net


def test_stopping_rule_keeps_the_posterior_it_read() -> None:
    agent = DQNAgent(stopping_network(), "frame+mean")
    obs = np.array([0.3, -1.0, 2.0, 0.5, 0.25], dtype=np.float32)
    np.testing.assert_allclose(agent.q_values(obs), [0.2, 0.75, 0.25], rtol=0, atol=1e-6)
    assert agent.last_posterior is not None and agent.last_posterior.dtype == np.float64
    np.testing.assert_allclose(agent.last_posterior, [0.75, 0.25], rtol=0, atol=1e-6)
    assert agent.act(obs, ALL) == 1
    # class 0 masked: class 1's 0.25 beats waiting's 0.2; both masked: wait
    assert agent.act(obs, np.array([True, False, True])) == 2
    assert agent.act(obs, np.array([True, False, False])) == 0


# ---- load_dqn_agent -------------------------------------------------------------------

TINY_AGENT = {"hidden": [4], "stop_time_feature": False}


def run_config(agent_config: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The part of a run's ``config.json`` ``load_dqn_agent`` reads: store dim 2 with the
    frame and the running mean (obs 2 · 2 + 1 = 5), 2 classes (3 actions)."""
    return {"agent_config": agent_config, "obs_dim": 5, "n_actions": 3, "store_dim": 2, **extra}


def save_model(run_dir: Path, config: dict[str, Any], drop: tuple[str, ...] = ()) -> nn.Module:
    """A network as ``config`` describes it, with random weights and stop constants 0.5,
    saved to model.pt without the buffers named in ``drop``."""
    saved = dict(config["agent_config"])
    saved.setdefault("reward", "signed")
    store_dim = int(config.get("agent_store_dim", config["store_dim"]))
    network = make_q_network(
        DQNConfig.from_dict(saved), config["obs_dim"], config["n_actions"], store_dim
    )
    torch.manual_seed(3)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.copy_(torch.randn_like(parameter))
        for name in STOP_BUFFERS:
            if hasattr(network, name):
                getattr(network, name).fill_(0.5)
    state = {k: v for k, v in network.state_dict().items() if k not in drop}
    torch.save(state, run_dir / MODEL_NAME)
    return network


def test_load_rebuilds_the_saved_network_exactly(tmp_path: Path) -> None:
    config = run_config({**TINY_AGENT, "reward": "earliness", "obs_mode": "frame+mean"})
    network = save_model(tmp_path, config)
    agent = load_dqn_agent(tmp_path, config)
    assert agent.obs_mode == "frame+mean" and not agent.recurrent
    assert isinstance(agent.network, StoppingQNetwork) and agent.network.correct is not None
    loaded = agent.network.state_dict()
    assert loaded.keys() == network.state_dict().keys()
    for key, value in network.state_dict().items():
        assert torch.equal(loaded[key], value), key


def test_load_reads_a_run_without_reward_field_as_the_signed_reward(tmp_path: Path) -> None:
    """Runs saved before the "reward" field trained on the env's ±1 reward: the network is
    rebuilt with rewards (1, −1) and without a learnt correct-answer share (the earliness
    default would add a ``correct`` layer that model.pt does not have)."""
    config = run_config(dict(TINY_AGENT))
    save_model(tmp_path, config)
    network = load_dqn_agent(tmp_path, config).network
    assert isinstance(network, StoppingQNetwork) and network.correct is None
    assert network.rewards.tolist() == [1.0, -1.0]


def test_load_fills_missing_stop_buffers_with_zero(tmp_path: Path) -> None:
    """A model.pt saved before the stop tuning existed: every tuned constant loads as 0
    (no bias, no shrinkage: the rule as it was trained)."""
    config = run_config({**TINY_AGENT, "reward": "earliness"})
    network = save_model(tmp_path, config, drop=STOP_BUFFERS)
    loaded = load_dqn_agent(tmp_path, config).network
    for name in STOP_BUFFERS:
        assert getattr(network, name).item() != 0.0  # the saved net's were not zero
        assert getattr(loaded, name).item() == 0.0, name


def test_load_uses_the_agent_store_dim_of_a_posterior_input_run(tmp_path: Path) -> None:
    """A run whose agent reads log-posteriors: store dim 8, agent input K = 2 (obs 2 + 1 = 3,
    "mean" mode); the front end must be built over 2 dims, not 8."""
    config = run_config(
        {**TINY_AGENT, "reward": "earliness", "obs_mode": "mean"},
        store_dim=8,
        agent_store_dim=2,
        obs_dim=3,
    )
    save_model(tmp_path, config)
    network = load_dqn_agent(tmp_path, config).network
    assert tuple(network.frontend.weight.shape) == (2, 2)


def test_load_builds_a_recurrent_agent(tmp_path: Path) -> None:
    config = run_config(
        {**TINY_AGENT, "reward": "earliness", "recurrent": "lstm", "obs_mode": "frame"},
        obs_dim=3,
    )
    save_model(tmp_path, config)
    agent = load_dqn_agent(tmp_path, config)
    assert agent.recurrent and isinstance(agent.network, RecurrentQNetwork)
    assert agent.act(np.zeros(3, np.float32), np.array([False, True, True])) in (1, 2)


def test_load_refuses_a_run_without_model(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="model.pt: missing"):
        load_dqn_agent(tmp_path, run_config(dict(TINY_AGENT)))


def test_load_refuses_a_model_of_another_shape(tmp_path: Path) -> None:
    """model.pt from a hidden size 4 network, config.json saying 8: torch's size check."""
    save_model(tmp_path, run_config(dict(TINY_AGENT)))
    with pytest.raises(RuntimeError, match="size mismatch"):
        load_dqn_agent(tmp_path, run_config({**TINY_AGENT, "hidden": [8]}))


def test_load_refuses_an_unknown_config_field(tmp_path: Path) -> None:
    save_model(tmp_path, run_config(dict(TINY_AGENT)))
    with pytest.raises(ValueError, match="unknown field 'hiden'"):
        load_dqn_agent(tmp_path, run_config({"hiden": [4]}))
