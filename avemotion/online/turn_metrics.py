"""Scoring turns against a turn-level label file: detection by overlap, then per turn the
answer and its earliness.

- :func:`match_turns`: one-to-one pairs of detected and labelled turns, greedily by overlap
  (largest first); a pair counts when at least ``min_share`` of the detected turn lies in
  the labelled one. A turn split in two leaves one piece unmatched (a false positive); two
  turns merged into one leave one label unmatched (a miss).
- :func:`score_turns`: precision and recall of detection; over matched turns, accuracy,
  earliness and their harmonic mean. Earliness is counted as ``avemotion evaluate`` counts
  it on the labelled clip: the clip's steps whose window had arrived by the decision, over
  the clip's steps, so a turn streamed exactly as its clip scores the same.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from avemotion.encoders.frontend import n_steps
from avemotion.encoders.media import AUDIO_RATE
from avemotion.store import STEPS_PER_SECOND

Span = tuple[float, float]


def overlap(a: Span, b: Span) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def match_turns(
    detected: Sequence[Span], labelled: Sequence[Span], min_share: float = 0.5
) -> list[tuple[int, int]]:
    """``(detected index, labelled index)`` pairs, one-to-one, sorted by detected index."""
    candidates = sorted(
        (
            (overlap(d, lab), i, j)
            for i, d in enumerate(detected)
            for j, lab in enumerate(labelled)
            if overlap(d, lab) > 0 and overlap(d, lab) >= min_share * (d[1] - d[0])
        ),
        key=lambda c: (-c[0], c[1], c[2]),
    )
    used_d: set[int] = set()
    used_l: set[int] = set()
    pairs = []
    for _, i, j in candidates:
        if i not in used_d and j not in used_l:
            used_d.add(i)
            used_l.add(j)
            pairs.append((i, j))
    return sorted(pairs)


def harmonic_mean(accuracy: float, earliness: float) -> float:
    """HM = 2·acc·(1 − earliness) / (acc + 1 − earliness), as ``avemotion evaluate``."""
    total = accuracy + 1.0 - earliness
    return 0.0 if total <= 0 else 2.0 * accuracy * (1.0 - earliness) / total


def clip_earliness(
    decision_s: float, label: Span, steps_per_second: float = STEPS_PER_SECOND
) -> float:
    """Share of the labelled clip's steps whose audio had arrived by ``decision_s`` (at
    least one: the decision step itself)."""
    total = max(1, n_steps(round((label[1] - label[0]) * AUDIO_RATE), steps_per_second))
    seen = n_steps(round((decision_s - label[0]) * AUDIO_RATE), steps_per_second)
    return min(total, max(1, seen)) / total


def score_turns(
    turns: Sequence[dict[str, Any]], labels: Sequence[dict[str, Any]], min_share: float = 0.5
) -> dict[str, Any]:
    """Detection precision/recall and, over matched turns, accuracy, earliness and HM.
    ``turns``: the stream's turn objects (``start_s``, ``end_s``, ``decision_s``,
    ``label``); ``labels``: rows with ``start``, ``end``, ``label``."""
    detected = [(float(t["start_s"]), float(t["end_s"])) for t in turns]
    truth = [(float(r["start"]), float(r["end"])) for r in labels]
    pairs = match_turns(detected, truth, min_share)
    correct = [turns[i]["label"] == labels[j]["label"] for i, j in pairs]
    early = [clip_earliness(float(turns[i]["decision_s"]), truth[j]) for i, j in pairs]
    accuracy = sum(correct) / len(pairs) if pairs else 0.0
    earliness = sum(early) / len(pairs) if pairs else 1.0
    return {
        "detected": len(detected),
        "labelled": len(truth),
        "matched": len(pairs),
        "precision": len(pairs) / len(detected) if detected else 0.0,
        "recall": len(pairs) / len(truth) if truth else 0.0,
        "accuracy": accuracy,
        "earliness": earliness,
        "harmonic_mean": harmonic_mean(accuracy, earliness),
        "accuracy_all_labelled": sum(correct) / len(truth) if truth else 0.0,
        "pairs": pairs,
    }


def read_labels(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """A turn-level label file: a CSV with ``start``, ``end`` and ``label`` columns (seconds);
    refused in one line naming the file and the row otherwise."""
    path = Path(path)
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{path}: no turns (expected a header start,end,label and rows)")
    missing = {"start", "end", "label"} - set(rows[0])
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    for number, row in enumerate(rows, start=2):
        try:
            start, end = float(row["start"]), float(row["end"])
        except (TypeError, ValueError):
            raise ValueError(f"{path}: row {number}: start/end: not numbers") from None
        if not 0 <= start < end:
            raise ValueError(f"{path}: row {number}: expected 0 <= start < end, got {start}, {end}")
        row["start"], row["end"] = start, end
    return rows
