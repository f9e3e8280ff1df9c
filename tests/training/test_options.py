"""What a training run is asked for: options the agent would not read, and options the
training store cannot honour, are refused in one line before the run directory is touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from avemotion.agents.dqn.config import DQNConfig, unread_fields
from avemotion.training.options import (
    RECURRENT_DEFAULTS,
    agent_configuration,
    check_data,
    check_request,
)
from avemotion.training.train import train

STOP_TUNING = {"stop_time_feature", "tune_wait_bias", "earliness_budget"}


def test_unread_fields_of_each_network() -> None:
    """By hand from :func:`~avemotion.agents.dqn.dqn.make_q_network` and the stop tuning: the
    recurrent network has no stopping head, the free head no stop tuning, the stopping
    head no dueling head, a raw front end no posteriors to cross-fit or jitter."""
    assert set(unread_fields(DQNConfig(**RECURRENT_DEFAULTS))) == STOP_TUNING
    asked_stopping = DQNConfig(**{**RECURRENT_DEFAULTS, "q_head": "stopping"})
    assert set(unread_fields(asked_stopping)) == {"q_head", *STOP_TUNING}
    assert set(unread_fields(DQNConfig())) == {"dueling"}
    assert set(unread_fields(DQNConfig(tune_wait_bias=False))) == {"dueling", "earliness_budget"}
    free = DQNConfig(q_head="free")
    assert set(unread_fields(free)) == STOP_TUNING
    raw = DQNConfig(q_head="free", frontend="raw")
    assert set(unread_fields(raw)) == {*STOP_TUNING, "frontend_crossfit", "posterior_jitter"}


@pytest.mark.parametrize(
    ("agent", "options", "message"),
    [
        (
            "dqn-recurrent",
            {"q_head": "stopping"},
            "q_head: not read by this dqn-recurrent (the recurrent network learns every "
            "Q-value, with no stopping head)",
        ),
        (
            "dqn-recurrent",
            {"tune_wait_bias": False},
            "tune_wait_bias: not read by this dqn-recurrent (the recurrent network",
        ),
        ("dqn", {"dueling": False}, "dueling: not read by this dqn (the 'stopping' q_head"),
        (
            "dqn",
            {"q_head": "free", "earliness_budget": 0.4},
            "earliness_budget: not read by this dqn (only the 'stopping' q_head reads it)",
        ),
        (
            "dqn",
            {"tune_wait_bias": False, "earliness_budget": 0.4},
            "earliness_budget: not read by this dqn (only the wait-bias tuning reads it)",
        ),
        (
            "dqn",
            {"frontend": "raw", "q_head": "free", "posterior_jitter": 0.5},
            "posterior_jitter: not read by this dqn (the 'raw' front end",
        ),
    ],
)
def test_an_option_the_agent_would_not_read_is_refused(
    agent: str, options: dict, message: str
) -> None:
    with pytest.raises(ValueError) as error:
        agent_configuration(agent, options, resume=False)
    assert str(error.value).startswith(message)


def test_options_that_are_read_are_accepted() -> None:
    config, recorded = agent_configuration("dqn", {"q_head": "free", "dueling": False}, False)
    assert (config.q_head, config.dueling) == ("free", False)
    config, _ = agent_configuration("dqn-recurrent", {"dueling": False, "q_head": "free"}, False)
    assert (config.recurrent, config.dueling, config.q_head) == ("gru", False, "free")
    assert recorded["q_head"] == "free"


def test_a_resumed_runs_saved_options_are_not_asked_for() -> None:
    """``dqn-recurrent`` runs record ``q_head: "stopping"``: resuming one passes its saved
    options back, which must not be refused; the same option asked for now is."""
    saved = {"q_head": "stopping", "stop_time_feature": False, "recurrent": "gru"}
    config, _ = agent_configuration("dqn-recurrent", saved, resume=True, asked=set())
    assert config.recurrent == "gru"
    with pytest.raises(ValueError, match=r"^q_head: not read by this dqn-recurrent"):
        agent_configuration("dqn-recurrent", saved, resume=True, asked={"q_head"})


def test_check_request_refuses_an_unknown_agent_and_a_zero_budget() -> None:
    with pytest.raises(ValueError, match=r"^agent: expected one of \['dqn', 'dqn-recurrent'"):
        check_request("dqm", 10, 0, "auto")
    with pytest.raises(ValueError, match=r"^steps: expected a positive integer, got 0$"):
        check_request("dqn", 0, 0, "auto")
    check_request("sb3-dqn", 1, 0, "store-logits")


def test_more_folds_than_training_speakers_are_refused(tiny_store) -> None:
    """The tiny store has 3 speakers, each with every class: 3 folds are honoured, 4 would
    silently become 3 speaker folds. One speaker: 4 clip folds honour 4."""
    check_data(tiny_store, "auto", {"frontend_folds": 3}, {"frontend_folds"})
    check_data(tiny_store, "auto", {"frontend_folds": 4}, set())  # a resumed run's, not asked
    with pytest.raises(ValueError) as error:
        check_data(tiny_store, "auto", {"frontend_folds": 4}, {"frontend_folds"})
    assert str(error.value) == (
        "frontend_folds: 4 folds of 3 training speakers would be 3 speaker folds (one per "
        "speaker: 3 speakers, fewer than 4 folds); expected at most 3 (0: one fold per speaker)"
    )
    one = tiny_store.subset(speakers=["P1"])
    check_data(one, "auto", {"frontend_folds": 4}, {"frontend_folds"})


def test_store_data_and_unread_options_are_refused_before_the_run_dir_is_cleared(
    tiny_store, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.pt").write_text("the earlier run")
    asks = [
        ({"posterior": "store-logits"}, r"meta\.parts\.posteriors: missing"),
        ({"frontend_folds": 5}, r"^frontend_folds: 5 folds of 3 training speakers"),
        ({"dueling": False}, r"^dueling: not read by this dqn"),
    ]
    for options, message in asks:
        with pytest.raises(ValueError, match=message):
            train("dqn", tiny_store, 100, 0, run, overwrite=True, progress=False, **options)
    assert [p.name for p in run.iterdir()] == ["model.pt"]
