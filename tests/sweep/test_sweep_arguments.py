"""The sweep refuses bad input in one line naming the field, before it writes anything or
starts Ray: an option no trial could run with would otherwise fail every trial on Ray and
leave behind a sweep directory that a corrected rerun could not resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from optional_extras import require_extra

require_extra("ray.tune", "ray")

import avemotion.sweep as sweep_module  # noqa: E402
from avemotion.sweep import run_sweep  # noqa: E402


class RayWouldStart(Exception):
    """Raised in place of starting Ray: these tests never start it."""


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any) -> None:
        raise RayWouldStart

    monkeypatch.setattr(sweep_module, "_connect_ray", refuse)


def sweep(store, out: Path, **kwargs: Any) -> None:
    options = {"agents": ["dqn"], "seeds": [0], "folds": "loso", "steps": 10, **kwargs}
    run_sweep(store.path, out=out, verbose=0, **options)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        # 1. options an agent does not take, found per agent as train would find them
        ({"agent_kwargs": {"bogus": 1}}, "agent_kwargs: dqn config: unknown field 'bogus'"),
        (
            {"agents": ["dqn", "dqn-recurrent"], "agent_kwargs": {"hidden": [0]}},
            "agent_kwargs: dqn config: hidden: expected a list of layer sizes >= 1",
        ),
        (
            {"agents": ["dqn", "sb3-ppo"], "agent_kwargs": {"frontend": "raw", "q_head": "free"}},
            "agent_kwargs: sb3-ppo: unknown option 'frontend'",
        ),
        ({"agent_kwargs": {"seed": 3}}, "agent_kwargs: 'seed' is set by the sweep"),
        ({"agent_kwargs": {"resume": True}}, "agent_kwargs: 'resume' is set by the sweep"),
        ({"agent_kwargs": {"posterior": "nope"}}, "agent_kwargs: posterior: expected 'auto'"),
        ({"agent_kwargs": {"device": "tpu"}}, "agent_kwargs: device: expected one of"),
        # 2. CPU counts no trial can run with
        ({"cpus_per_trial": 0}, "cpus_per_trial: expected an integer >= 1, got 0"),
        ({"cpus_per_trial": 1.5}, "cpus_per_trial: expected an integer >= 1, got 1.5"),
        ({"num_cpus": 0}, "num_cpus: expected an integer >= 1, got 0"),
        ({"cpus_per_trial": 2, "num_cpus": 1}, "cpus_per_trial: 2 is more than"),
        # 3. repeats, which would plan two trials racing on one run directory
        ({"seeds": [0, 1, 0]}, "seeds: each may appear once, got 0 again"),
        ({"seeds": [0, -1]}, "seeds: expected integers >= 0, got -1"),
        ({"agents": ["dqn", "dqn"]}, "agents: each may appear once, got 'dqn' again"),
        # 4. num_cpus sizes a local Ray only; with an address it would be ignored
        ({"address": "auto", "num_cpus": 2}, "num_cpus: sizes a local Ray only"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(
    kwargs: dict[str, Any], message: str, tiny_store, tmp_path: Path, no_ray: None
) -> None:
    out = tmp_path / "out"
    with pytest.raises(ValueError) as refused:
        sweep(tiny_store, out, **kwargs)
    assert message in str(refused.value) and "\n" not in str(refused.value)
    assert not out.exists()  # no sweep.json: a corrected sweep may use the same directory


def test_a_resume_with_bad_options_is_refused_too(tiny_store, tmp_path: Path, no_ray) -> None:
    with pytest.raises(RayWouldStart):
        sweep(tiny_store, tmp_path)
    plan = (tmp_path / "sweep.json").read_text()
    with pytest.raises(ValueError, match="cpus_per_trial"):
        sweep(tiny_store, tmp_path, resume=True, cpus_per_trial=0)
    assert (tmp_path / "sweep.json").read_text() == plan


@pytest.mark.parametrize(
    "kwargs",
    [
        # train's own arguments, progress, and options every agent of the sweep takes
        {
            "agents": ["dqn", "dqn-recurrent"],
            "agent_kwargs": {
                "frontend": "raw",
                "q_head": "free",
                "posterior": "auto",
                "device": "cpu",
            },
        },
        {"agents": ["dqn", "sb3-ppo"], "agent_kwargs": {"learning_rate": 1e-3, "progress": True}},
        {"seeds": [0, 1], "cpus_per_trial": 2, "num_cpus": 2},
        {"address": "auto", "cpus_per_trial": 2},
    ],
)
def test_good_input_reaches_ray(
    kwargs: dict[str, Any], tiny_store, tmp_path: Path, no_ray: None
) -> None:
    with pytest.raises(RayWouldStart):
        sweep(tiny_store, tmp_path / "out", **kwargs)
    assert (tmp_path / "out" / "sweep.json").is_file()
