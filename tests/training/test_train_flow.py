"""``train`` checks every input before it touches an existing run directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from avemotion.training import train as runner
from avemotion.training.train import load_agent, time_says_more, train

TINY_DQN = {"num_envs": 4, "learning_starts": 40, "batch_size": 16, "hidden": [8]}


@pytest.mark.parametrize(
    ("agent", "options", "message"),
    [
        ("dqn", {"posterior": "no-such-model"}, "posterior"),
        ("dqn", {"hiddn": [8]}, "unknown field"),
        ("dqn", {"speakers": ["nobody"]}, "nobody"),
        ("sb3-a2c", {"foo": 1}, "unknown option 'foo'"),
        ("sb3-dqn", {"verbose": 1}, "unknown option 'verbose'"),  # train_sb3 sets it
        ("sb3-dqn", {"n_envs": 0}, r"^n_envs: expected an integer >= 1, got 0$"),
        ("sb3-ppo", {"log_every": 0}, r"^log_every: expected an integer >= 1, got 0$"),
        ("sb3-a2c", {"obs_mode": "frames"}, r"^obs_mode: expected one of \['frame', 'mean'"),
        ("sb3-dqn", {"wait_cost": -0.5}, r"^wait_cost: expected a number >= 0, got -0\.5$"),
        ("sb3-dqn", {"reward": "foo"}, r"^reward: expected one of"),
        ("dqn", {"gamma": 2.0}, r"^dqn config: gamma: expected a number in \[0, 1\]"),
    ],
)
def test_a_bad_input_leaves_the_run_being_overwritten_alone(
    tiny_store, tmp_path: Path, agent: str, options: dict, message: str
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.pt").write_text("the earlier run")
    with pytest.raises(ValueError, match=message):
        train(agent, tiny_store, 100, 0, run, overwrite=True, progress=False, **options)
    assert [p.name for p in run.iterdir()] == ["model.pt"]
    assert (run / "model.pt").read_text() == "the earlier run"


def test_sb3_takes_its_constructor_arguments(tiny_store, tmp_path: Path) -> None:
    run = train(
        "sb3-a2c", tiny_store, 64, 0, tmp_path / "a2c", progress=False, n_steps=4, gamma=0.9
    )
    assert (run / "model.zip").is_file()


def test_overwrite_replaces_a_run_once_the_inputs_are_good(tiny_store, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "stale.txt").write_text("from the earlier run")
    train("dqn", tiny_store, 100, 0, run, overwrite=True, progress=False, **TINY_DQN)
    assert not (run / "stale.txt").exists() and (run / "model.pt").is_file()


def test_a_negative_seed_and_a_raw_front_end_under_the_stopping_head_are_refused_first(
    tiny_store, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.pt").write_text("the earlier run")
    with pytest.raises(ValueError, match=r"^seed: expected an integer >= 0, got -1$"):
        train("dqn", tiny_store, 100, -1, run, overwrite=True, progress=False)
    with pytest.raises(ValueError, match=r"q_head 'stopping' reads the posterior front end"):
        train("dqn", tiny_store, 100, 0, run, overwrite=True, progress=False, frontend="raw")
    assert [p.name for p in run.iterdir()] == ["model.pt"]


def test_resume_with_overwrite_is_refused_before_the_run_is_touched(
    tiny_store, tmp_path: Path
) -> None:
    """Resuming keeps the run directory and overwriting replaces it: given both, one would
    be silently ignored."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.pt").write_text("the earlier run")
    with pytest.raises(ValueError) as error:
        train("dqn", tiny_store, 100, 0, run, resume=True, overwrite=True, progress=False)
    assert str(error.value) == "overwrite: contradicts resume (a resumed run keeps its directory)"
    assert [p.name for p in run.iterdir()] == ["model.pt"]


def test_resume_refuses_other_data_than_the_run_trained_on(
    tiny_store, tiny_store_factory, tmp_path: Path
) -> None:
    """Another store, another speaker selection or another posterior model is refused in
    one line; the recorded ones resume."""
    run = train(
        "dqn", tiny_store, 100, 0, tmp_path / "run", exclude_speakers=["P3"], progress=False,
        **TINY_DQN,
    )  # fmt: skip
    other = tiny_store_factory(tmp_path / "other", seed=5)
    with pytest.raises(ValueError, match=r"training\.store: the run was trained on .*, not "):
        train("dqn", other, 150, 0, run, exclude_speakers=["P3"], resume=True, progress=False)
    with pytest.raises(ValueError, match=r"train_speakers: the run was trained on \['P1', 'P2'\]"):
        train("dqn", tiny_store, 150, 0, run, resume=True, progress=False)
    chosen = json.loads((run / "config.json").read_text())["posterior"]["name"]
    another = next(n for n in ("running-mean-softmax", "prefix-nearest-neighbour") if n != chosen)
    with pytest.raises(ValueError, match=rf"posterior: the run reads '{chosen}', not '{another}'"):
        train(
            "dqn", tiny_store, 150, 0, run, exclude_speakers=["P3"], resume=True, progress=False,
            posterior=another,
        )  # fmt: skip
    train("dqn", tiny_store, 150, 0, run, exclude_speakers=["P3"], resume=True, progress=False)


def test_time_feature_follows_the_selection_scores() -> None:
    # ACSF1's out-of-fold scores: fixed fraction 0.620 against threshold 0.341
    acsf1 = {"threshold": {"harmonic_mean": 0.341}, "fixed_fraction": {"harmonic_mean": 0.620}}
    assert time_says_more(acsf1)
    tie = {"threshold": {"harmonic_mean": 0.5}, "fixed_fraction": {"harmonic_mean": 0.5}}
    assert not time_says_more(tie)  # time must say more, not as much
    assert not time_says_more({}) and not time_says_more(
        {"fixed_fraction": acsf1["fixed_fraction"]}
    )


@pytest.mark.parametrize("posterior", ["auto", "running-mean-softmax", "time says more"])
def test_auto_time_feature_is_resolved_and_recorded(
    tiny_store, tmp_path, posterior, monkeypatch
) -> None:
    if posterior == "time says more":  # the tiny store's scores favour the threshold
        monkeypatch.setattr(runner, "time_says_more", lambda scores: bool(scores))
        posterior = "auto"
    run = train(
        "dqn", tiny_store, 200, 0, tmp_path / "run", exclude_speakers=["P3"], progress=False,
        posterior=posterior, **TINY_DQN, log_every=100, checkpoint_every=200,
    )  # fmt: skip
    used = json.loads((run / "config.json").read_text())["agent_config"]["stop_time_feature"]
    rules = json.loads((run / "rules.json").read_text())
    scores = rules["selection"].get(rules["posterior"], {})
    assert used is runner.time_says_more(scores) and (posterior == "auto" or used is False)
    assert load_agent(run).network.time_feature is used
