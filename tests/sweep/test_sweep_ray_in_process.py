"""A Ray already running in this process is reused only as the caller asked: a ``num_cpus``
other than its CPU count, or an ``address`` (which cannot be compared with it), is refused
in one line, before the sweep writes anything, instead of being silently ignored.

A stand-in ``ray`` module takes the real one's place, so no Ray starts here."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

import avemotion.sweep as sweep_module
from avemotion.sweep import run_sweep

NUM_CPUS_REFUSED = (
    "num_cpus=2: Ray is already running in this process with 4 CPUs; "
    "shut it down first or leave --num-cpus out"
)
ADDRESS_REFUSED = (
    "address='auto': Ray is already running in this process; "
    "shut it down first or leave --address out"
)


class FakeRay(types.ModuleType):
    """``ray`` as the sweep uses it to connect: running (with ``cpus``) or not; records
    the ``init`` calls."""

    def __init__(self, running: bool, cpus: float = 4.0) -> None:
        super().__init__("ray")
        self.running, self.cpus = running, cpus
        self.inits: list[dict[str, Any]] = []
        self.tune = types.SimpleNamespace()  # run_sweep's `from ray import tune`

    def is_initialized(self) -> bool:
        return self.running

    def cluster_resources(self) -> dict[str, float]:
        return {"CPU": self.cpus, "memory": 1e9}

    def init(self, **kwargs: Any) -> None:
        self.inits.append(kwargs)


def fake_ray(monkeypatch: pytest.MonkeyPatch, running: bool, cpus: float = 4.0) -> FakeRay:
    ray = FakeRay(running, cpus)
    monkeypatch.setitem(sys.modules, "ray", ray)
    return ray


@pytest.mark.parametrize(
    ("address", "num_cpus", "message"),
    [(None, 2, NUM_CPUS_REFUSED), ("auto", None, ADDRESS_REFUSED)],
    ids=["num_cpus", "address"],
)
def test_a_running_ray_that_does_not_fit_is_refused(
    address: str | None, num_cpus: int | None, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ray = fake_ray(monkeypatch, running=True, cpus=4.0)
    with pytest.raises(ValueError) as refused:
        sweep_module._connect_ray(address, num_cpus)
    assert str(refused.value) == message
    assert ray.inits == []


@pytest.mark.parametrize("num_cpus", [None, 4])
def test_a_running_ray_that_fits_is_reused(
    num_cpus: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    ray = fake_ray(monkeypatch, running=True, cpus=4.0)
    sweep_module._connect_ray(None, num_cpus)
    assert ray.inits == []


def test_fractional_cpus_are_shown_as_they_are(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_ray(monkeypatch, running=True, cpus=2.5)
    with pytest.raises(ValueError, match=r"^num_cpus=2: .* with 2\.5 CPUs;"):
        sweep_module._connect_ray(None, 2)


@pytest.mark.parametrize(
    ("address", "num_cpus", "init"),
    [
        # "local": a new instance, never a cluster some `ray start` left on the machine
        (
            None,
            2,
            {"address": "local", "num_cpus": 2, "include_dashboard": False, "log_to_driver": False},
        ),
        (
            None,
            None,
            {
                "address": "local",
                "num_cpus": None,
                "include_dashboard": False,
                "log_to_driver": False,
            },
        ),
        ("auto", None, {"address": "auto", "log_to_driver": False}),
    ],
)
def test_without_a_running_ray_one_starts_or_joins_as_asked(
    address: str | None,
    num_cpus: int | None,
    init: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ray = fake_ray(monkeypatch, running=False)
    sweep_module._connect_ray(address, num_cpus)
    assert ray.inits == [init]


@pytest.mark.parametrize(
    ("address", "num_cpus", "message"),
    [(None, 2, NUM_CPUS_REFUSED), ("auto", None, ADDRESS_REFUSED)],
    ids=["num_cpus", "address"],
)
def test_the_sweep_refuses_before_writing_anything(
    address: str | None,
    num_cpus: int | None,
    message: str,
    tiny_store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Refused before ``sweep.json`` is written: the same directory serves a corrected run."""
    ray = fake_ray(monkeypatch, running=True, cpus=4.0)
    out = tmp_path / "out"
    with pytest.raises(ValueError) as refused:
        run_sweep(
            tiny_store.path, ["dqn"], [0], "loso", 10, out,
            address=address, num_cpus=num_cpus, verbose=0,
        )  # fmt: skip
    assert str(refused.value) == message
    assert not out.exists() and ray.inits == []
