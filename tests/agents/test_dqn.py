"""Our DQN: masking, replay n-step returns, save/load, resume, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from avemotion.agents import runner
from avemotion.agents.dqn import DQNConfig, explore
from avemotion.agents.evaluate import evaluate_run
from avemotion.agents.networks import masked_argmax
from avemotion.agents.replay import TransitionReplay
from avemotion.agents.rewards import MatchedEarlinessWeight, earliness_reward, matched_weight
from avemotion.agents.runner import load_agent, time_says_more, train
from avemotion.agents.training_log import read_log

TINY = {
    "num_envs": 8,
    "learning_starts": 50,
    "batch_size": 32,
    "hidden": [16, 16],
    "log_every": 100,
    "checkpoint_every": 200,
}


def test_masked_argmax_never_picks_a_masked_action() -> None:
    q = torch.tensor([[5.0, 1.0, 0.0], [-1.0, -3.0, -2.0], [0.0, 0.0, 9.0]])
    mask = torch.tensor([[False, True, True], [False, True, True], [True, True, False]])
    assert masked_argmax(q, mask).tolist() == [1, 2, 0]


def test_exploration_samples_only_valid_actions() -> None:
    rng = np.random.default_rng(0)
    mask = np.ones((1000, 4), dtype=bool)
    mask[::2, 0] = False
    actions = explore(mask, 0.5, rng)
    assert (actions[::2] != 0).all()
    assert set(np.unique(actions[1::2])) == {0, 1, 2, 3}
    assert mask[np.arange(1000), actions].all()


def test_replay_n_step_returns_stop_at_episode_end() -> None:
    replay = TransitionReplay(capacity=20, num_envs=1, obs_dim=1, n_actions=2)
    # one env: an episode of three steps (rewards -0.1, -0.1, +1 terminal), then another step.
    for t, (reward, terminal) in enumerate(
        [(-0.1, False), (-0.1, False), (1.0, True), (-0.1, False)]
    ):
        one = np.array([True])
        replay.add(
            np.array([[t]], np.float32),
            np.array([0]),
            np.array([reward], np.float32),
            np.array([[t + 1]], np.float32),
            np.ones((1, 2), bool),
            np.array([terminal]),
            np.array([False]),
            one,
            np.array([1]),
            np.array([0.5], np.float32),
            np.array([False]),
        )
    rng = np.random.default_rng(0)
    batch = replay.sample(200, n_step=3, gamma=0.5, rng=rng)
    for obs, ret, boot, discount in zip(
        batch.obs[:, 0], batch.returns, batch.bootstrap_obs[:, 0], batch.discount
    ):
        t = int(obs)
        if t == 0:  # -0.1 + 0.5*-0.1 + 0.25*1, terminal: no bootstrap
            assert float(ret) == pytest.approx(-0.1 - 0.05 + 0.25) and float(discount) == 0.0
        elif t == 2:
            assert float(ret) == pytest.approx(1.0) and float(discount) == 0.0
        elif t == 3:  # newest transition: a one-step return bootstrapped from its next obs
            assert (
                float(ret) == pytest.approx(-0.1)
                and float(discount) == pytest.approx(0.5)
                and float(boot) == 4.0
            )


def test_replay_n_step_stops_before_an_exploratory_classification() -> None:
    replay = TransitionReplay(capacity=20, num_envs=1, obs_dim=1, n_actions=3)
    # wait, wait, then classify (action 2, reward -1, terminal)
    for t, (action, reward, terminal) in enumerate(
        [(0, -0.1, False), (0, -0.1, False), (2, -1.0, True)]
    ):
        replay.add(
            np.array([[t]], np.float32),
            np.array([action]),
            np.array([reward], np.float32),
            np.array([[t + 1]], np.float32),
            np.ones((1, 3), bool),
            np.array([terminal]),
            np.array([False]),
            np.array([True]),
            np.array([0]),
            np.array([0.5], np.float32),
            np.array([False]),
        )
    batch = replay.sample(100, n_step=5, gamma=1.0, rng=np.random.default_rng(0))
    for obs, ret, boot, discount in zip(
        batch.obs[:, 0], batch.returns, batch.bootstrap_obs[:, 0], batch.discount
    ):
        if int(obs) == 0:  # two waits, then bootstrap from the state where the class was chosen
            assert (
                float(ret) == pytest.approx(-0.2) and float(boot) == 2.0 and float(discount) == 1.0
            )
        elif int(obs) == 2:
            assert float(ret) == -1.0 and float(discount) == 0.0


def test_replay_skips_invalid_transitions() -> None:
    replay = TransitionReplay(capacity=10, num_envs=2, obs_dim=1, n_actions=2)
    obs = np.zeros((2, 1), np.float32)
    replay.add(
        obs,
        np.array([0, 1]),
        np.zeros(2, np.float32),
        obs,
        np.ones((2, 2), bool),
        np.zeros(2, bool),
        np.zeros(2, bool),
        np.array([True, False]),
        np.zeros(2, np.int64),
        np.ones(2, np.float32),
        np.zeros(2, bool),
    )
    assert len(replay) == 1 and replay.count.tolist() == [1, 0]


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
    recomputed = earliness_reward(fraction[stored].numpy(), hit[stored].numpy(), 0.7)
    np.testing.assert_allclose(recomputed, replay["reward"][stored].numpy(), atol=1e-6)


def test_sampled_earliness_rewards_use_the_current_weight() -> None:
    replay = TransitionReplay(capacity=10, num_envs=1, obs_dim=1, n_actions=2)
    # wait at 1/4 of the clip, then a correct answer at 2/4
    for t, (action, fraction, hit) in enumerate([(0, 0.25, False), (1, 0.5, True)]):
        replay.add(
            np.array([[t]], np.float32),
            np.array([action]),
            np.zeros(1, np.float32),
            np.array([[t + 1]], np.float32),
            np.ones((1, 2), bool),
            np.array([action != 0]),
            np.array([False]),
            np.array([True]),
            np.array([0]),
            np.array([fraction], np.float32),
            np.array([hit]),
        )
    for weight in (1.0, 0.4):
        batch = replay.sample(50, 3, 1.0, np.random.default_rng(0), earliness_weight=weight)
        for obs, ret, correct in zip(batch.obs[:, 0], batch.returns, batch.correct_reward):
            if int(obs) == 1:  # the answer itself: 1 - w * 0.5
                assert float(ret) == pytest.approx(1 - weight * 0.5)
            assert float(correct) == pytest.approx(1 - weight * (0.25 if int(obs) == 0 else 0.5))
    assert replay.sample(4, 3, 1.0, np.random.default_rng(0)).correct_reward is None


def test_matched_weight_follows_the_harmonic_mean() -> None:
    # w = A / ((1 - E)^2 + A E): late, accurate policies get a larger weight on earliness
    assert matched_weight(0.4, 0.5, (0.0, 5.0)) == pytest.approx(0.4 / (0.25 + 0.2))
    assert matched_weight(0.9, 0.9, (0.1, 1.0)) == 1.0
    tracker = MatchedEarlinessWeight(None, start=1.0, every=4, rate=1.0)
    tracker.episodes(np.array([True, False]), np.array([0.5, 0.5]))
    assert tracker.value == 1.0  # not enough episodes yet
    tracker.episodes(np.array([False, False]), np.array([0.5, 0.5]))
    assert tracker.value == pytest.approx(matched_weight(0.25, 0.5, (0.1, 1.0)))
    fixed = MatchedEarlinessWeight(0.7)
    fixed.episodes(np.array([True] * 1000), np.full(1000, 0.1))
    assert fixed.value == 0.7


def test_config_rejects_bad_reward() -> None:
    with pytest.raises(ValueError, match="reward"):
        DQNConfig(reward="hm")
    with pytest.raises(ValueError, match="earliness_weight"):
        DQNConfig(earliness_weight=2.0)


def test_config_rejects_a_bad_time_feature() -> None:
    with pytest.raises(ValueError, match="stop_time_feature"):
        DQNConfig(stop_time_feature="yes")


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
        posterior=posterior, **TINY,
    )  # fmt: skip
    used = json.loads((run / "config.json").read_text())["agent_config"]["stop_time_feature"]
    rules = json.loads((run / "rules.json").read_text())
    scores = rules["selection"].get(rules["posterior"], {})
    assert used is runner.time_says_more(scores) and (posterior == "auto" or used is False)
    assert load_agent(run).network.time_feature is used


def test_config_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match="unknown field 'learning_rat'"):
        DQNConfig.from_dict({"learning_rat": 1e-3})


def test_retired_fields_are_read_from_saved_runs_only() -> None:
    """An older run's config.json may hold fields that no longer do anything: loading it
    drops them; given as a new option, one is refused instead of silently ignored."""
    with pytest.raises(ValueError, match="'relative_wait_cost' \\(retired"):
        DQNConfig.from_dict({"relative_wait_cost": 0.1})
    saved = DQNConfig.from_dict({"relative_wait_cost": 0.1, "gamma": 0.5}, saved=True)
    assert saved == DQNConfig(gamma=0.5)


def test_existing_run_dir_is_not_overwritten(tiny_store, tmp_path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "x").write_text("keep")
    with pytest.raises(FileExistsError):
        train("dqn", tiny_store, 100, 0, tmp_path / "run", progress=False, **TINY)


def test_device_bridge_trains_the_same_agent(tiny_store, tmp_path, monkeypatch) -> None:
    """The GPU path (networks behind avemotion.device.bridge), forced on the CPU: the same
    seed gives the same saved agent as the plain CPU path."""
    import avemotion.agents.dqn as dqn_module
    from avemotion.device import bridge

    plain = train("dqn", tiny_store, 200, 0, tmp_path / "plain", progress=False, **TINY)
    monkeypatch.setattr(dqn_module, "bridge", lambda net, device: bridge(net, device, always=True))
    bridged = train("dqn", tiny_store, 200, 0, tmp_path / "bridged", progress=False, **TINY)
    a = torch.load(plain / "model.pt", weights_only=True)
    b = torch.load(bridged / "model.pt", weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key])


def test_epsilon_schedule_by_hand() -> None:
    """ε from 1.0 to 0.1 over exploration_fraction 0.5 of 1000 steps (500 steps): step 0
    → 1.0, 250 → 1.0 + 0.5·(0.1 − 1.0) = 0.55, 500 and later → 0.1."""
    from avemotion.agents.dqn import epsilon_at

    config = DQNConfig(start_epsilon=1.0, end_epsilon=0.1, exploration_fraction=0.5)
    assert [epsilon_at(config, s, 1000) for s in (0, 250, 500, 900)] == pytest.approx(
        [1.0, 0.55, 0.1, 0.1]
    )


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
    from avemotion.agents import dqn

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
