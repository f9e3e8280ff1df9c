"""Evaluation sweeps every selected clip exactly once; the JSON has the documented keys."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from avemotion.cli import main
from avemotion.evaluation.evaluate import evaluate_agent, evaluate_run, sweep_agent
from avemotion.store import FeatureStore
from avemotion.training.train import train


class RecordingAgent:
    """Waits a clip-dependent number of steps, then answers class 0; records every first obs."""

    obs_mode = "frame"

    def __init__(self) -> None:
        self.starts = 0

    def reset(self) -> None:
        self.starts = 0

    def act(self, observation, action_mask) -> int:
        return 0 if action_mask[0] else 1

    def act_batch(self, observations, action_masks, episode_starts):
        self.starts += int(np.sum(episode_starts))
        wait = action_masks[:, 0] & (observations[:, -1] < 0.5)
        return np.where(wait, 0, 1)


@pytest.mark.parametrize("max_envs", [1, 5, 64])
def test_sweep_covers_each_clip_once(tiny_store, max_envs: int) -> None:
    agent = RecordingAgent()
    predictions, steps = sweep_agent(agent, tiny_store, max_envs=max_envs)
    assert len(predictions) == tiny_store.n_clips
    assert (predictions == 0).all()
    # the agent waits while t / T_max < 0.5 (T_max = 12, the longest clip) and it may wait,
    # so a clip of T steps is answered at index min(6, T − 1): it sees T steps if T ≤ 7, else 7
    assert int(tiny_store.lengths.max()) == 12
    np.testing.assert_array_equal(steps, np.minimum(tiny_store.lengths, 7))
    assert agent.starts >= tiny_store.n_clips  # every clip began an episode
    report = evaluate_agent(agent, tiny_store)
    assert report["n_clips"] == tiny_store.n_clips
    assert sum(map(sum, report["confusion_matrix"])) == tiny_store.n_clips


def test_evaluate_cli_prints_json_last(tiny_store, tmp_path, capsys) -> None:
    run = train(
        "dqn",
        tiny_store,
        150,
        0,
        tmp_path / "run",
        speakers=["P1", "P2"],
        progress=False,
        num_envs=4,
        learning_starts=20,
        batch_size=16,
        hidden=[8],
    )
    assert (
        main(
            [
                "evaluate",
                "--run",
                str(run),
                "--features",
                str(tiny_store.path),
                "--speakers",
                "P3",
                "--baselines",
                "--json",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in (
        "accuracy",
        "earliness",
        "harmonic_mean",
        "n_clips",
        "mean_decision_s",
        "per_class_recall",
        "confusion_matrix",
    ):
        assert key in result
    assert result["n_clips"] == tiny_store.subset(speakers=["P3"]).n_clips
    assert {"full_clip", "threshold", "fixed_fraction"} <= set(result["baselines"])
    assert result["baselines"]["full_clip"]["earliness"] == 1.0
    for report in result["baselines"].values():
        assert report["n_clips"] == result["n_clips"]
    curves = result["baseline_curves"]
    assert set(curves) == {"threshold", "fixed_fraction"}
    last = curves["fixed_fraction"][-1]  # x = 1: the whole clip
    assert last["parameter"] == 1.0 and last["earliness"] == 1.0


def test_evaluate_run_rejects_a_store_of_other_classes(
    tiny_store, tiny_store_factory, tmp_path
) -> None:
    run = train(
        "dqn",
        tiny_store,
        100,
        0,
        tmp_path / "run",
        progress=False,
        num_envs=4,
        learning_starts=20,
        batch_size=16,
        hidden=[8],
    )
    other = tiny_store_factory(tmp_path / "other", dim=5)
    with pytest.raises(ValueError, match="dim"):
        evaluate_run(run, other)
    # the same clips and dim, the class names in another order: labels would mean other classes
    renamed = FeatureStore.create(
        tmp_path / "renamed",
        [tiny_store.clip(i).frames for i in range(tiny_store.n_clips)],
        tiny_store.labels,
        tiny_store.speakers,
        ["sad", "happy", "calm"],
        meta={"steps_per_second": 10.0},
    )
    with pytest.raises(ValueError, match="class_names"):
        evaluate_run(run, renamed)
    with pytest.raises(FileNotFoundError, match="config.json"):
        evaluate_run(tmp_path / "nothing", tiny_store)


LEAK_TINY = {"num_envs": 4, "learning_starts": 20, "batch_size": 16, "hidden": [8]}


def test_baselines_never_fit_on_the_evaluated_store(tiny_store_factory, tmp_path) -> None:
    """A leak check with two stores: evaluated on a second store holding held-out clips with
    shuffled labels, every rule (and aeon) falls to chance, since nothing is fitted on it;
    on the true labels the same rules are well above chance."""
    from avemotion.store import FeatureStore

    train_store = tiny_store_factory(tmp_path / "train", clips_per_class=20)
    run = train(
        "dqn", train_store, 200, 0, tmp_path / "run", exclude_speakers=["P3"], progress=False,
        posterior="running-mean-softmax", **LEAK_TINY,
    )  # fmt: skip
    held = train_store.subset(speakers=["P3"])
    rng = np.random.default_rng(0)
    shuffled = FeatureStore.create(
        tmp_path / "shuffled",
        [np.asarray(held.clip(i).frames) for i in range(held.n_clips)],
        rng.permutation(held.labels),
        ["Q3"] * held.n_clips,
        held.class_names,
        clip_ids=[f"other-{i}" for i in range(held.n_clips)],
    )
    honest = evaluate_run(run, train_store, speakers=["P3"], baselines=True)["baselines"]
    leaked = evaluate_run(run, shuffled, baselines=True)["baselines"]
    assert set(leaked) >= {"threshold", "fixed_fraction", "full_clip", "consecutive"}
    for name in leaked:
        assert honest[name]["accuracy"] >= 0.8, (name, honest[name]["accuracy"])
        assert leaked[name]["accuracy"] <= 0.5, (name, leaked[name]["accuracy"])  # chance 1/3


def test_baselines_refuse_missing_changed_or_shared_training_data(
    tiny_store_factory, tmp_path
) -> None:
    store = tiny_store_factory(tmp_path / "store")
    run = train(
        "dqn", store, 100, 0, tmp_path / "run", exclude_speakers=["P3"], progress=False,
        posterior="running-mean-softmax", **LEAK_TINY,
    )  # fmt: skip
    with pytest.warns(UserWarning, match="trained on"):
        with pytest.raises(ValueError, match="share clip ids with the training clips"):
            evaluate_run(run, store, speakers=["P1", "P3"], baselines=True)
    # the training store rewritten with other data at the same path
    shutil.rmtree(tmp_path / "store")
    tiny_store_factory(tmp_path / "store", seed=5)
    with pytest.raises(ValueError, match=r"training\.digest: .* changed since the run"):
        evaluate_run(run, tmp_path / "store", speakers=["P3"], baselines=True)
    shutil.rmtree(tmp_path / "store")
    other = tiny_store_factory(tmp_path / "other")
    with pytest.raises(FileNotFoundError, match=r"training\.store: .* is missing"):
        evaluate_run(run, other, speakers=["P3"], baselines=True)
