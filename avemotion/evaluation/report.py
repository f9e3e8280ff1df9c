"""The comparison table: methods as rows, metrics as ``mean ± std`` columns, in Markdown and CSV.

A row is a dict with a ``method`` name (or ``agent``), optional label columns (``kind``,
``n_trials``, ``n_folds``, ``n_seeds``, ``n_clips``) and, for each metric ``m``, ``m_mean``
and ``m_std``. A row without ``m_std`` (a pooled value) shows ``m_mean`` alone. The sweep
(:mod:`avemotion.sweep`) writes its table with :func:`write_comparison`; a comparison
script can do the same, so that every comparison has one layout.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from avemotion.atomic import write_text_atomic

DEFAULT_METRICS = ("accuracy", "balanced_accuracy", "earliness", "harmonic_mean", "mean_decision_s")
"""The metrics a comparison shows unless told otherwise, in column order."""
LABEL_COLUMNS = ("kind", "n_trials", "n_folds", "n_seeds", "n_clips")
"""Columns copied into the table as they are, when the rows carry them."""


def _name(row: dict[str, Any]) -> str:
    return str(row.get("method", row.get("agent", "")))


def format_mean_std(mean: float, std: float, digits: int = 3) -> str:
    """``"0.812 ± 0.034"``; ``"–"`` for a missing (NaN) mean."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    if std is None or (isinstance(std, float) and math.isnan(std)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def first_difference(recorded: Any, asked: Any, field: str) -> tuple[str, Any, Any] | None:
    """The first field (``a.b`` for nested dicts, keys in sorted order) whose values
    differ, with both values; None when they are equal."""
    if isinstance(recorded, dict) and isinstance(asked, dict):
        for key in sorted(set(recorded) | set(asked), key=str):
            found = first_difference(recorded.get(key), asked.get(key), f"{field}.{key}")
            if found:
                return found
        return None
    return None if recorded == asked else (field, recorded, asked)


def refuse_difference(
    path: str | os.PathLike[str],
    recorded: dict,
    asked: dict,
    fields: Sequence[str],
    against: str = "asked",
    remedy: str = "use another --out, or remove that result",
) -> None:
    """Refuse, in one line naming ``path`` and the field, a result recorded under other
    ``fields`` than ``asked`` (``against`` says where those come from): results of other
    settings are never pooled."""
    for field in fields:
        found = first_difference(recorded.get(field), asked.get(field), field)
        if found:
            raise ValueError(
                f"{path}: {found[0]}: {found[1]!r} there, {found[2]!r} {against}; results "
                f"of other settings are not pooled ({remedy})"
            )


def check_pooled(
    results: Sequence[tuple[str | os.PathLike[str], dict | None, dict]], fields: Sequence[str]
) -> int:
    """Check that results of one method may be pooled: each is ``(path, settings, where)``,
    its recorded ``settings`` (None: not recorded) and the fields its place fixes. Refuses
    in one line (:func:`refuse_difference`) settings that name another place, or differ
    from the first result's in ``fields``. Returns how many recorded no settings."""
    first: tuple[str | os.PathLike[str], dict] | None = None
    unrecorded = 0
    for path, settings, where in results:
        if settings is None:
            unrecorded += 1
            continue
        refuse_difference(path, settings, where, list(where), "by its place", "move it")
        first = first or (path, settings)
        remedy = "pool only one of them"
        refuse_difference(path, settings, first[1], fields, f"in {first[0]}", remedy)
    return unrecorded


def paired_wins(
    ours: Sequence[float], theirs: Sequence[float], tolerance: float = 1e-9
) -> tuple[int, int, int]:
    """``(wins, ties, losses)`` of ``ours`` against ``theirs``, pair by pair (per fold)."""
    if len(ours) != len(theirs):
        raise ValueError(f"paired_wins: {len(ours)} values against {len(theirs)}")
    diff = [a - b for a, b in zip(ours, theirs)]
    wins = sum(d > tolerance for d in diff)
    losses = sum(d < -tolerance for d in diff)
    return wins, len(diff) - wins - losses, losses


def wins_against_best(
    entries: Sequence[dict[str, Any]],
    ours: str = "dqn",
    metric: str = "harmonic_mean",
    best: str | None = None,
) -> dict[str, Any] | None:
    """Paired per-fold comparison of ``ours`` with ``best`` (default: the other method of
    best mean ``metric`` over folds).

    ``entries`` are per-trial dicts with ``method`` (or ``agent``), ``fold`` and ``metric``;
    each fold's value is its mean over seeds. Returns the folds both have, each one's
    value for both (``ours_values``, ``best_other_values``) and the ``wins``, ``ties`` and
    ``losses``; None when ``ours`` or a rival is missing.
    """
    by: dict[str, dict[str, list[float]]] = {}
    for e in entries:
        by.setdefault(_name(e), {}).setdefault(str(e["fold"]), []).append(float(e[metric]))
    folds = {m: {f: sum(v) / len(v) for f, v in per.items()} for m, per in by.items()}
    rivals = [m for m in folds if m != ours]
    if ours not in folds or not rivals or (best is not None and best not in rivals):
        return None
    if best is None:
        best = max(rivals, key=lambda m: sum(folds[m].values()) / len(folds[m]))
    shared = sorted(set(folds[ours]) & set(folds[best]))
    values = [folds[ours][f] for f in shared], [folds[best][f] for f in shared]
    wins, ties, losses = paired_wins(*values)
    return {
        "ours": ours,
        "best_other": best,
        "folds": shared,
        "ours_values": values[0],
        "best_other_values": values[1],
        "wins": wins,
        "ties": ties,
        "losses": losses,
    }


def _metrics_present(rows: Sequence[dict[str, Any]], metrics: Sequence[str]) -> list[str]:
    return [m for m in metrics if any(f"{m}_mean" in row for row in rows)]


def comparison_markdown(
    rows: Sequence[dict[str, Any]],
    metrics: Sequence[str] = DEFAULT_METRICS,
    digits: int = 3,
    note: str | None = None,
) -> str:
    """The table as GitHub Markdown: one row per method, ``mean ± std`` per metric, then ``note``."""
    metrics = _metrics_present(rows, metrics)
    counts = [c for c in LABEL_COLUMNS if any(c in row for row in rows)]
    header = ["method", *counts, *metrics]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    for row in rows:
        cells = [_name(row), *(str(row.get(c, "")) for c in counts)]
        cells += [
            format_mean_std(row.get(f"{m}_mean", math.nan), row.get(f"{m}_std", math.nan), digits)
            for m in metrics
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def comparison_csv(rows: Sequence[dict[str, Any]], metrics: Sequence[str] = DEFAULT_METRICS) -> str:
    """The table as CSV with separate ``<metric>_mean`` and ``<metric>_std`` columns."""
    metrics = _metrics_present(rows, metrics)
    counts = [c for c in LABEL_COLUMNS if any(c in row for row in rows)]
    header = ["method", *counts, *(f"{m}_{part}" for m in metrics for part in ("mean", "std"))]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(
            [
                _name(row),
                *(row.get(c, "") for c in counts),
                *(row.get(h, "") for h in header[1 + len(counts) :]),
            ]
        )
    return buffer.getvalue()


def write_comparison(
    rows: Sequence[dict[str, Any]],
    stem: str | os.PathLike[str],
    metrics: Sequence[str] = DEFAULT_METRICS,
    note: str | None = None,
) -> tuple[Path, Path]:
    """Write ``<stem>.md`` (with ``note`` under the table) and ``<stem>.csv`` atomically."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    markdown, table = stem.with_suffix(".md"), stem.with_suffix(".csv")
    write_text_atomic(markdown, comparison_markdown(rows, metrics, note=note))
    write_text_atomic(table, comparison_csv(rows, metrics))
    return markdown, table
