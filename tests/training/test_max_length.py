"""A run keeps its training T_max (the time feature's t / T_max) on other speakers.

The training speakers' longest clip is 12 steps, the test speaker's is 7: the run records
12 in its config.json, trains with it (our DQN's front end recovers step counts from
t · T_max) and evaluation feeds the agent t / 12, not t / 7.
"""

from __future__ import annotations

import json

import gymnasium
import numpy as np
import pytest
import torch

import avemotion.training.run_dir as runner
from avemotion.evaluation.evaluate import evaluate_run
from avemotion.store import FeatureStore
from avemotion.training.train import train

LONGEST = {"A1": 12, "A2": 9, "B": 7}


@pytest.fixture(scope="module")
def uneven_store(tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    """Speakers whose longest clips differ: A1 12 steps, A2 9, B 7."""
    rng = np.random.default_rng(0)
    sequences, labels, speakers = [], [], []
    for speaker, longest in LONGEST.items():
        for c in range(3):
            for length in (longest - 3, longest - 1, longest):
                sequences.append(rng.normal(c, 1.0, size=(length, 4)).astype(np.float32))
                labels.append(c)
                speakers.append(speaker)
    return FeatureStore.create(
        tmp_path_factory.mktemp("stores") / "uneven",
        sequences,
        labels,
        speakers,
        ["calm", "happy", "sad"],
        meta={"steps_per_second": 10.0},
    )


def _time_features_seen(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Make ``load_agent`` return agents that record every time feature they are shown."""
    seen: list[float] = []
    load = runner.load_agent

    def recording_load(run_dir):  # type: ignore[no-untyped-def]
        agent = load(run_dir)
        act_batch = agent.act_batch

        def act(observations, masks, starts):  # type: ignore[no-untyped-def]
            seen.extend(float(v) for v in observations[:, -1])
            return act_batch(observations, masks, starts)

        agent.act_batch = act
        return agent

    monkeypatch.setattr(runner, "load_agent", recording_load)
    return seen


def _first_step_time(seen: list[float]) -> float:
    return min(v for v in seen if v > 0)


def test_dqn_run_keeps_its_training_max_length(uneven_store, tmp_path, monkeypatch) -> None:
    run = train(
        "dqn",
        uneven_store,
        200,
        0,
        tmp_path / "dqn",
        speakers=["A1", "A2"],
        progress=False,
        num_envs=4,
        learning_starts=20,
        batch_size=16,
        hidden=[8],
        reward="env",
        wait_cost=0.0,
        exploration_wait_prob=1.0,
    )
    config = json.loads((run / "config.json").read_text())
    assert config["max_length"] == LONGEST["A1"]
    # the front end fits on A1 and the agent learns on A2 (longest 9): it still used 12
    state = torch.load(run / "model.pt", weights_only=True)
    assert float(state["frontend.max_length"]) == LONGEST["A1"]
    assert runner.load_agent(run).max_length == LONGEST["A1"]
    seen = _time_features_seen(monkeypatch)
    result = evaluate_run(run, uneven_store, speakers=["B"])
    assert result["n_clips"] == 9
    assert _first_step_time(seen) == pytest.approx(1 / LONGEST["A1"])
    assert max(seen) <= (LONGEST["B"] - 1) / LONGEST["A1"] + 1e-6


def test_sb3_run_trains_and_evaluates_with_its_max_length(
    uneven_store, tmp_path, monkeypatch
) -> None:
    made: list[int | None] = []
    make = gymnasium.make

    def recording_make(*args, **kwargs):  # type: ignore[no-untyped-def]
        made.append(kwargs.get("max_length"))
        return make(*args, **kwargs)

    monkeypatch.setattr(gymnasium, "make", recording_make)
    run = train(
        "sb3-a2c",
        uneven_store,
        64,
        0,
        tmp_path / "a2c",
        speakers=["A2"],
        progress=False,
        log_every=32,
        n_steps=4,
        reward="signed",  # an untrained A2C then waits often enough to show its time feature
    )
    assert made and set(made) == {LONGEST["A2"]}
    assert json.loads((run / "config.json").read_text())["max_length"] == LONGEST["A2"]
    seen = _time_features_seen(monkeypatch)
    evaluate_run(run, uneven_store, speakers=["A1"])
    assert _first_step_time(seen) == pytest.approx(1 / LONGEST["A2"])


class AlwaysWaits:
    """Waits wherever it may; answers class 0 where waiting is masked."""

    obs_mode = "frame"

    def reset(self) -> None:
        pass

    def act_batch(self, observations, masks, starts):  # type: ignore[no-untyped-def]
        return np.where(masks[:, 0], 0, 1)


def test_a_clip_longer_than_t_max_is_answered_by_its_t_max_th_step(uneven_store) -> None:
    """A1's clips are 9, 11 and 12 steps long; with T_max 9 each is answered on its 9th
    step (as the online recognizer answers), and stepped to its end without the rule."""
    from avemotion.evaluation.evaluate import sweep_agent

    a1 = uneven_store.subset(speakers=["A1"])
    _, steps = sweep_agent(AlwaysWaits(), a1, max_length=9)
    assert steps.tolist() == [9] * 9
    _, steps = sweep_agent(AlwaysWaits(), a1, max_length=9, answer_by_max_length=False)
    assert steps.tolist() == [9, 11, 12] * 3
