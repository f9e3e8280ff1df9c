"""What the recognizer reports (:mod:`avemotion.online.records`).

:class:`StageTimes` on a fake clock (scripted readings, so every sum is exact and nothing
depends on how fast the machine runs), and :meth:`StepResult.to_json` value by value.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest

from avemotion.online import records
from avemotion.online.records import STAGES, StageTimes, StepResult


class FakeClock:
    """Stands for the ``time`` module: each clock answers its scripted readings in turn
    (binary fractions, so differences and sums are exact), and fails when read once more."""

    def __init__(self, wall: list[float], cpu: list[float] | None = None) -> None:
        self._wall: Iterator[float] = iter(wall)
        self._cpu: Iterator[float] = iter(cpu or [])

    def perf_counter(self) -> float:
        return next(self._wall)

    def process_time(self) -> float:
        return next(self._cpu)


def test_stage_sums_the_wall_time_of_each_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wall readings 1, 1.25 (lstm), 2, 2.5 (lstm), 3, 3.125 (policy): lstm
    0.25 + 0.5 = 0.75, policy 0.125, every other stage 0. Without ``cpu`` the CPU clock is
    never read (its script is empty) and its sums stay 0."""
    monkeypatch.setattr(records, "time", FakeClock([1.0, 1.25, 2.0, 2.5, 3.0, 3.125]))
    times = StageTimes()
    for name in ("lstm", "lstm", "policy"):
        with times.stage(name):
            pass
    assert times.seconds == {**dict.fromkeys(STAGES, 0.0), "lstm": 0.75, "policy": 0.125}
    assert times.cpu_seconds == dict.fromkeys(STAGES, 0.0)


def test_stage_with_cpu_sums_wall_and_cpu_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wall 10 -> 10.5 and CPU 3 -> 3.75 in ``audio_cnn``, then wall 11 -> 11.25 and CPU
    4 -> 4.5: wall 0.5 + 0.25 = 0.75, CPU 0.75 + 0.5 = 1.25 (CPU above wall: the
    process's other threads worked meanwhile)."""
    clock = FakeClock([10.0, 10.5, 11.0, 11.25], [3.0, 3.75, 4.0, 4.5])
    monkeypatch.setattr(records, "time", clock)
    times = StageTimes(cpu=True)
    for _ in range(2):
        with times.stage("audio_cnn"):
            pass
    assert times.seconds["audio_cnn"] == 0.75 and times.cpu_seconds["audio_cnn"] == 1.25
    assert sum(times.seconds.values()) == 0.75 and sum(times.cpu_seconds.values()) == 1.25


@pytest.mark.parametrize("cpu", [False, True])
def test_a_failing_stage_is_still_timed(monkeypatch: pytest.MonkeyPatch, cpu: bool) -> None:
    """The error goes on and the stage keeps its time: wall 5 -> 5.5 (0.5), CPU 1 -> 1.25."""
    monkeypatch.setattr(records, "time", FakeClock([5.0, 5.5], [1.0, 1.25]))
    times = StageTimes(cpu=cpu)
    with pytest.raises(ZeroDivisionError):
        with times.stage("fusion"):
            1 / 0  # noqa: B018
    assert times.seconds["fusion"] == 0.5
    assert times.cpu_seconds["fusion"] == (0.25 if cpu else 0.0)


def test_an_unknown_stage_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "time", FakeClock([0.0, 1.0]))
    times = StageTimes()
    with pytest.raises(KeyError, match="gpu"):
        with times.stage("gpu"):
            pass
    assert "gpu" not in times.seconds


def test_each_stage_times_starts_at_zero_on_its_own_dicts() -> None:
    first, second = StageTimes(), StageTimes()
    first.seconds["lstm"] += 1.0
    first.step_latencies.append(0.5)
    assert list(second.seconds) == list(STAGES) and set(second.seconds.values()) == {0.0}
    assert second.step_latencies == [] and second.cpu is False


def test_step_result_to_json_by_hand() -> None:
    """Posteriors and agent posteriors named by the classes, as Python floats; the time
    rounded to 4 decimals (0.123456 -> 0.1235); the answer 1 named "sad"."""
    result = StepResult(
        step=3,
        time_s=0.123456,
        posteriors=np.array([0.25, 0.75], dtype=np.float32),
        action=2,
        decided=True,
        prediction=1,
        forced=True,
        agent_posteriors=np.array([0.125, 0.875]),
    )
    out = result.to_json(["calm", "sad"])
    assert out == {
        "step": 3,
        "time_s": 0.1235,
        "posteriors": {"calm": 0.25, "sad": 0.75},
        "action": 2,
        "decided": True,
        "prediction": "sad",
        "forced": True,
        "agent_posteriors": {"calm": 0.125, "sad": 0.875},
    }
    assert type(out["posteriors"]["calm"]) is float
    assert json.loads(json.dumps(out)) == out


def test_step_result_to_json_before_the_decision() -> None:
    """Waiting: no answer, no agent posteriors; class 0 is a name, not "no answer"."""
    waiting = StepResult(0, 0.5, np.array([0.5, 0.5]), 0, False)
    assert waiting.to_json(["calm", "sad"]) == {
        "step": 0,
        "time_s": 0.5,
        "posteriors": {"calm": 0.5, "sad": 0.5},
        "action": 0,
        "decided": False,
        "prediction": None,
        "forced": False,
        "agent_posteriors": None,
    }
    first_class = StepResult(1, 0.6, np.array([0.5, 0.5]), 1, True, prediction=0)
    assert first_class.to_json(["calm", "sad"])["prediction"] == "calm"
    after = StepResult(2, 0.7, np.array([0.5, 0.5]), None, True, prediction=0)
    assert after.to_json(["calm", "sad"])["action"] is None


def test_step_result_names_posteriors_by_the_encoders_classes() -> None:
    """The encoder's three classes name its posteriors; the agent's two classes name the
    answer (class 1: "sad") and the posterior the agent read."""
    result = StepResult(
        4, 1.0, np.array([0.5, 0.25, 0.25]), 2, True, 1, agent_posteriors=np.array([0.25, 0.75])
    )
    out = result.to_json(["happy", "sad"], ["neutral", "happy", "sad"])
    assert out["posteriors"] == {"neutral": 0.5, "happy": 0.25, "sad": 0.25}
    assert out["prediction"] == "sad"
    assert out["agent_posteriors"] == {"happy": 0.25, "sad": 0.75}
