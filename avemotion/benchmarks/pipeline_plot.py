"""The stage breakdown of ``avemotion bench pipeline`` as a bar chart (the command line that
runs the benchmark and draws it is :func:`avemotion.benchmarks.pipeline.main`)::

    python -m avemotion.benchmarks.pipeline --quick --plot docs/pipeline_stages.png
    python -m avemotion.benchmarks.pipeline --from result.json --plot docs/pipeline_stages.png

One horizontal bar per encoder size and inference path: the wall milliseconds per step of
each stage in the sequential pass, stacked, with each size's real-time budget (its target
real-time factor times the clip's media time per step) drawn as a dashed line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from avemotion.atomic import save_figure_atomic
from avemotion.online.records import STAGES

COLOURS = {
    "decode": "#8c564b",
    "face_detection": "#d62728",
    "visual_cnn": "#ff7f0e",
    "audio_frontend": "#17becf",
    "audio_cnn": "#1f77b4",
    "fusion": "#9467bd",
    "lstm": "#2ca02c",
    "policy": "#7f7f7f",
}


def _bars(result: dict[str, Any]) -> list[tuple[str, dict[str, float], float, str]]:
    """(label, stage ms per step, real-time factor, size) per size and path, top to bottom."""
    bars = []
    for size, figures in result["encoders"].items():
        paths = [("fp32", figures["fp32"])]
        if figures["inference"] != "fp32":
            paths.append((figures["inference"], figures))
        for path, entry in paths:
            label = f"{size}, {path}\nRTF {entry['real_time_factor']:.3f}"
            bars.append((label, entry["stage_ms_per_step"], entry["real_time_factor"], size))
    return bars


def plot_stages(result: dict[str, Any], out: str | os.PathLike[str]) -> Path:
    """Draw the per-stage milliseconds per step of every size and path; save to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    bars = _bars(result)
    figure, axes = plt.subplots(figsize=(9, 0.55 * len(bars) + 1.8), constrained_layout=True)
    for row, (_, stages, _, _) in enumerate(bars):
        left = 0.0
        for stage in STAGES:
            width = stages.get(stage, 0.0)
            axes.barh(
                row, width, left=left, color=COLOURS[stage], label=stage if row == 0 else None
            )
            left += width
    steps = max(1, next(iter(result["encoders"].values()))["steps"])
    per_step_ms = 1e3 * result["clip"]["duration_s"] / steps
    budgets = {"cpu": result["target_real_time_factor"]}
    if "paper" in result["encoders"]:
        budgets["paper"] = result["target_paper_real_time_factor"]
    for size, target in budgets.items():
        rows = [r for r, bar in enumerate(bars) if bar[3] == size]
        if rows:
            budget = target * per_step_ms
            axes.vlines(budget, min(rows) - 0.45, max(rows) + 0.45, colors="black", linestyles="--")
            axes.annotate(f"RTF {target} budget", (budget, max(rows) + 0.45), fontsize=7)
    axes.set_yticks(range(len(bars)), [bar[0] for bar in bars], fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("wall ms per step (sequential pass, one torch thread)")
    load = result.get("load_average", ["?"])[0]
    axes.set_title(
        f"Online pipeline stages per step, fp32 and fastest path ({result['clip']['kind']} "
        f"{result['clip']['duration_s']} s clip, {steps} steps; load average {load})",
        fontsize=10,
    )
    axes.legend(fontsize=7, ncol=2, loc="upper right")
    axes.grid(axis="x", alpha=0.3)
    save_figure_atomic(figure, out)
    plt.close(figure)
    return out
