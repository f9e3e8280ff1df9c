"""Tiny-budget smoke runs of every SB3 / sb3-contrib agent through our run interface."""

from __future__ import annotations

import numpy as np
import pytest

from avemotion.agents.evaluate import evaluate_run
from avemotion.agents.runner import load_agent, train
from avemotion.agents.sb3 import SB3_AGENTS

SMALL = {
    "sb3-dqn": {"learning_starts": 20, "batch_size": 16},
    "sb3-qrdqn": {"learning_starts": 20, "batch_size": 16},
    "sb3-ppo": {"n_steps": 16, "batch_size": 32, "n_epochs": 1},
    "sb3-a2c": {"n_steps": 4},
    "sb3-recurrent-ppo": {"n_steps": 16, "batch_size": 32, "n_epochs": 1},
    "sb3-maskable-ppo": {"n_steps": 16, "batch_size": 32, "n_epochs": 1},
}


@pytest.mark.parametrize("agent", SB3_AGENTS)
def test_sb3_agent_smoke(agent: str, tiny_store, tmp_path) -> None:
    run = train(
        agent,
        tiny_store,
        128,
        0,
        tmp_path / agent,
        exclude_speakers=["P3"],
        progress=False,
        log_every=64,
        **SMALL[agent],
    )
    assert (run / "model.zip").is_file() and (run / "training_log.csv").is_file()
    result = evaluate_run(run, tiny_store, speakers=["P3"])
    assert result["n_clips"] == tiny_store.subset(speakers=["P3"]).n_clips
    assert all(p >= 0 for row in result["confusion_matrix"] for p in row)
    loaded = load_agent(run)
    loaded.reset()
    mask = np.array([False, True, True, True])
    for _ in range(5):  # on a last step it must answer, whatever the policy prefers
        assert loaded.act(np.zeros(2 * tiny_store.dim + 1, np.float32), mask) != 0


def test_sb3_resume_is_refused(tiny_store, tmp_path) -> None:
    train("sb3-a2c", tiny_store, 32, 0, tmp_path / "a2c", progress=False, n_steps=4)
    with pytest.raises(ValueError, match="resume"):
        train("sb3-a2c", tiny_store, 64, 0, tmp_path / "a2c", resume=True, progress=False)
