"""Determinism on CPU: the same seed and config give byte-identical metrics JSON for every
agent and every baseline; different seeds give different runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from avemotion.evaluation.evaluate import evaluate_run
from avemotion.stopping.aeon import AEON_RULES, aeon_available
from avemotion.store import FeatureStore
from avemotion.training.train import AGENTS, train

from .conftest import TINY_DQN

STEPS = 160
OPTIONS = {
    "dqn": TINY_DQN,
    "dqn-recurrent": {**TINY_DQN, "hidden": [8]},
    "sb3-dqn": {"learning_starts": 20, "batch_size": 16},
    "sb3-qrdqn": {"learning_starts": 20, "batch_size": 16},
    "sb3-ppo": {"n_steps": 16, "batch_size": 32, "n_epochs": 1},
    "sb3-a2c": {"n_steps": 4},
    "sb3-recurrent-ppo": {"n_steps": 16, "batch_size": 32, "n_epochs": 1},
    "sb3-maskable-ppo": {"n_steps": 16, "batch_size": 32, "n_epochs": 1},
}
"""The cheapest budget at which each agent still learns (gradient steps happen)."""


def _metrics(run: Path, store: FeatureStore, baselines: bool = False) -> str:
    result = evaluate_run(run, store, speakers=["P3"], baselines=baselines)
    result.pop("run")
    return json.dumps(result, sort_keys=True)


def _train(agent: str, store: FeatureStore, seed: int, out: Path) -> Path:
    options = {"progress": False, "log_every": 80, **OPTIONS[agent]}
    return train(agent, store, STEPS, seed, out, speakers=["P1", "P2"], **options)


def _weights(run: Path) -> list[torch.Tensor]:
    if (run / "model.pt").is_file():
        return list(torch.load(run / "model.pt", weights_only=True).values())
    import zipfile

    with zipfile.ZipFile(run / "model.zip") as archive, archive.open("policy.pth") as handle:
        import io

        return list(torch.load(io.BytesIO(handle.read()), weights_only=True).values())


def test_every_agent_is_covered() -> None:
    assert set(OPTIONS) == set(AGENTS)


@pytest.mark.parametrize("agent", list(OPTIONS))
def test_same_seed_same_metrics_other_seed_other_run(
    agent: str, small_store: FeatureStore, tmp_path: Path
) -> None:
    first = _train(agent, small_store, 3, tmp_path / "a")
    second = _train(agent, small_store, 3, tmp_path / "b")
    assert _metrics(first, small_store) == _metrics(second, small_store)
    assert (first / "training_log.csv").read_text().count("\n") > 1
    other = _train(agent, small_store, 4, tmp_path / "c")
    # at this budget the greedy metrics of two seeds may tie, the learnt weights may not
    assert any(not torch.equal(x, y) for x, y in zip(_weights(first), _weights(other))), (
        f"{agent}: seeds 3 and 4 trained identical weights"
    )


def test_baselines_are_deterministic(
    small_store: FeatureStore, small_run: Path, tmp_path: Path
) -> None:
    # two copies of the run without its saved evaluations: each fits aeon's rules anew
    # (evaluate_run keeps their results in RUN/evaluations and would read them back)
    results = []
    for name in ("a", "b"):
        run = tmp_path / name
        shutil.copytree(small_run, run, ignore=shutil.ignore_patterns("evaluations"))
        results.append(json.loads(_metrics(run, small_store, baselines=True))["baselines"])
        assert (run / "evaluations").is_dir() == aeon_available()
    first, second = results
    assert {"threshold", "fixed_fraction", "consecutive"} <= set(first)
    assert set(AEON_RULES) <= set(first) or not aeon_available()
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
