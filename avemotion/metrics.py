"""Early-classification metrics: accuracy, earliness, their harmonic mean, recall, confusion.

Every method, RL agent or baseline, is reduced to three numbers per clip: the predicted
class, the number of steps it observed before answering, and the clip's length. The
functions here turn those into the report that ``avemotion evaluate --json`` prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def harmonic_mean(accuracy: float, earliness: float) -> float:
    """HM = 2·acc·(1 − earliness) / (acc + 1 − earliness), as aeon's TEASER defines it.

    It is 0 when both accuracy and 1 − earliness are 0.
    """
    timeliness = 1.0 - earliness
    total = accuracy + timeliness
    return 0.0 if total <= 0.0 else float(2.0 * accuracy * timeliness / total)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts ``[true class, predicted class]``; a prediction of -1 (no answer) counts nowhere."""
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    answered = predictions >= 0
    np.add.at(matrix, (labels[answered], predictions[answered]), 1)
    return matrix


def per_class_recall(matrix: np.ndarray, support: np.ndarray | None = None) -> np.ndarray:
    """Recall of every class (NaN for a class with no clips).

    ``support`` is the number of clips of each class; by default the confusion matrix's
    row sums, which miss unanswered clips, so pass it when some predictions are -1.
    """
    support = (matrix.sum(axis=1) if support is None else np.asarray(support)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(matrix) / support, np.nan)


def early_classification_report(
    predictions: Sequence[int] | np.ndarray,
    labels: Sequence[int] | np.ndarray,
    steps_observed: Sequence[int] | np.ndarray,
    lengths: Sequence[int] | np.ndarray,
    class_names: Sequence[str],
    steps_per_second: float,
) -> dict[str, Any]:
    """The JSON-ready report of one method on one set of clips.

    ``steps_observed[i]`` is how many steps of clip ``i`` the method saw when it answered
    (1 after the first step, ``lengths[i]`` at the end). A prediction of -1 counts as wrong.
    Keys: ``accuracy``, ``earliness``, ``harmonic_mean``, ``n_clips``, ``mean_decision_s``
    (mean steps observed over the store's step rate), ``per_class_recall`` (by class name),
    ``balanced_accuracy`` (mean recall over classes present), ``confusion_matrix`` (rows are
    true classes) and ``class_names``.
    """
    predictions = np.asarray(predictions, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    steps = np.asarray(steps_observed, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    n = len(labels)
    if not (len(predictions) == len(steps) == len(lengths) == n) or n == 0:
        raise ValueError(
            f"predictions/labels/steps_observed/lengths: expected equal non-zero lengths, got "
            f"{len(predictions)}, {n}, {len(steps)}, {len(lengths)}"
        )
    if (steps < 1).any() or (steps > lengths).any():
        raise ValueError("steps_observed: every value must lie in [1, clip length]")
    accuracy = float(np.mean(predictions == labels))
    earliness = float(np.mean(steps / lengths))
    matrix = confusion_matrix(labels, predictions, len(class_names))
    recall = per_class_recall(matrix, np.bincount(labels, minlength=len(class_names)))
    present = ~np.isnan(recall)
    return {
        "accuracy": accuracy,
        "earliness": earliness,
        "harmonic_mean": harmonic_mean(accuracy, earliness),
        "n_clips": int(n),
        "mean_decision_s": float(np.mean(steps) / steps_per_second),
        "per_class_recall": {
            name: (None if np.isnan(r) else float(r)) for name, r in zip(class_names, recall)
        },
        "balanced_accuracy": float(np.mean(recall[present])),  # n ≥ 1: some class is present
        "confusion_matrix": matrix.tolist(),
        "class_names": list(class_names),
    }
