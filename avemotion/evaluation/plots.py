"""The figures beside a comparison table: each method's confusion matrix and its agents'
training curves (``experiments/compare.py`` draws them for a leave-one-speaker-out run)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from avemotion.agents.training_log import LOG_NAME, read_log


def plot_confusion_matrices(
    path: str | os.PathLike[str], matrices: Mapping[str, tuple[np.ndarray, Sequence[str], str]]
) -> None:
    """One panel per method, in the given order: ``{name: (counts, class_names, title)}``,
    each matrix's rows normalised to 1 and every cell written in it."""
    import matplotlib.pyplot as plt

    cols = min(4, len(matrices))
    rows = (len(matrices) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.4 * rows), squeeze=False)
    for ax, (counts, names, title) in zip(axes.flat, matrices.values()):
        matrix = np.asarray(counts, dtype=float)
        matrix = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        ax.imshow(matrix, vmin=0, vmax=1, cmap="Blues")
        for i in range(len(names)):
            for j in range(len(names)):
                value, colour = matrix[i, j], "white" if matrix[i, j] > 0.5 else "black"
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6, color=colour)
        ax.set_xticks(range(len(names)), names, rotation=60, fontsize=6)
        ax.set_yticks(range(len(names)), names, fontsize=6)
        ax.set_title(title, fontsize=8)
    for ax in list(axes.flat)[len(matrices) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_training_curves(path: str | os.PathLike[str], runs: Mapping[str, Sequence[Path]]) -> None:
    """Training return and HM against env steps, per method the mean over its run
    directories' training logs (runs without a log are left out)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, dirs in sorted(runs.items()):
        logs = [read_log(run) for run in dirs if (Path(run) / LOG_NAME).is_file()]
        logs = [log for log in logs if log and len(log.get("env_steps", [])) > 0]
        if not logs:
            continue
        for ax, key in zip(axes, ("episode_return", "harmonic_mean")):
            grid = np.unique(np.concatenate([log["env_steps"] for log in logs]))
            curves = [np.interp(grid, log["env_steps"], log[key]) for log in logs]
            ax.plot(grid, np.nanmean(curves, axis=0), label=name)
            ax.set(xlabel="environment steps", ylabel=f"training {key.replace('_', ' ')}")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
