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
    read = [s.agent_posteriors for s in steps[:cut]]
    agent_view = all(p is not None for p in read)
    if agent_view:  # what the rule acted on; nothing was read after the decision
        shown, line_names = list(steps[:cut]), list(class_names)
        posteriors = np.stack(read)  # type: ignore[arg-type]
    else:
        shown = list(steps)
        line_names = list(posterior_names if posterior_names is not None else class_names)
        posteriors = np.stack([s.posteriors for s in steps])
    times = np.array([s.time_s for s in shown])
    figure, axes = plt.subplots(figsize=(8, 4), constrained_layout=True)
    colours = plt.get_cmap("tab10" if len(line_names) <= 10 else "tab20")
    for k, name in enumerate(line_names):
        colour = colours(k % colours.N)
        axes.plot(
            times[:cut], posteriors[:cut, k], color=colour, lw=2, marker="o", ms=3, label=name
        )
        if cut < len(shown):
            axes.plot(
                times[cut - 1 :], posteriors[cut - 1 :, k], color=colour, lw=1, ls="--", alpha=0.6
            )
    if decision is not None:
        answer = class_names[decision.prediction]  # type: ignore[index]
        how = "forced at stream end" if decision.forced else "agent decided"
        axes.axvline(decision.time_s, color="black", lw=1.5)
        at_decision = posteriors[cut - 1]
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
    total = int(summary.get("total_steps") or 0) if summary is not None else 0
    if decision is not None and summary is not None and total > len(steps):
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
    save_figure_atomic(figure, out)
    plt.close(figure)
    return out
