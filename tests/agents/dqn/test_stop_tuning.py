"""Tuning the DQN's wait bias for the harmonic mean on the training speakers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from avemotion.agents.dqn.networks import STOP_BUFFERS
from avemotion.agents.dqn.stop_tuning import step_observations
from avemotion.envs.core import ObservationLayout
from avemotion.evaluation.evaluate import evaluate_run
from avemotion.training.run_dir import load_agent
from avemotion.training.train import train

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
        np.testing.assert_array_equal(obs, rows[t])  # the env's own observations, bit for bit
        if t < length - 1:
            obs, *_ = env.step(0)


def test_agents_saved_before_the_bias_still_load(tiny_store, tmp_path) -> None:
    run = train("dqn", tiny_store, 150, 0, tmp_path / "old", progress=False, **TINY)
    state = torch.load(run / "model.pt", weights_only=True)
    for name in STOP_BUFFERS:
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
    """``(1 − α) · wait + α · mean − share_α · max p`` (earliness reward: correct 1, wrong 0),
    both learnt values shrunk by the same α; α = 1 leaves the posterior's maximum alone."""
    from avemotion.agents.dqn.stop_tuning import stop_margins

    class Fixed(torch.nn.Module):
        """Columns: learnt wait value, learnt share of a correct answer, posterior."""

        correct = True

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("rewards", torch.tensor([1.0, 0.0]))
            for name in ("wait_bias", "wait_shrink", "wait_mean", "correct_shrink", "correct_mean"):
                self.register_buffer(name, torch.zeros(()))

        def stop_parts(self, obs: torch.Tensor):
            return obs[:, :1], obs[:, 1:2], obs[:, 2:]

    obs = np.array([[1.0, 0.5, 0.2, 0.8], [3.0, 1.0, 0.9, 0.1]], np.float32)
    margin, predicted, means = stop_margins(Fixed(), obs, shrink=0.5)
    # means 2 and 0.75; row 1: 0.5 + 1 − (0.25 + 0.375) · 0.8 = 1.0;
    # row 2: 1.5 + 1 − (0.5 + 0.375) · 0.9 = 1.7125
    np.testing.assert_allclose(margin, [1.0, 1.7125], rtol=1e-6)
    assert means == (2.0, 0.75) and predicted.tolist() == [1, 0]
    network = Fixed()
    for name, value in (("wait_shrink", 1.0), ("wait_mean", 2.0), ("correct_shrink", 1.0)):
        getattr(network, name).fill_(value)
    network.correct_mean.fill_(0.5)
    network.wait_bias.fill_(5.0)
    margin, _, _ = stop_margins(network, obs)  # the network's own α and means, bias left out
    np.testing.assert_allclose(margin, [2 - 0.5 * 0.8, 2 - 0.5 * 0.9], rtol=1e-6)


def test_sweep_scores_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    """The HM averaged over the neighbours (edges repeated): a lone sharp peak loses to a
    plateau. With an earliness budget, the accuracy within it, unsmoothed."""
    from avemotion.agents.dqn import stop_tuning

    monkeypatch.setattr(stop_tuning, "SMOOTHING", 1)
    hms = [0.3, 0.9, 0.0, 0.6, 0.6]
    sweep = [
        {"harmonic_mean": h, "accuracy": 0.1 * i, "earliness": 0.2 * i} for i, h in enumerate(hms)
    ]
    # padded: 0.3 0.3 0.9 0 0.6 0.6 0.6, averaged three at a time
    np.testing.assert_allclose(
        stop_tuning.sweep_scores(sweep, None), [0.5, 0.4, 0.5, 0.4, 0.6], rtol=1e-12
    )
    # budget 0.5: points 0–2 are within it (their accuracy); 3, 4 ranked −1 − earliness
    np.testing.assert_allclose(
        stop_tuning.sweep_scores(sweep, 0.5), [0.0, 0.1, 0.2, -1.6, -1.8], rtol=1e-12
    )


def test_stop_parts_runs_on_the_networks_device() -> None:
    """The tuning reads a training network that may sit on a GPU: its observations go to
    the network's device and the parts come back as CPU arrays (``meta`` stands in for a
    device the observations are not on)."""
    from avemotion.agents.dqn.stop_tuning import stop_parts

    class OnMeta(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.empty(1, device="meta"))
            self.seen: list[torch.device] = []

        def stop_parts(self, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
            self.seen.append(obs.device)
            p = torch.tensor([[0.25, 0.75], [0.9, 0.1]])
            return torch.tensor([[0.5], [0.25]]), torch.tensor([[1.0], [0.5]]), p

    network = OnMeta()
    parts = stop_parts(network, np.zeros((2, 3), dtype=np.float32))
    assert network.seen == [torch.device("meta")]
    np.testing.assert_array_equal(parts["wait"], [0.5, 0.25])
    np.testing.assert_array_equal(parts["share"], [1.0, 0.5])
    np.testing.assert_array_equal(parts["top"], np.float32([0.75, 0.9]))
    np.testing.assert_array_equal(parts["predicted"], [1, 0])


def test_the_stopping_rule_is_tuned_once_whatever_the_checkpoints(
    tiny_store, tmp_path, monkeypatch
) -> None:
    """Four checkpoints, one tuning: only the finished run's model is tuned; an unfinished
    run's model.pt (saved at each checkpoint) keeps the learnt rule."""
    from avemotion.agents.dqn import stop_tuning

    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return tune(*args, **kwargs)

    tune = stop_tuning.tune_wait_bias
    monkeypatch.setattr(stop_tuning, "tune_wait_bias", counted)
    options = {**TINY, "checkpoint_every": 40}
    train("dqn", tiny_store, 160, 0, tmp_path / "run", progress=False, **options)
    assert len(calls) == 1
