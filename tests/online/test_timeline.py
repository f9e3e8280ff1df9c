"""The confidence timeline: which posterior it draws."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest

from avemotion.online.records import StepResult
from avemotion.online.timeline import plot_timeline

matplotlib.use("Agg")


def steps(with_agent: bool) -> list[StepResult]:
    encoder = np.array([0.7, 0.2, 0.1])
    agent = np.array([0.1, 0.3, 0.6]) if with_agent else None
    return [
        StepResult(0, 0.5, encoder, 0, False, agent_posteriors=agent),
        StepResult(1, 0.6, encoder, 3, True, 2, agent_posteriors=agent),
        StepResult(2, 0.7, encoder, None, True, 2),  # encoded after the answer: nothing read
    ]


@pytest.mark.parametrize("with_agent", [True, False])
def test_timeline_draws_what_the_rule_read(
    with_agent: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the agent's posteriors, only the steps up to the answer are drawn (from them);
    without, the encoder's posteriors of every step, the last one dashed."""
    import matplotlib.pyplot as plt

    drawn: list[np.ndarray] = []
    original = plt.Axes.plot

    def recording(self, x, y, *args, **kwargs):  # type: ignore[no-untyped-def]
        drawn.append(np.asarray(y))
        return original(self, x, y, *args, **kwargs)

    monkeypatch.setattr(plt.Axes, "plot", recording)
    out = plot_timeline(steps(with_agent), ["a", "b", "c"], tmp_path / "t.png")
    assert out.stat().st_size > 5_000
    if with_agent:  # three classes, solid lines over the 2 steps read
        assert [d.tolist() for d in drawn] == [[0.1, 0.1], [0.3, 0.3], [0.6, 0.6]]
    else:  # solid over steps 0–1 and dashed over 1–2, per class
        assert [d.tolist() for d in drawn] == [
            [0.7, 0.7], [0.7, 0.7], [0.2, 0.2], [0.2, 0.2], [0.1, 0.1], [0.1, 0.1]
        ]  # fmt: skip
