"""avemotion.trials: folds, trial plans and the aggregated table of a sweep (no Ray needed).

The sweep itself (:mod:`avemotion.sweep`, on Ray) is tested in ``tests/sweep/``."""

from __future__ import annotations

import pytest

from avemotion.trials import Fold, TrialSpec, aggregate, parse_folds, plan_trials

SPEAKERS = ["S01", "S02", "S03", "S04"]


def test_loso_makes_one_fold_per_speaker() -> None:
    assert parse_folds("loso", SPEAKERS) == [Fold(s, (s,)) for s in SPEAKERS]


def test_speaker_groups_make_one_fold_each() -> None:
    folds = parse_folds("speakers:S01,S02;S04", SPEAKERS)
    assert folds == [Fold("S01+S02", ("S01", "S02")), Fold("S04", ("S04",))]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("kfold", "expected 'loso'"),
        ("speakers:S01;S99", "unknown speaker"),
        ("speakers:S01;S01,S02", "appear in two folds"),
        ("speakers:S01;;S02", "empty speaker group"),
        ("speakers:S01,S02,S03,S04", "none to train on"),
    ],
)
def test_bad_fold_specs_are_refused_with_the_field_named(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"folds: .*{message}"):
        parse_folds(spec, SPEAKERS)


def test_plan_covers_every_fold_agent_and_seed_once() -> None:
    trials = plan_trials(parse_folds("loso", SPEAKERS[:2]), ["dqn", "sb3-ppo"], [0, 1])
    assert len(trials) == 8
    assert len({t.trial_id for t in trials}) == 8
    assert trials[0] == TrialSpec("S01", ("S01",), "dqn", 0)


def test_aggregate_gives_mean_and_std_over_seeds_and_folds() -> None:
    entries = [
        {"agent": "a", "fold": "S01", "seed": 0, "accuracy": 0.5, "earliness": 0.2},
        {"agent": "b", "fold": "S01", "seed": 0, "accuracy": 0.9, "earliness": 0.4},
        {"agent": "a", "fold": "S02", "seed": 0, "accuracy": 0.7, "earliness": 0.4},
        {"agent": "a", "fold": "S02", "seed": 1, "accuracy": 0.9, "earliness": 0.6},
    ]
    a, b = aggregate(entries, metrics=("accuracy", "earliness"))
    assert (a["agent"], a["n_trials"], a["n_folds"], a["n_seeds"]) == ("a", 3, 2, 2)
    assert a["accuracy_mean"] == pytest.approx(0.7)
    assert a["accuracy_std"] == pytest.approx((0.08 / 3) ** 0.5)
    assert a["earliness_mean"] == pytest.approx(0.4)
    assert (b["n_trials"], b["accuracy_mean"], b["accuracy_std"]) == (1, 0.9, 0.0)
