"""The confidence timeline: class posteriors over stream time, the decision instant and the
answer (the paper's teaser figure, drawn from a real stream)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avemotion.atomic import save_figure_atomic
from avemotion.online.recognizer import StepResult
from avemotion.store import STEPS_PER_SECOND


def plot_timeline(
    steps: Sequence[StepResult],
    class_names: Sequence[str],
    out: str | os.PathLike[str],
    summary: dict[str, Any] | None = None,
    title: str | None = None,
    posterior_names: Sequence[str] | None = None,
) -> Path:
    """Draw the posteriors of every class per step, mark the decision and save to ``out``.

    The lines are the posterior the agent's stopping rule read (``agent_posteriors``, over
    ``class_names``) when every step up to the decision has one; else the encoder's
    temporal-model posteriors (over ``posterior_names``, default ``class_names``), with the
    steps after the decision (present when encoding went on) dashed. The file type follows
    ``out``'s suffix (png, pdf, svg); it is written atomically.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not steps:
        raise ValueError("steps: nothing to plot (no step was encoded)")
    out = Path(out)
    decision = next((s for s in steps if s.action), None)
    cut = steps.index(decision) + 1 if decision is not None else len(steps)
    shown, line_names, posteriors, agent_view = _lines(steps, cut, class_names, posterior_names)
    times = np.array([s.time_s for s in shown])
    figure, axes = plt.subplots(figsize=(8, 4), constrained_layout=True)
    _draw_posteriors(axes, times, posteriors, line_names, cut)
    if decision is not None:
        _mark_decision(axes, decision, class_names, line_names, posteriors[cut - 1])
    _shade_not_encoded(axes, decision, summary, len(steps))
    _label_axes(axes, summary, agent_view, title)
    save_figure_atomic(figure, out)
    plt.close(figure)
    return out


def _lines(
    steps: Sequence[StepResult],
    cut: int,
    class_names: Sequence[str],
    posterior_names: Sequence[str] | None,
) -> tuple[list[StepResult], list[str], np.ndarray, bool]:
    """Pick what the lines show: the steps, the class per line, the posteriors (steps x
    classes) and whether they are what the stopping rule read (the agent's view)."""
    read = [s.agent_posteriors for s in steps[:cut]]
    # what the rule acted on; nothing was read after the decision
    if all(p is not None for p in read):
        return list(steps[:cut]), list(class_names), np.stack(read), True  # type: ignore[arg-type]
    line_names = list(posterior_names if posterior_names is not None else class_names)
    return list(steps), line_names, np.stack([s.posteriors for s in steps]), False


def _draw_posteriors(
    axes: Any, times: np.ndarray, posteriors: np.ndarray, line_names: Sequence[str], cut: int
) -> None:
    """One line per class up to the decision step; the steps after it (if encoded) dashed."""
    import matplotlib.pyplot as plt

    colours = plt.get_cmap("tab10" if len(line_names) <= 10 else "tab20")
    for k, name in enumerate(line_names):
        colour = colours(k % colours.N)
        axes.plot(
            times[:cut], posteriors[:cut, k], color=colour, lw=2, marker="o", ms=3, label=name
        )
        if cut < len(times):
            axes.plot(
                times[cut - 1 :], posteriors[cut - 1 :, k], color=colour, lw=1, ls="--", alpha=0.6
            )


def _mark_decision(
    axes: Any,
    decision: StepResult,
    class_names: Sequence[str],
    line_names: Sequence[str],
    at_decision: np.ndarray,
) -> None:
    """A vertical line at the decision instant, annotated with the answer and how it came."""
    answer = class_names[decision.prediction]  # type: ignore[index]
    how = "forced at stream end" if decision.forced else "agent decided"
    axes.axvline(decision.time_s, color="black", lw=1.5)
    confidence = float(
        at_decision[line_names.index(answer)] if answer in line_names else at_decision.max()
    )
    axes.annotate(
        f"{answer}\n({how}, t = {decision.time_s:.2f} s)",
        xy=(decision.time_s, confidence),
        # below the point when it is near the top, so the box stays inside the axes
        xytext=(8, -40 if confidence > 0.75 else 8),
        textcoords="offset points",
        fontsize=9,
        bbox={"boxstyle": "round", "fc": "white", "ec": "0.5"},
    )


def _shade_not_encoded(
    axes: Any, decision: StepResult | None, summary: dict[str, Any] | None, encoded: int
) -> None:
    """Grey out the stream's steps never encoded because the stopping rule ended it early
    (the earliness the plot is about); nothing without a decision, a summary or such steps."""
    total = int(summary.get("total_steps") or 0) if summary is not None else 0
    if decision is None or summary is None or total <= encoded:
        return
    rate = float(summary.get("steps_per_second") or STEPS_PER_SECOND)
    end = decision.time_s + (total - 1 - decision.step) / rate
    axes.axvspan(decision.time_s, end, color="0.85", alpha=0.6, lw=0)
    axes.text(
        (decision.time_s + end) / 2,
        0.5,
        "not encoded (stopped early)",
        ha="center",
        va="center",
        fontsize=9,
        color="0.35",
    )
    axes.set_xlim(right=end + 0.5 / rate)


def _label_axes(
    axes: Any, summary: dict[str, Any] | None, agent_view: bool, title: str | None
) -> None:
    """Axis labels (with the encoded step count when known), title, legend and grid."""
    if summary is not None and summary.get("total_steps"):
        axes.set_xlabel(
            f"stream time (s); {summary['steps_encoded']} of {summary['total_steps']} steps encoded"
        )
    else:
        axes.set_xlabel("stream time (s)")
    axes.set_ylabel(
        "class posterior the stopping rule read" if agent_view else "class posterior (encoder)"
    )
    axes.set_ylim(0.0, 1.0)
    axes.set_title(title or "Online emotion recognition: confidence over time")
    axes.legend(loc="lower right", fontsize=8, ncol=2, framealpha=0.8)
    axes.grid(alpha=0.3)
