"""Metric functions against hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avemotion.metrics import (
    confusion_matrix,
    early_classification_report,
    harmonic_mean,
    per_class_recall,
)


def test_harmonic_mean_hand_computed() -> None:
    # acc 0.8, earliness 0.2: 2*0.8*0.8/(0.8+0.8) = 0.8
    assert harmonic_mean(0.8, 0.2) == pytest.approx(0.8)
    # acc 0.9, earliness 0.5: 2*0.9*0.5/1.4
    assert harmonic_mean(0.9, 0.5) == pytest.approx(0.9 / 1.4)
    assert harmonic_mean(1.0, 1.0) == 0.0
    assert harmonic_mean(0.0, 1.0) == 0.0


def test_report_hand_computed() -> None:
    # 4 clips, classes a/b; lengths 10, 10, 4, 5; decisions after 2, 10, 1, 5 steps.
    report = early_classification_report(
        predictions=[0, 1, 1, -1],
        labels=[0, 0, 1, 1],
        steps_observed=[2, 10, 1, 5],
        lengths=[10, 10, 4, 5],
        class_names=["a", "b"],
        steps_per_second=10.0,
    )
    assert report["accuracy"] == pytest.approx(0.5)
    earliness = (0.2 + 1.0 + 0.25 + 1.0) / 4
    assert report["earliness"] == pytest.approx(earliness)
    assert report["harmonic_mean"] == pytest.approx(
        2 * 0.5 * (1 - earliness) / (0.5 + 1 - earliness)
    )
    assert report["n_clips"] == 4
    assert report["mean_decision_s"] == pytest.approx((2 + 10 + 1 + 5) / 4 / 10.0)
    assert report["per_class_recall"] == {"a": 0.5, "b": 0.5}
    assert report["balanced_accuracy"] == 0.5  # (1/2 + 1/2) / 2
    assert report["confusion_matrix"] == [[1, 1], [0, 1]]  # the unanswered clip counts nowhere


def test_confusion_and_recall_with_absent_class() -> None:
    matrix = confusion_matrix(np.array([0, 0, 2]), np.array([0, 2, 2]), 3)
    assert matrix.tolist() == [[1, 0, 1], [0, 0, 0], [0, 0, 1]]
    recall = per_class_recall(matrix)
    assert recall[0] == pytest.approx(0.5) and math.isnan(recall[1]) and recall[2] == 1.0


def test_report_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="steps_observed"):
        early_classification_report([0], [0], [0], [3], ["a"], 10.0)
    with pytest.raises(ValueError, match="equal"):
        early_classification_report([0, 1], [0], [1], [3], ["a", "b"], 10.0)
