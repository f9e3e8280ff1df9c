"""Tuning the DQN's wait bias for the harmonic mean on the training speakers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from avemotion.agents.evaluate import evaluate_run
from avemotion.agents.runner import load_agent, train
from avemotion.agents.stop_tuning import step_observations
from avemotion.envs.core import ObservationLayout

TINY = {"num_envs": 4, "learning_starts": 20, "batch_size": 16, "hidden": [8]}


@pytest.mark.parametrize("posterior", ["running-mean-softmax", "prefix-shape-softmax"])
def test_tuned_bias_matches_the_greedy_policy_it_describes(
    tiny_store, tmp_path, posterior: str
) -> None:
    """Without cross-fitting, the agent's episodes are the training clips themselves: the
    accuracy and earliness the tuning reports are exactly what greedy evaluation of the
    saved agent (its tuned shrinkage and bias) measures there, for either kind of
    posterior model."""
    run = train(
        "dqn",
        tiny_store,
        400,
        0,
        tmp_path / "run",
        exclude_speakers=["P3"],
        progress=False,
        frontend_crossfit=False,
        posterior=posterior,
        **TINY,
    )
    summary = json.loads((run / "summary.json").read_text())
    tuned = summary["stop_tuning"]
    state = torch.load(run / "model.pt", weights_only=True)
    assert float(state["wait_bias"]) == pytest.approx(tuned["wait_bias"])
    assert float(state["wait_shrink"]) == tuned["wait_shrink"]
    with pytest.warns(UserWarning, match="trained on"):
        report = evaluate_run(run, tiny_store, speakers=["P1", "P2"])
    assert report["accuracy"] == pytest.approx(tuned["train_accuracy"])
    assert report["earliness"] == pytest.approx(tuned["train_earliness"])


def test_step_observations_match_the_env(tiny_store) -> None:
    import gymnasium as gym

    import avemotion  # noqa: F401

    layout = ObservationLayout(tiny_store, "frame+mean")
    rows = step_observations(tiny_store, layout)
    env = gym.make("AVEmotion-v0", store=tiny_store, obs_mode="frame+mean", sampling="sequential")
    obs, _ = env.reset(seed=0)
    length = int(tiny_store.lengths[0])
    for t in range(length):
        np.testing.assert_allclose(obs, rows[t], rtol=1e-5, atol=1e-5)
        if t < length - 1:
            obs, *_ = env.step(0)


def test_agents_saved_before_the_bias_still_load(tiny_store, tmp_path) -> None:
    run = train("dqn", tiny_store, 150, 0, tmp_path / "old", progress=False, **TINY)
    state = torch.load(run / "model.pt", weights_only=True)
    for name in ("wait_bias", "wait_shrink", "wait_mean"):
        del state[name]
    torch.save(state, run / "model.pt")
    network = load_agent(run).network
    assert float(network.wait_bias) == float(network.wait_shrink) == 0.0


def test_earliness_budget_is_respected_on_the_training_episodes(tiny_store, tmp_path) -> None:
    run = train(
        "dqn",
        tiny_store,
        300,
        0,
        tmp_path / "budget",
        exclude_speakers=["P3"],
        progress=False,
        earliness_budget=0.3,
        **TINY,
    )
    tuned = json.loads((run / "summary.json").read_text())["stop_tuning"]
    assert tuned["train_earliness"] <= 0.3


def test_shrinkage_by_hand() -> None:
    """``(1 − α) · wait + α · mean − best``: α = 1 keeps only the class value."""
    from avemotion.agents.stop_tuning import stop_margins

    class Fixed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("wait_bias", torch.zeros(()))
            self.register_buffer("wait_shrink", torch.zeros(()))
            self.register_buffer("wait_mean", torch.zeros(()))

        def forward(self, obs: torch.Tensor) -> torch.Tensor:
            wait = (1 - self.wait_shrink) * obs[:, :1] + self.wait_shrink * self.wait_mean
            return torch.cat([wait - self.wait_bias, obs[:, 1:]], dim=1)

    obs = np.array([[1.0, 0.2, 0.5], [3.0, 0.9, 0.1]], np.float32)  # wait values 1 and 3
    margin, predicted, mean = stop_margins(Fixed(), obs, shrink=0.5)
    # mean wait 2; margins 0.5 · 1 + 0.5 · 2 − 0.5 = 1.0 and 0.5 · 3 + 1 − 0.9 = 1.6
    np.testing.assert_allclose(margin, [1.0, 1.6], rtol=1e-6)
    assert mean == 2.0 and predicted.tolist() == [1, 0]
    network = Fixed()
    network.wait_shrink.fill_(1.0)
    network.wait_mean.fill_(2.0)
    network.wait_bias.fill_(5.0)
    margin, _, _ = stop_margins(network, obs)  # the network's own α and mean, bias left out
    np.testing.assert_allclose(margin, [1.5, 1.1], rtol=1e-6)
