"""Tianshou 2.x: the mask travels in ``obs.mask``; DQN runs through its collector and trainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from optional_extras import require_extra

require_extra("tianshou", "tianshou")

from tianshou.data import Batch, ReplayBuffer  # noqa: E402

import avemotion.integrations.tianshou as ts  # noqa: E402
from avemotion.integrations.tianshou import make_env, make_policy, train_dqn  # noqa: E402
from avemotion.store import FeatureStore  # noqa: E402


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


def _short_store(path):
    """Speaker A: 6 clips of 4 steps (training); speaker B: 21 clips of 5 steps, 105 steps."""
    rng = np.random.default_rng(0)
    shape = [("A", 4)] * 6 + [("B", 5)] * 21
    sequences = [rng.normal(size=(length, 2)).astype(np.float32) for _, length in shape]
    labels = [i % 2 for i in range(len(shape))]
    speakers = [speaker for speaker, _ in shape]
    return FeatureStore.create(path, sequences, labels, speakers, ["calm", "sad"])


def _always_waiting(monkeypatch) -> None:
    """Policies whose Q of waiting is far above every class: each greedy episode lasts its
    whole clip (waiting is masked on the last step only)."""
    made = ts.make_policy

    def make(env, **kwargs):
        policy = made(env, **kwargs)

        def wait_first(module, args, output):
            values, state = output
            bias = torch.zeros(values.shape[-1])
            bias[0] = 1e6
            return values + bias, state

        policy.model.register_forward_hook(wait_first)
        return policy

    monkeypatch.setattr(ts, "make_policy", make)


def test_the_final_test_reads_every_clip_of_a_long_pass(tmp_path, monkeypatch) -> None:
    """A greedy pass longer than a fixed buffer, at 1/100 scale: a 10,000-step buffer holds
    100 steps here, and the pass over speaker B's 21 clips of 5 steps (each played to its
    end) takes 105. The final test's buffer holds all 105: no episode is overwritten."""
    store = _short_store(tmp_path / "store")
    _always_waiting(monkeypatch)
    sizes = []

    def buffer(size, **kwargs):
        sizes.append(size)
        return ReplayBuffer(100 if size == 10_000 else size, **kwargs)

    monkeypatch.setattr(ts, "ReplayBuffer", buffer)
    assert ts.final_buffer_size(store.subset(speakers=["B"])) == 105
    result = ts.train_dqn(
        epochs=1,
        epoch_steps=20,
        batch_size=8,
        seed=0,
        store=store,
        exclude_speakers=["B"],
        test_kwargs={"speakers": ["B"], "exclude_speakers": None},
    )
    assert result["final_episodes"] == 21.0 and result["final_masked_waits"] == 0.0
    assert sizes[-1] == 105  # the final test's buffer
    correct = result["final_accuracy"] * 21
    assert abs(correct - round(correct)) < 1e-9  # a count of the 21 clips
    # every answer on a clip's last step: right 1 - 1 * T / T = 0, wrong 0, waits 0
    assert result["final_mean_return"] == 0.0


def test_the_final_test_refuses_a_buffer_that_lost_episodes(tmp_path, monkeypatch) -> None:
    """A 1-step buffer keeps the last episode's last step only: 1 of the 6 clips."""
    store = _short_store(tmp_path / "store")
    monkeypatch.setattr(ts, "final_buffer_size", lambda store: 1)
    expected = (
        "final test: 1 finished episode(s) in the buffer of 1 steps, expected 6 (one per clip); "
        "final_accuracy would leave some out"
    )
    with pytest.raises(RuntimeError) as error:
        ts.train_dqn(epochs=1, epoch_steps=10, batch_size=8, seed=0, store=store, speakers=["A"])
    assert str(error.value) == expected
