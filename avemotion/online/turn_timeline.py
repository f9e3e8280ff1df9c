"""The turn timeline: each utterance as a span of stream time, its decision marked with the
answer and its confidence (the figure of ``avemotion stream --turns --plot``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from avemotion.atomic import save_figure_atomic
from avemotion.online.turns import Turn


def plot_turns(
    turns: Sequence[Turn],
    out: str | os.PathLike[str],
    summary: dict[str, Any] | None = None,
    title: str | None = None,
    truth: Sequence[dict[str, Any]] | None = None,
) -> Path:
    """Draw each turn as a bar (grey before its decision, pale after: not encoded), a
    marker at its decision (height: the answer's confidence; hollow when forced) labelled
    with the answer; ``truth`` rows (``start``, ``end``, ``label``) as a lane below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not turns:
        raise ValueError("turns: nothing to plot (no turn was answered)")
    end = max(t.end_s for t in turns)
    width = min(40.0, max(8.0, end / 6))
    figure, axes = plt.subplots(figsize=(width, 3.6), constrained_layout=True)
    for turn in turns:
        decided = turn.decision_s if turn.decision_s is not None else turn.end_s
        axes.barh(0.05, decided - turn.start_s, left=turn.start_s, height=0.1, color="0.45")
        if turn.end_s > decided:
            axes.barh(0.05, turn.end_s - decided, left=decided, height=0.1, color="0.85")
        confidence = turn.confidence if turn.confidence is not None else 0.5
        axes.plot(
            [decided],
            [confidence],
            marker="o",
            ms=7,
            color="tab:red",
            mfc="white" if turn.forced else "tab:red",
        )
        axes.vlines(decided, 0.1, confidence, color="tab:red", lw=0.8)
        axes.annotate(
            turn.label or "?",
            (decided, confidence),
            xytext=(3, 4),
            textcoords="offset points",
            fontsize=8,
            rotation=45,
        )
    if truth:
        for row in truth:
            axes.barh(
                -0.08,
                row["end"] - row["start"],
                left=row["start"],
                height=0.06,
                color="tab:blue",
                alpha=0.5,
            )
            axes.text(
                (row["start"] + row["end"]) / 2,
                -0.16,
                str(row["label"]),
                ha="center",
                fontsize=7,
                color="tab:blue",
            )
    _label(axes, summary, title, truth is not None)
    save_figure_atomic(figure, Path(out))
    plt.close(figure)
    return Path(out)


def _label(axes: Any, summary: dict[str, Any] | None, title: str | None, truth: bool) -> None:
    axes.set_ylim(-0.22 if truth else 0.0, 1.12)
    axes.set_xlim(left=0.0)
    axes.set_ylabel("answer's confidence")
    what = "grey: a turn until its answer, pale: after it (not encoded)"
    if summary is not None:
        what += f"; {summary['turns']} turns, {summary['forced']} forced (hollow)"
    if truth:
        what += "; blue: labelled turns"
    what = "stream time (s)\n" + what
    axes.set_xlabel(what)
    axes.set_title(title or "Turns and their early answers")
    axes.grid(alpha=0.3, axis="x")
