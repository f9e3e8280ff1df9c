"""The DQN config dataclass (:mod:`avemotion.agents.dqn.config`): its defaults, the
``config.json`` round trip through :meth:`DQNConfig.from_dict`, one-line refusals of
unknown, retired and out-of-range fields, and :func:`without_retired`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, fields
from typing import Any

import pytest

from avemotion.agents.dqn.config import DQNConfig, without_retired

RETIRED = {"extra", "frontend_split", "frontend_refit", "relative_wait_cost"}
"""The retired fields, written out by hand (not read from the module)."""

COUNT_MINIMA = {
    "num_envs": 1,
    "buffer_size": 1,
    "batch_size": 1,
    "n_step": 1,
    "target_update_interval": 1,
    "learning_starts": 0,
    "gradient_steps": 0,
    "frontend_folds": 0,
    "checkpoint_every": 1,
    "log_every": 1,
    "torch_threads": 1,
}
"""The integer fields and their smallest allowed value, by hand from the field docs:
``learning_starts`` 0 (learn from the first step), ``gradient_steps`` 0 (collect only),
``frontend_folds`` 0 (one fold per training speaker); every other count at least 1."""


def test_defaults_are_the_documented_ones() -> None:
    config = DQNConfig()
    assert (config.obs_mode, config.reward, config.frontend, config.q_head) == (
        "frame+mean",
        "earliness",
        "posterior",
        "stopping",
    )
    assert config.earliness_weight is None and config.wait_cost is None  # the env's defaults
    assert config.earliness_budget is None and config.recurrent is None
    assert (config.num_envs, config.batch_size, config.n_step) == (32, 256, 8)
    assert (config.buffer_size, config.learning_starts, config.target_update_interval) == (
        50_000,
        5_000,
        100,
    )
    assert config.hidden == (64, 64) and isinstance(config.hidden, tuple)
    assert (config.gamma, config.tau, config.learning_rate) == (1.0, 1.0, 5e-4)
    assert (config.start_epsilon, config.end_epsilon, config.exploration_fraction) == (
        1.0,
        0.02,
        0.4,
    )
    assert config.stop_time_feature == "auto" and config.frontend_folds == 4
    assert (config.checkpoint_every, config.log_every, config.torch_threads) == (
        100_000,
        5_000,
        1,
    )


def test_default_jitter_spans_a_quarter_to_four_times_as_sharp() -> None:
    """The field doc: ``u ~ U(−1.4, 1.4)`` scales logits by exp(u), "from a quarter to four
    times as sharp": exp(1.4) = 4.055 (≈ 4) and exp(−1.4) = 0.2466 (≈ 1/4)."""
    r = DQNConfig().posterior_jitter
    assert r == 1.4
    assert math.exp(r) == pytest.approx(4.0552, abs=1e-4)
    assert math.exp(-r) == pytest.approx(0.2466, abs=1e-4)


def test_config_json_round_trip_gives_the_same_config() -> None:
    """asdict → JSON (tuples become lists) → from_dict(saved=True): ``hidden`` comes back a
    tuple of ints, so the config compares equal to the one saved."""
    config = DQNConfig(
        hidden=(16, 8),
        recurrent="gru",
        stop_time_feature=False,
        earliness_budget=0.5,
        reward="signed",
        wait_cost=0.02,
        learning_starts=0,
    )
    text = json.dumps(asdict(config))
    assert json.loads(text)["hidden"] == [16, 8]
    loaded = DQNConfig.from_dict(json.loads(text), saved=True)
    assert loaded == config
    assert loaded.hidden == (16, 8) and isinstance(loaded.hidden, tuple)


def test_from_dict_converts_hidden_sizes_to_a_tuple_of_ints() -> None:
    """["16", 8.0] (as a hand-edited JSON may hold) → (16, 8)."""
    assert DQNConfig.from_dict({"hidden": ["16", 8.0]}).hidden == (16, 8)
    assert DQNConfig.from_dict({}) == DQNConfig()


def test_reward_env_of_old_runs_reads_as_signed() -> None:
    """Runs saved before the env offered presets recorded ``reward: "env"`` (±1 and a wait
    cost): the "signed" preset now."""
    assert DQNConfig.from_dict({"reward": "env"}, saved=True).reward == "signed"
    assert DQNConfig.from_dict({"reward": "earliness"}).reward == "earliness"


def test_from_dict_leaves_the_given_dict_unchanged() -> None:
    values: dict[str, Any] = {"reward": "env", "hidden": [4], "extra": 1}
    DQNConfig.from_dict(values, saved=True)
    assert values == {"reward": "env", "hidden": [4], "extra": 1}


def test_unknown_field_refused_in_one_line_naming_the_first_in_order() -> None:
    """Two unknown fields: the message names the first in sorted order ('alpha' < 'zeta')
    and lists the known ones."""
    with pytest.raises(ValueError) as caught:
        DQNConfig.from_dict({"zeta": 1, "alpha": 2, "gamma": 0.5})
    message = str(caught.value)
    assert message.startswith("dqn config: unknown field 'alpha'; known: [")
    assert "\n" not in message and "(retired" not in message and "'zeta'" not in message
    assert "'learning_rate'" in message  # a known field is listed


def test_unknown_field_refused_even_from_a_saved_run() -> None:
    with pytest.raises(ValueError, match=r"^dqn config: unknown field 'learnign_rate'; known"):
        DQNConfig.from_dict({"learnign_rate": 1e-3, "extra": {}}, saved=True)


@pytest.mark.parametrize("name", sorted(RETIRED))
def test_retired_field_refused_as_an_option_and_dropped_from_a_saved_run(name: str) -> None:
    with pytest.raises(ValueError) as caught:
        DQNConfig.from_dict({name: 0.1})
    message = str(caught.value)
    assert message.startswith(
        f"dqn config: unknown field {name!r} (retired: it no longer has an effect); known: ["
    )
    assert "\n" not in message
    assert DQNConfig.from_dict({name: 0.1, "gamma": 0.5}, saved=True) == DQNConfig(gamma=0.5)


def test_retired_fields_are_not_config_fields() -> None:
    assert not RETIRED & {f.name for f in fields(DQNConfig)}


def test_without_retired_drops_exactly_the_retired_fields() -> None:
    values = {"gamma": 0.5, "extra": 1, "frontend_split": "x", "frontend_refit": True}
    values |= {"relative_wait_cost": 0.1, "unknown_here": 3}
    kept = without_retired(values)
    assert kept == {"gamma": 0.5, "unknown_here": 3}  # unknown fields are from_dict's business
    assert len(values) == 6  # the argument is not modified
    assert without_retired({}) == {}


@pytest.mark.parametrize(("name", "least"), sorted(COUNT_MINIMA.items()))
def test_count_fields_take_their_minimum_and_refuse_below_it(name: str, least: int) -> None:
    assert getattr(DQNConfig(**{name: least}), name) == least
    with pytest.raises(ValueError) as caught:
        DQNConfig(**{name: least - 1})
    assert str(caught.value) == (
        f"dqn config: {name}: expected an integer >= {least}, got {least - 1}"
    )


@pytest.mark.parametrize("bad", [True, 2.0, "8", None])
def test_count_fields_refuse_non_integers(bad: object) -> None:
    """``True`` is an int to Python (== 1) but not a count; 2.0 and "8" are not ints."""
    message = f"dqn config: n_step: expected an integer >= 1, got {bad!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        DQNConfig(n_step=bad)  # type: ignore[arg-type]


def test_every_count_field_is_validated() -> None:
    """Every int field is in the table above (a new count must come with its minimum)."""
    ints = {f.name for f in fields(DQNConfig) if f.type == "int"}
    assert ints == set(COUNT_MINIMA)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "stop_time_feature",
            "yes",
            "stop_time_feature: expected true, false or 'auto', got 'yes'",
        ),
        ("stop_time_feature", 1.5, "stop_time_feature: expected true, false or 'auto', got 1.5"),
        ("reward", "env", "reward: expected 'earliness' or 'signed', got 'env'"),
        ("earliness_budget", 0.0, "earliness_budget: expected a number in (0, 1], got 0.0"),
        ("earliness_budget", 1.01, "earliness_budget: expected a number in (0, 1], got 1.01"),
        ("earliness_weight", -0.1, "earliness_weight: expected a number in [0, 1], got -0.1"),
        ("earliness_weight", 1.5, "earliness_weight: expected a number in [0, 1], got 1.5"),
    ],
)
def test_out_of_range_fields_refused_in_one_line(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        DQNConfig(**{field: value})
    assert str(caught.value) == f"dqn config: {message}"


def test_range_ends_are_accepted() -> None:
    """earliness_budget in (0, 1] takes 1; earliness_weight in [0, 1] takes 0 and 1;
    stop_time_feature takes both booleans."""
    assert DQNConfig(earliness_budget=1.0).earliness_budget == 1.0
    assert DQNConfig(earliness_weight=0.0).earliness_weight == 0.0
    assert DQNConfig(earliness_weight=1.0).earliness_weight == 1.0
    assert DQNConfig(stop_time_feature=True).stop_time_feature is True
    assert DQNConfig(stop_time_feature=False, reward="signed").reward == "signed"


def test_from_dict_refuses_an_invalid_value_with_the_same_message() -> None:
    with pytest.raises(
        ValueError, match=r"^dqn config: batch_size: expected an integer >= 1, got 0$"
    ):
        DQNConfig.from_dict({"batch_size": 0})


@pytest.mark.parametrize(
    "field, value, message",
    [
        (
            "hidden",
            "64",
            r"hidden: expected a list of layer sizes >= 1, e\.g\. \[64, 64\], got '64'",
        ),
        ("hidden", 64, r"hidden: expected a list of layer sizes >= 1"),
        ("hidden", [64, 0], r"hidden: expected a list of layer sizes >= 1"),
        ("gamma", 1.5, r"gamma: expected a number in \[0, 1\], got 1\.5"),
        ("tau", 0.0, r"tau: expected a number in \(0, 1\], got 0\.0"),
        ("learning_rate", 0, r"learning_rate: expected a number in \(0, inf\), got 0"),
        ("start_epsilon", -0.1, r"start_epsilon: expected a number in \[0, 1\]"),
        ("exploration_fraction", "0.5", r"exploration_fraction: expected a number"),
        ("max_grad_norm", 0.0, r"max_grad_norm: expected a number in \(0, inf\)"),
        ("frontend_l2", -1.0, r"frontend_l2: expected a number in \[0, inf\)"),
        ("wait_cost", -0.01, r"wait_cost: expected a number >= 0, got -0\.01"),
        ("obs_mode", "frames", r"obs_mode: expected one of \['frame', 'mean', 'frame\+mean'\]"),
        ("recurrent", "rnn", r"recurrent: expected one of \[None, 'gru', 'lstm'\]"),
        ("frontend", "linear", r"frontend: expected one of \['raw', 'posterior'\]"),
        ("q_head", "dueling", r"q_head: expected one of \['stopping', 'free'\]"),
        ("dueling", 1, r"dueling: expected true or false, got 1"),
        ("stop_time_feature", 1, r"stop_time_feature: expected true, false or 'auto', got 1"),
    ],
)
def test_bad_values_are_refused_in_one_line_naming_the_field(
    field: str, value: object, message: str
) -> None:
    with pytest.raises(ValueError, match=rf"^dqn config: {message}"):
        DQNConfig.from_dict({field: value})


def test_number_range_ends_and_float_layer_sizes_are_accepted() -> None:
    """The closed ends of each range, and the layer sizes JSON may spell as floats."""
    config = DQNConfig.from_dict(
        {"gamma": 0.0, "tau": 1.0, "start_epsilon": 1.0, "end_epsilon": 0.0,
         "exploration_fraction": 1.0, "posterior_jitter": 0.0, "wait_cost": 0.0,
         "hidden": [16.0, "8"], "recurrent": "gru", "q_head": "free", "frontend": "raw"}
    )  # fmt: skip
    assert config.hidden == (16, 8) and config.gamma == 0.0 and config.tau == 1.0


def test_config_rejects_bad_reward() -> None:
    with pytest.raises(ValueError, match="reward"):
        DQNConfig(reward="hm")
    with pytest.raises(ValueError, match="earliness_weight"):
        DQNConfig(earliness_weight=2.0)


def test_config_rejects_a_bad_time_feature() -> None:
    with pytest.raises(ValueError, match="stop_time_feature"):
        DQNConfig(stop_time_feature="yes")
