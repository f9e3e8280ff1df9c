"""Tiny-budget smoke runs of every SB3 / sb3-contrib agent through our run interface."""

from __future__ import annotations

import numpy as np
import pytest
from clip_replay import play_clip_by_clip

from avemotion.agents.sb3 import SB3_AGENTS
from avemotion.evaluation.evaluate import evaluate_run
from avemotion.training.run_dir import load_agent, read_run_config, read_summary
from avemotion.training.train import train

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
    # the env default reward, recorded in the run config and in the summary of the training
    assert read_summary(run)["reward"] == read_run_config(run)["reward"]
    assert read_summary(run)["reward"]["name"] == "earliness"
    held_out = tiny_store.subset(speakers=["P3"])
    result = evaluate_run(run, tiny_store, speakers=["P3"])
    assert result["n_clips"] == held_out.n_clips
    predictions, steps = play_clip_by_clip(load_agent(run), held_out)
    assert (predictions >= 0).all()  # every clip answered, never by a masked wait
    confusion = np.zeros((3, 3), dtype=int)
    np.add.at(confusion, (held_out.labels, predictions), 1)
    assert result["confusion_matrix"] == confusion.tolist()
    assert result["accuracy"] == pytest.approx(np.mean(predictions == held_out.labels))
    assert result["earliness"] == pytest.approx(np.mean(steps / held_out.lengths))
    loaded = load_agent(run)
    loaded.reset()
    mask = np.array([False, True, True, True])
    for _ in range(5):  # on a last step it must answer, whatever the policy prefers
        assert loaded.act(np.zeros(2 * tiny_store.dim + 1, np.float32), mask) != 0


def test_sb3_resume_is_refused(tiny_store, tmp_path) -> None:
    train("sb3-a2c", tiny_store, 32, 0, tmp_path / "a2c", progress=False, n_steps=4)
    with pytest.raises(ValueError, match="resume"):
        train("sb3-a2c", tiny_store, 64, 0, tmp_path / "a2c", resume=True, progress=False)
