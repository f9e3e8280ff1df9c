"""The DQN's two training paths (:mod:`avemotion.agents.dqn_paths`) on hand-made steps.

:class:`FeedForwardPath` stores every real transition in a per-sub-env replay and learns
with the n-step TD loss; :class:`RecurrentPath` carries a hidden state per sub-env,
gathers whole clips into an episode replay, zeroes a sub-env's state when its next clip
starts, and learns over sampled episodes. The losses are checked on linear Q-tables
(``Q(s) = W @ s``, a pass-through raw front end, a plain head, as in ``test_losses.py``)
with one stored transition or episode, so every sampled row is that one and the loss is
exactly its hand-computed value. Actions are ``[wait, class 0, class 1]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from linear_q import linear_q

from avemotion.agents.dqn_config import DQNConfig
from avemotion.agents.dqn_paths import FeedForwardPath, RecurrentPath, Rewards, Step, make_path
from avemotion.agents.networks import FrontEnd, RecurrentQNetwork
from avemotion.agents.replay import EpisodeReplay, TransitionReplay
from avemotion.store import FeatureStore


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    """Two 1-dim clips of 2 and 4 steps (longest 4, mean length 3)."""
    sequences = [np.zeros((2, 1), np.float32), np.ones((4, 1), np.float32)]
    path = tmp_path_factory.mktemp("paths") / "store"
    return FeatureStore.create(path, sequences, [0, 1], ["P1", "P2"], ["calm", "happy"])


def config(**changes: Any) -> DQNConfig:
    values: dict[str, Any] = {
        "frontend": "raw",
        "q_head": "free",
        "hidden": (),
        "dueling": False,
        "buffer_size": 8,
        "batch_size": 4,
        "n_step": 1,
        "gamma": 0.5,
        "counterfactual_classes": False,
    }
    return DQNConfig(**(values | changes))


def step(n: int, **fields: Any) -> Step:
    """A step of ``n`` sub-envs: every field zero/false unless given (observations 2-dim)."""
    values: dict[str, Any] = {
        "obs": np.zeros((n, 2), np.float32),
        "actions": np.zeros(n, np.int64),
        "reward": np.zeros(n, np.float32),
        "next_obs": np.zeros((n, 2), np.float32),
        "next_mask": np.ones((n, 3), bool),
        "terminated": np.zeros(n, bool),
        "truncated": np.zeros(n, bool),
        "valid": np.ones(n, bool),
        "done": np.zeros(n, bool),
        "prev_done": np.zeros(n, bool),
        "label": np.zeros(n, np.int64),
        "fraction": np.zeros(n, np.float32),
        "hit": np.zeros(n, bool),
    }
    for name, value in fields.items():
        values[name] = np.asarray(value, dtype=values[name].dtype)
    return Step(**values)


def test_make_path_follows_the_recurrent_option(store: FeatureStore) -> None:
    assert isinstance(make_path(config(), store, 2, 2, 3), FeedForwardPath)
    assert isinstance(make_path(config(recurrent="gru"), store, 2, 2, 3), RecurrentPath)


# ---- feed-forward ---------------------------------------------------------------------


def test_feed_forward_replay_splits_the_buffer_over_sub_envs(store: FeatureStore) -> None:
    # buffer_size 8 over 2 sub-envs: 8 // 2 = 4 rows per sub-env column
    replay = FeedForwardPath(config(), store, 2, 2, 3).replay
    assert isinstance(replay, TransitionReplay) and replay.rows == 4 and replay.num_envs == 2


def test_feed_forward_record_stores_only_the_valid_transitions(store: FeatureStore) -> None:
    """Sub-env 0 answers class 1 at fraction 0.5 (a hit, terminated); sub-env 1 is the
    reset transition after a done (invalid) and must not be stored."""
    path = FeedForwardPath(config(), store, 2, 2, 3)
    path.record(
        step(
            2,
            obs=[[1.0, 2.0], [9.0, 9.0]],
            actions=[2, 1],
            reward=[0.75, 9.0],
            next_obs=[[3.0, 4.0], [9.0, 9.0]],
            next_mask=[[False, True, True], [True, True, True]],
            terminated=[True, False],
            valid=[True, False],
            label=[1, 0],
            fraction=[0.5, 9.0],
            hit=[True, False],
        )
    )
    replay = path.replay
    assert replay.count.tolist() == [1, 0] and replay.position.tolist() == [1, 0]
    assert replay.obs[0, 0].tolist() == [1.0, 2.0] and replay.next_obs[0, 0].tolist() == [3, 4]
    assert replay.next_mask[0, 0].tolist() == [False, True, True]
    assert (replay.action[0, 0], replay.label[0, 0], replay.reward[0, 0]) == (2, 1, 0.75)
    assert (replay.fraction[0, 0], replay.hit[0, 0]) == (0.5, True)
    assert replay.terminated[0, 0] and replay.ended[0, 0]


# Online: Q([1, 0]) = [2, 0.5, -0.5], Q([0, 1]) = [0, 3, 2]; target Q([0, 1]) = [5, 4, 1].
ONLINE = [[2.0, 0.0], [0.5, 3.0], [-0.5, 2.0]]
TARGET = [[0.0, 5.0], [0.0, 4.0], [0.0, 1.0]]
ENV = Rewards(answers=(1.0, 0.0), correct=(1.0, 1.0))
"""The env's "earliness" preset: correct 1, wrong 0, w = 1."""


def answered(path: FeedForwardPath) -> None:
    """One stored transition: at [1, 0], class 0 (action 1) on a clip of label 0, at
    fraction 0.5, a hit; stored reward 0.3; terminated."""
    path.record(
        step(
            1,
            obs=[[1.0, 0.0]],
            actions=[1],
            reward=[0.3],
            next_obs=[[0.0, 1.0]],
            terminated=[True],
            fraction=[0.5],
            hit=[True],
        )
    )


def test_feed_forward_loss_of_a_stored_reward(store: FeatureStore) -> None:
    """y = 0.3 (terminated: no bootstrap); q = Q([1, 0], class 0) = 0.5;
    Huber(0.5 − 0.3 = 0.2) = 0.5 · 0.2² = 0.02; mean Q 0.5."""
    path = FeedForwardPath(config(), store, 1, 2, 3)
    answered(path)
    nets = (linear_q(ONLINE), linear_q(TARGET))
    loss, q_mean = path.loss(nets, ENV, np.random.default_rng(0), None)
    assert loss.item() == pytest.approx(0.02, abs=1e-6)
    assert q_mean.item() == pytest.approx(0.5, abs=1e-6)


def test_feed_forward_loss_recomputes_the_reward_with_the_current_weight(
    store: FeatureStore,
) -> None:
    """Weight 0.4: the hit at 0.5 earns 1 − 0.4 · 0.5 = 0.8 (not the stored 0.3);
    Huber(0.5 − 0.8 = −0.3) = 0.5 · 0.09 = 0.045."""
    path = FeedForwardPath(config(), store, 1, 2, 3)
    answered(path)
    loss, _ = path.loss((linear_q(ONLINE), linear_q(TARGET)), ENV, np.random.default_rng(0), 0.4)
    assert loss.item() == pytest.approx(0.045, abs=1e-6)


def test_feed_forward_loss_bootstraps_with_the_config_gamma(store: FeatureStore) -> None:
    """A wait at [1, 0] (reward 0.1) to [0, 1], not terminated. Double DQN: the online
    net's masked argmax at [0, 1] is class 0 (3 > 2 > 0), valued by the target at 4;
    y = 0.1 + 0.5 · 4 = 2.1, q = Q([1, 0], wait) = 2, Huber(−0.1) = 0.005.
    (With γ = 1 it would be y = 4.1 and Huber(−2.1) = 1.6.)"""
    path = FeedForwardPath(config(), store, 1, 2, 3)
    path.record(step(1, obs=[[1.0, 0.0]], reward=[0.1], next_obs=[[0.0, 1.0]], fraction=[0.5]))
    loss, q_mean = path.loss(
        (linear_q(ONLINE), linear_q(TARGET)), ENV, np.random.default_rng(0), None
    )
    assert loss.item() == pytest.approx(0.005, abs=1e-6)
    assert q_mean.item() == pytest.approx(2.0, abs=1e-6)


def test_feed_forward_counterfactual_classes_use_the_env_rewards(store: FeatureStore) -> None:
    """With counterfactual class targets under the stored rewards, answers (1, −1) and
    correct (c, w) = (1, 0.5): a correct answer at 0.5 would earn 1 · (1 − 0.5 · 0.5) = 0.75,
    a wrong one −1. Label 0: targets [0.75, −1] against Q([1, 0], classes) = [0.5, −0.5]:
    Huber(−0.25) = 0.03125, Huber(0.5) = 0.125, mean 0.078125; plus the TD part 0.02."""
    path = FeedForwardPath(config(counterfactual_classes=True), store, 1, 2, 3)
    answered(path)
    rewards = Rewards(answers=(1.0, -1.0), correct=(1.0, 0.5))
    loss, _ = path.loss(
        (linear_q(ONLINE), linear_q(TARGET)), rewards, np.random.default_rng(0), None
    )
    assert loss.item() == pytest.approx(0.02 + 0.078125, abs=1e-6)


def test_feed_forward_counterfactual_classes_with_a_constant_correct_reward(
    store: FeatureStore,
) -> None:
    """No earliness term (w = 0): the constant answers (2, −1). Targets [2, −1] against
    [0.5, −0.5]: Huber(−1.5) = 1.0, Huber(0.5) = 0.125, mean 0.5625; plus 0.02."""
    path = FeedForwardPath(config(counterfactual_classes=True), store, 1, 2, 3)
    answered(path)
    rewards = Rewards(answers=(2.0, -1.0), correct=(2.0, 0.0))
    loss, _ = path.loss(
        (linear_q(ONLINE), linear_q(TARGET)), rewards, np.random.default_rng(0), None
    )
    assert loss.item() == pytest.approx(0.02 + 0.5625, abs=1e-6)


class SampleSpy:
    """Wraps a replay and records the arguments of every ``sample`` call."""

    def __init__(self, replay: Any) -> None:
        self.replay, self.calls = replay, []

    def sample(self, *args: Any) -> Any:
        self.calls.append(tuple(a for a in args if not isinstance(a, np.random.Generator)))
        return self.replay.sample(*args)


def test_feed_forward_loss_samples_as_the_config_says(store: FeatureStore) -> None:
    path = FeedForwardPath(config(batch_size=3, n_step=5, gamma=0.25), store, 1, 2, 3)
    answered(path)
    spy = path.replay = SampleSpy(path.replay)
    path.loss((linear_q(ONLINE), linear_q(TARGET)), ENV, np.random.default_rng(0), 0.7)
    # (batch_size, n_step, gamma, earliness weight, (c, w) of the env reward)
    assert spy.calls == [(3, 5, 0.25, 0.7, (1.0, 1.0))]


# ---- recurrent ------------------------------------------------------------------------


def test_recurrent_replay_is_sized_in_clips_of_the_store(store: FeatureStore) -> None:
    """Episodes padded to the longest clip (4 steps); capacity buffer_size // mean length
    = 30 // 3 = 10 episodes, and never fewer than 8 (9 // 3 = 3 → 8)."""
    replay = RecurrentPath(config(recurrent="gru", buffer_size=30), store, 2, 1, 3).replay
    assert isinstance(replay, EpisodeReplay)
    assert (replay.capacity, replay.max_length) == (10, 4)
    assert (
        RecurrentPath(config(recurrent="gru", buffer_size=9), store, 2, 1, 3).replay.capacity == 8
    )


def gru() -> RecurrentQNetwork:
    """A seeded GRU Q-network over 1-dim observations, hidden size 2."""
    torch.manual_seed(0)
    return RecurrentQNetwork(FrontEnd(1, 1, 2, "raw"), 3, [2], dueling=False, cell="gru")


def test_recurrent_record_pushes_finished_clips_and_zeroes_their_state(
    store: FeatureStore,
) -> None:
    """Two sub-envs, observations 1-dim.

    - start: clips begin at obs [1] and [2]; hidden states zero, then advanced by a step;
    - step A: sub-env 0 answers class 0 (label 0, fraction 0.25, a hit, reward 1, to obs
      [10]) and ends; sub-env 1 waits (fraction 0.5, to obs [3]);
    - step B: sub-env 0's transition is the reset (invalid), its new clip starts at [5];
      sub-env 1 waits again (fraction 0.75, to [4]) and its clip of label 1 is truncated.

    The replay then holds sub-env 0's clip (obs [1, 10], action [1], reward [1], label 0,
    terminated) and sub-env 1's (obs [2, 3, 4], actions [0, 0], rewards [0, 0], label 1,
    truncated); only sub-env 0's hidden state is zeroed at step B (its next clip starts),
    sub-env 1's is kept."""
    path = RecurrentPath(config(recurrent="gru"), store, 2, 1, 3)
    online = gru()
    path.start(online, np.array([[1.0], [2.0]], np.float32), np.ones((2, 3), bool))
    assert torch.equal(path.hidden, torch.zeros(1, 2, 2))
    q = path.q_values(online, torch.tensor([[1.0], [2.0]]))
    assert q.shape == (2, 3) and bool((path.hidden != 0).all())
    path.record(
        step(
            2,
            actions=[1, 0],
            reward=[1.0, 0.0],
            next_obs=[[10.0], [3.0]],
            terminated=[True, False],
            done=[True, False],
            label=[0, 0],
            fraction=[0.25, 0.5],
            hit=[True, False],
        )
    )
    kept = path.hidden[:, 1].clone()
    path.record(
        step(
            2,
            next_obs=[[5.0], [4.0]],
            truncated=[False, True],
            valid=[False, True],
            done=[False, True],
            prev_done=[True, False],
            label=[0, 1],
            fraction=[9.0, 0.75],
        )
    )
    replay = path.replay
    assert len(replay) == 2 and replay.length[:2].tolist() == [1, 2]
    assert replay.obs[0, :2, 0].tolist() == [1.0, 10.0]
    assert replay.obs[1, :3, 0].tolist() == [2.0, 3.0, 4.0]
    assert replay.action[0, :1].tolist() == [1] and replay.action[1, :2].tolist() == [0, 0]
    assert replay.reward[0, :1].tolist() == [1.0] and replay.reward[1, :2].tolist() == [0, 0]
    assert replay.fraction[1, :2].tolist() == [0.5, 0.75] and replay.hit[0, :1].tolist() == [True]
    assert replay.label[:2].tolist() == [0, 1] and replay.terminated[:2].tolist() == [True, False]
    # sub-env 0's next clip began at [5]; sub-env 1's scratch is pushed but not restarted yet
    assert path.scratch.t.tolist() == [0, 2] and path.scratch.obs[0, 0, 0] == 5.0
    assert torch.equal(path.hidden[:, 0], torch.zeros(1, 2))
    assert torch.equal(path.hidden[:, 1], kept)


def test_recurrent_record_leaves_out_a_step_past_the_budget(store: FeatureStore) -> None:
    """One sub-env: wait at [1] to [2] (valid), a step past the budget (invalid: action 2,
    to [7]), then class 0 to [3], terminated. The clip stored is obs [1, 2, 3], actions
    [0, 1]: the invalid step adds nothing."""
    path = RecurrentPath(config(recurrent="gru"), store, 1, 1, 3)
    path.start(gru(), np.array([[1.0]], np.float32), np.ones((1, 3), bool))
    path.record(step(1, next_obs=[[2.0]], fraction=[0.25]))
    path.record(step(1, actions=[2], next_obs=[[7.0]], valid=[False], fraction=[0.5]))
    path.record(
        step(1, actions=[1], next_obs=[[3.0]], terminated=[True], done=[True], fraction=[0.5])
    )
    replay = path.replay
    assert len(replay) == 1 and replay.length[0] == 2
    assert replay.obs[0, :3, 0].tolist() == [1.0, 2.0, 3.0]
    assert replay.action[0, :2].tolist() == [0, 1]
    assert replay.fraction[0, :2].tolist() == [0.25, 0.5]


def one_hot_episode(path: RecurrentPath) -> None:
    """One stored clip over one-hot observations e0, e1, e2 (3-dim): wait at e0 (fraction
    0.25, stored reward 0), then class 0 at e1 on a clip of label 0 (fraction 0.5, a hit,
    stored reward 0.6), terminated."""
    path.replay.add(
        np.eye(3, dtype=np.float32),
        np.ones((3, 3), bool),
        np.array([0, 1]),
        np.array([0.0, 0.6], np.float32),
        True,
        0,
        np.array([0.25, 0.5], np.float32),
        np.array([False, True]),
    )


# Online: Q(e0) = [0.5, 0, 0], Q(e1) = [0, 0.5, 0]; target Q(e1) = [0.4, 0.2, 0.1].
REC_ONLINE = [[0.5, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 0.0]]
REC_TARGET = [[0.0, 0.4, 0.0], [0.0, 0.2, 0.0], [0.0, 0.1, 0.0]]


def recurrent_loss(
    store: FeatureStore, weight: float | None, rewards: Rewards = ENV, **changes: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """The recurrent path's loss (n = 2, γ = 1) over :func:`one_hot_episode`."""
    path = RecurrentPath(config(recurrent="gru", n_step=2, gamma=1.0, **changes), store, 1, 3, 3)
    one_hot_episode(path)
    nets = (linear_q(REC_ONLINE), linear_q(REC_TARGET))
    return path.loss(nets, rewards, np.random.default_rng(0), weight)


def test_recurrent_loss_over_a_stored_episode(store: FeatureStore) -> None:
    """n = 2, γ = 1, double DQN. Step 0 (wait) looks ahead to the class choice at e1 and
    bootstraps there: online argmax at e1 is class 0 (0.5), the target values it at 0.2;
    y0 = 0 + 0.2 = 0.2, q0 = Q(e0, wait) = 0.5, Huber(0.3) = 0.045. Step 1 (the answer,
    terminal): y1 = 0.6, q1 = Q(e1, class 0) = 0.5, Huber(−0.1) = 0.005.
    Loss (0.045 + 0.005) / 2 = 0.025, mean Q 0.5."""
    loss, q_mean = recurrent_loss(store, None)
    assert loss.item() == pytest.approx(0.025, abs=1e-6)
    assert q_mean.item() == pytest.approx(0.5, abs=1e-6)


def test_recurrent_loss_recomputes_rewards_with_the_current_weight(store: FeatureStore) -> None:
    """Weight 0.4: the hit at 0.5 earns 1 − 0.4 · 0.5 = 0.8, the wait 0: y1 = 0.8,
    Huber(0.5 − 0.8) = 0.045; step 0 unchanged (0.045). Loss 0.045."""
    loss, _ = recurrent_loss(store, 0.4)
    assert loss.item() == pytest.approx(0.045, abs=1e-6)


def test_recurrent_counterfactual_classes_use_the_env_rewards(store: FeatureStore) -> None:
    """Stored rewards, correct (c, w) = (1, 0.5), wrong 0: correct answers would earn
    1 − 0.5 · 0.25 = 0.875 at step 0 and 1 − 0.5 · 0.5 = 0.75 at step 1. Label 0:
    targets [0.875, 0] and [0.75, 0] against Q(e0, classes) = [0, 0], Q(e1, classes) =
    [0.5, 0]: Huber(−0.875) = 0.3828125, 0, Huber(−0.25) = 0.03125, 0 → mean 0.103515625;
    plus the TD part 0.025."""
    rewards = Rewards(answers=(1.0, 0.0), correct=(1.0, 0.5))
    loss, _ = recurrent_loss(store, None, rewards, counterfactual_classes=True)
    assert loss.item() == pytest.approx(0.025 + 0.103515625, abs=1e-6)


def test_recurrent_loss_samples_a_batch_of_episodes_per_32_transitions(
    store: FeatureStore,
) -> None:
    sizes = []
    for batch_size in (64, 95, 16):
        path = RecurrentPath(config(recurrent="gru", batch_size=batch_size), store, 1, 3, 3)
        one_hot_episode(path)
        spy = path.replay = SampleSpy(path.replay)
        path.loss((linear_q(REC_ONLINE), linear_q(REC_TARGET)), ENV, np.random.default_rng(0), 0.3)
        ((size, weight, correct),) = spy.calls
        assert (weight, correct) == (0.3, (1.0, 1.0))
        sizes.append(size)
    # 64 // 32 = 2, 95 // 32 = 2, 16 // 32 = 0 → at least 1
    assert sizes == [2, 2, 1]
