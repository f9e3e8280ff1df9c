"""Our DQN: masking, replay n-step returns, save/load, resume, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from avemotion.agents.dqn.dqn import DQNConfig, epsilon_at, explore, step_outcome
from avemotion.agents.dqn.earliness_weight import (
    MatchedEarlinessWeight,
)
from avemotion.agents.training_log import read_log
from avemotion.envs.core import RewardSpec
from avemotion.evaluation.evaluate import evaluate_run
from avemotion.training.run_dir import load_agent
from avemotion.training.train import train

TINY = {
    "num_envs": 8,
    "learning_starts": 50,
    "batch_size": 32,
    "hidden": [16, 16],
    "log_every": 100,
    "checkpoint_every": 200,
}


def test_exploration_samples_only_valid_actions() -> None:
    rng = np.random.default_rng(0)
    mask = np.ones((1000, 4), dtype=bool)
    mask[::2, 0] = False
    actions = explore(mask, 0.5, rng)
    assert (actions[::2] != 0).all()
    assert set(np.unique(actions[1::2])) == {0, 1, 2, 3}
    assert mask[np.arange(1000), actions].all()


@pytest.mark.parametrize("agent", ["dqn", "dqn-recurrent"])
def test_agent_never_acts_masked_and_round_trips(agent: str, tiny_store, tmp_path) -> None:
    run = train(
        agent, tiny_store, 400, 0, tmp_path / agent, exclude_speakers=["P3"], progress=False, **TINY
    )
    for name in ("config.json", "model.pt", "checkpoint.pt", "training_log.csv", "summary.json"):
        assert (run / name).is_file()
    assert any((run / "tensorboard").iterdir())
    loaded = load_agent(run)
    again = load_agent(run)
    rng = np.random.default_rng(1)
    for _ in range(30):
        obs = rng.normal(size=json.loads((run / "config.json").read_text())["obs_dim"]).astype(
            np.float32
        )
        mask = np.ones(4, dtype=bool)
        mask[0] = False  # the last step: waiting is forbidden
        action = loaded.act(obs, mask)
        assert action != 0 and action == again.act(obs, mask)
    # the same weights come back from disk
    state = torch.load(run / "model.pt", weights_only=True)
    for key, value in loaded.network.state_dict().items():
        assert torch.equal(value, state[key])


def test_same_seed_gives_identical_metrics(tiny_store, tmp_path) -> None:
    results = []
    for name in ("a", "b"):
        run = train(
            "dqn",
            tiny_store,
            300,
            7,
            tmp_path / name,
            exclude_speakers=["P3"],
            progress=False,
            **TINY,
        )
        results.append(
            json.dumps(
                evaluate_run(run, tiny_store, speakers=["P3"]) | {"run": None}, sort_keys=True
            )
        )
    assert results[0] == results[1]


def test_resume_continues_the_same_run(tiny_store, tmp_path) -> None:
    run = train("dqn", tiny_store, 200, 0, tmp_path / "run", progress=False, **TINY)
    first = torch.load(run / "checkpoint.pt", weights_only=True)
    assert first["global_step"] == 200
    train("dqn", tiny_store, 450, 0, run, resume=True, progress=False)
    second = torch.load(run / "checkpoint.pt", weights_only=True)
    assert second["global_step"] == 450 and second["updates"] > first["updates"]
    log = read_log(run)
    assert np.all(np.diff(log["env_steps"]) > 0) and log["env_steps"][-1] == 450
    assert log["env_steps"][0] <= first["global_step"]  # rows before the resume were kept
    config = json.loads((run / "config.json").read_text())
    assert config["steps"] == 450 and config["agent_config"]["hidden"] == [16, 16]


def _stored(replay: dict[str, torch.Tensor]) -> torch.Tensor:
    rows = torch.arange(replay["action"].shape[0])[:, None]
    return rows < replay["count"][None, :]


def test_earliness_reward_reaches_the_replay(tiny_store, tmp_path) -> None:
    """Default reward: the replay keeps each step's env reward, fraction observed and whether
    it was a correct answer, and the rewards it recomputes from those outcomes with the
    env's weight are the env's own rewards, transition by transition."""
    run = train(
        "dqn", tiny_store, 300, 0, tmp_path / "early", progress=False, earliness_weight=0.7, **TINY
    )
    config = json.loads((run / "config.json").read_text())
    assert config["reward"]["name"] == "earliness" and config["reward"]["earliness_weight"] == 0.7
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    replay = state["replay"]
    stored = _stored(replay)
    fraction, hit, action = replay["fraction"], replay["hit"], replay["action"]
    assert torch.all((fraction[stored] > 0) & (fraction[stored] <= 1))
    assert torch.all(~hit[stored & (action == 0)])
    answers = stored & (action != 0)
    assert torch.equal(hit[answers], action[answers] - 1 == replay["label"][answers])
    assert hit[answers].any() and (~hit[answers]).any()
    spec = RewardSpec.preset("earliness", earliness_weight=0.7)
    recomputed = spec.answer_rewards(fraction[stored].numpy(), hit[stored].numpy())
    np.testing.assert_allclose(recomputed, replay["reward"][stored].numpy(), atol=1e-6)


def test_existing_run_dir_is_not_overwritten(tiny_store, tmp_path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "x").write_text("keep")
    with pytest.raises(FileExistsError):
        train("dqn", tiny_store, 100, 0, tmp_path / "run", progress=False, **TINY)


def test_device_bridge_trains_the_same_agent(tiny_store, tmp_path, monkeypatch) -> None:
    """The GPU path (networks behind avemotion.device.bridge), forced on the CPU: the same
    seed gives the same saved agent as the plain CPU path."""
    import avemotion.agents.dqn.dqn as dqn_module
    from avemotion.device import bridge

    plain = train("dqn", tiny_store, 200, 0, tmp_path / "plain", progress=False, **TINY)
    monkeypatch.setattr(dqn_module, "bridge", lambda net, device: bridge(net, device, always=True))
    bridged = train("dqn", tiny_store, 200, 0, tmp_path / "bridged", progress=False, **TINY)
    a = torch.load(plain / "model.pt", weights_only=True)
    b = torch.load(bridged / "model.pt", weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key])


@pytest.mark.parametrize(
    "option",
    [
        {"target_update_interval": 7},
        {"start_epsilon": 0.3},
        {"end_epsilon": 0.5},
        {"gradient_steps": 2},
        {"max_grad_norm": 1e-3},
        {"posterior_jitter": 0.0},
        {"frontend_folds": 2},
    ],
    ids=lambda option: next(iter(option)),
)
def test_every_training_option_changes_the_trained_agent(
    option: dict, tiny_store, tmp_path
) -> None:
    """Each option, set away from its default, gives another network at the same seed:
    none is silently ignored."""

    def network(name: str, **extra: object) -> dict[str, torch.Tensor]:
        run = train("dqn", tiny_store, 300, 3, tmp_path / name, progress=False, **{**TINY, **extra})
        return torch.load(run / "model.pt", weights_only=True)

    default, changed = network("default"), network("changed", **option)
    assert default.keys() == changed.keys()
    assert any(not torch.equal(default[k], changed[k]) for k in default)


def test_matched_earliness_weight_moves_the_weight(tiny_store, tmp_path, monkeypatch) -> None:
    """``match_earliness_weight`` feeds the answered episodes to the matched weight, and
    the loss reads its value: updated here every 20 answered episodes (500 by default,
    more than a tiny run has), the weight leaves its start, 1, and is logged and saved."""
    from avemotion.agents.dqn import dqn

    class Often(MatchedEarlinessWeight):
        def __init__(self, fixed: float | None, start: float = 1.0) -> None:
            super().__init__(fixed, start, every=20, bounds=(0.1, 0.9))

    monkeypatch.setattr(dqn, "MatchedEarlinessWeight", Often)
    run = train(
        "dqn", tiny_store, 600, 0, tmp_path / "run", progress=False, match_earliness_weight=True,
        **TINY,
    )  # fmt: skip
    summary = json.loads((run / "summary.json").read_text())
    assert summary["earliness_weight"] < 1.0
    log = read_log(run)
    assert log["earliness_weight"][-1] == pytest.approx(summary["earliness_weight"])
    default = train("dqn", tiny_store, 600, 0, tmp_path / "default", progress=False, **TINY)
    assert json.loads((default / "summary.json").read_text())["earliness_weight"] == 1.0


@pytest.mark.parametrize("posterior", ["running-mean-softmax", "prefix-shape-softmax"])
def test_frontend_l2_reaches_a_named_softmax_posterior(
    posterior: str, tiny_store, tmp_path
) -> None:
    """``frontend_l2`` is the L2 of the posterior model's regression: a larger one gives
    smaller weights, for either softmax model named with ``--posterior``."""
    from avemotion.posterior import load_posterior_model

    def weight_norm(name: str, **extra: object) -> float:
        run = train(
            "dqn", tiny_store, 100, 0, tmp_path / name, progress=False, posterior=posterior,
            **{**TINY, **extra},
        )  # fmt: skip
        model = load_posterior_model(run / "posterior.npz")
        assert model.l2 == extra.get("frontend_l2", 1e-2)
        arrays = model.arrays()
        return float(sum((v**2).sum() for k, v in arrays.items() if "weight" in k))

    assert weight_norm("strong", frontend_l2=10.0) < weight_norm("default")


def test_epsilon_reaches_its_end_after_the_exploration_fraction() -> None:
    """1.0 → 0.2 over 0.25 of 400 steps (100 steps): step 50 → 1.0 + 0.5 · (0.2 − 1.0) = 0.6."""
    config = DQNConfig(start_epsilon=1.0, end_epsilon=0.2, exploration_fraction=0.25)
    assert [epsilon_at(config, s, 400) for s in (0, 50, 100, 399)] == pytest.approx(
        [1.0, 0.6, 0.2, 0.2]
    )


def test_explore_waits_only_where_allowed() -> None:
    rng = np.random.default_rng(0)
    no_wait = np.array([[False, True, True, True]] * 200)
    actions = explore(no_wait, wait_prob=1.0, rng=rng)
    assert actions.min() >= 1 and actions.max() <= 3 and set(actions) == {1, 2, 3}
    always = explore(np.ones((50, 4), dtype=bool), wait_prob=1.0, rng=rng)
    assert (always == 0).all()


def test_step_outcome_is_the_fraction_observed_and_a_correct_answer() -> None:
    """Four sub-envs (action 0 = wait, action k = class k − 1):

    - wait at frame 0 of a 4-step clip:          fraction (0 + 1) / 4 = 0.25, no hit;
    - class 0 at frame 1 of 4, label 0:           fraction 2 / 4 = 0.5, hit;
    - class 1 at frame 3 of 8, label 1:           fraction 4 / 8 = 0.5, hit;
    - class 2 at frame 4 of 5 (last step), label 1: fraction 5 / 5 = 1.0, wrong."""
    before = {
        "label": np.array([0, 0, 1, 1]),
        "frame_index": np.array([0, 1, 3, 4]),
        "clip_length": np.array([4, 4, 8, 5]),
    }
    fraction, hit = step_outcome(np.array([0, 1, 2, 3]), before)
    assert fraction.dtype == np.float32
    assert fraction.tolist() == [0.25, 0.5, 0.5, 1.0]
    assert hit.tolist() == [False, True, True, False]


def test_step_outcome_off_by_one_class_is_not_a_hit() -> None:
    """Action k answers class k − 1: action 1 on a clip of label 1 answers class 0."""
    before = {"label": np.array([1]), "frame_index": np.array([2]), "clip_length": np.array([3])}
    fraction, hit = step_outcome(np.array([1]), before)
    assert fraction.tolist() == [1.0] and hit.tolist() == [False]
