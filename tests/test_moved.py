"""Every import path the agents room moved from keeps working for one release: the old
module hands out the new object with a DeprecationWarning naming where it lives now."""

from __future__ import annotations

import importlib

import pytest

MOVED = {
    "avemotion.agents.runner": ("train", "avemotion.training.train"),
    "avemotion.agents.evaluate": ("evaluate_run", "avemotion.evaluation.evaluate"),
    "avemotion.agents.metrics": ("harmonic_mean", "avemotion.metrics"),
    "avemotion.agents.baselines": ("tune_rules", "avemotion.stopping.rules"),
    "avemotion.agents.selection": ("select_posterior_model", "avemotion.training.choose_posterior"),
    "avemotion.agents.dqn_config": ("DQNConfig", "avemotion.agents.dqn.config"),
    "avemotion.agents.replay": ("TransitionReplay", "avemotion.agents.dqn.replay"),
    "avemotion.agents.dqn_state": ("SharpnessJitter", "avemotion.agents.dqn.posterior_input"),
    "avemotion.agents.bench": ("bench_agents", "avemotion.benchmarks.agents"),
}


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_path_warns_and_gives_the_new_object(old: str) -> None:
    name, new = MOVED[old]
    with pytest.warns(DeprecationWarning, match=f"import {name} from {new}"):
        found = getattr(importlib.import_module(old), name)
    assert found is getattr(importlib.import_module(new), name)


def test_an_old_path_refuses_a_name_it_never_had() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        importlib.import_module("avemotion.agents.runner").nothing  # noqa: B018


def test_the_dqn_package_still_gives_the_loop_and_its_config() -> None:
    from avemotion.agents.dqn import DQNConfig, train_dqn
    from avemotion.agents.dqn.dqn import train_dqn as loop_train

    assert train_dqn is loop_train and DQNConfig.__module__ == "avemotion.agents.dqn.config"
