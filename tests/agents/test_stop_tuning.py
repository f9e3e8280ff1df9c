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


def test_tuned_bias_matches_the_greedy_policy_it_describes(tiny_store, tmp_path) -> None:
    """Without cross-fitting or a split, the agent's episodes are the training clips
    themselves: the accuracy and earliness the tuning reports are exactly what greedy
    evaluation of the saved agent measures there."""
    run = train(
        "dqn",
        tiny_store,
        400,
        0,
        tmp_path / "run",
        exclude_speakers=["P3"],
        progress=False,
        frontend_crossfit=False,
        frontend_split=0.0,
        **TINY,
    )
    summary = json.loads((run / "summary.json").read_text())
    tuned = summary["stop_tuning"]
    state = torch.load(run / "model.pt", weights_only=True)
    assert float(state["wait_bias"]) == pytest.approx(tuned["wait_bias"])
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
    del state["wait_bias"]
    torch.save(state, run / "model.pt")
    assert float(load_agent(run).network.wait_bias) == 0.0


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
