"""aeon's early classifiers (ProbabilityThreshold and TEASER) on a feature store.

Optional: everything here needs the ``aeon`` package; :func:`aeon_available` says whether
it imports. Clips are padded to the longest clip by repeating their last frame (aeon's
early classifiers need equal lengths); a decision taken at length ``t`` counts
``min(t, true length)`` steps observed, so earliness is measured against each clip's true
length. The estimator is a 1-NN with Euclidean distance and the classification points
start at 3 steps, the strongest configuration measured on JapaneseVowels.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from avemotion.metrics import early_classification_report
from avemotion.store import FeatureStore

MAX_POINTS = 20


def aeon_available() -> bool:
    """Whether ``aeon`` can be imported."""
    return importlib.util.find_spec("aeon") is not None


def padded_panel(store: FeatureStore, length: int) -> np.ndarray:
    """``[n_clips, dim, length]`` float64, each clip padded with its last frame."""
    panel = np.empty((store.n_clips, store.dim, length), dtype=np.float64)
    for i in range(store.n_clips):
        frames = np.asarray(store.clip(i).frames, dtype=np.float64)[:length]
        panel[i, :, : len(frames)] = frames.T
        panel[i, :, len(frames) :] = frames[-1][:, None]
    return panel


def classification_points(length: int, max_points: int = MAX_POINTS) -> list[int]:
    """Every step from 3 to ``length``, thinned evenly to at most ``max_points`` points."""
    points = np.unique(
        np.linspace(3, length, min(max_points, max(1, length - 2))).round().astype(int)
    )
    return [int(p) for p in points if p >= 3] or [length]


def stream_decisions(
    classifier: Any, panel: np.ndarray, points: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Feed growing prefixes to a fitted aeon early classifier: per-case prediction and decision length."""
    n = len(panel)
    predictions, lengths = np.full(n, -1, dtype=np.int64), np.full(n, points[-1], dtype=np.int64)
    remaining = np.arange(n)
    classifier.reset_state_info()
    for i, point in enumerate(points):
        prefix = panel[remaining, :, :point]
        preds, decisions = (
            classifier.predict(prefix) if i == 0 else classifier.update_predict(prefix)
        )
        decisions = np.asarray(decisions, dtype=bool)
        if i == len(points) - 1:
            decisions[:] = True
        decided = remaining[decisions]
        predictions[decided] = np.asarray(preds)[decisions].astype(np.int64)
        lengths[decided] = point
        remaining = remaining[~decisions]
        if len(remaining) == 0:
            break
    return predictions, lengths


def make_classifier(name: str, points: list[int], seed: int) -> Any:
    """An aeon early classifier with a 1-NN Euclidean estimator."""
    from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier
    from aeon.classification.early_classification import TEASER, ProbabilityThresholdEarlyClassifier

    estimator = KNeighborsTimeSeriesClassifier(distance="euclidean", n_neighbors=1)
    if name == "aeon_probability_threshold":
        return ProbabilityThresholdEarlyClassifier(
            estimator=estimator, classification_points=points, random_state=seed
        )
    if name == "aeon_teaser":
        return TEASER(estimator=estimator, classification_points=points, random_state=seed)
    raise ValueError(f"aeon baseline: unknown name {name!r}")


AEON_RULES = ("aeon_probability_threshold", "aeon_teaser")


def evaluate_aeon_baselines(
    train: FeatureStore,
    test: FeatureStore,
    seed: int = 0,
    names: tuple[str, ...] = AEON_RULES,
) -> dict[str, dict[str, Any]]:
    """Fit aeon's early classifiers ``names`` on ``train`` and report each on ``test``."""
    length = int(max(train.lengths.max(), test.lengths.max()))
    points = classification_points(length)
    x_train, x_test = padded_panel(train, length), padded_panel(test, length)
    return {
        name: fit_and_report(
            make_classifier(name, points, seed),
            (x_train, x_test),
            train,
            test,
            points,
            "1-NN euclidean",
        )  # fmt: skip
        for name in names
    }


def fit_and_report(
    classifier: Any,
    panels: tuple[np.ndarray, np.ndarray],
    train: FeatureStore,
    test: FeatureStore,
    points: list[int],
    estimator: str,
) -> dict[str, Any]:
    """Fit one aeon early classifier on ``train``'s padded panel, stream ``test``'s through
    it and report its decisions, earliness counted against each clip's true length."""
    fitted = classifier.fit(panels[0], train.labels)
    predictions, decided_at = stream_decisions(fitted, panels[1], points)
    steps = np.minimum(decided_at, test.lengths)
    report = early_classification_report(
        predictions, test.labels, steps, test.lengths, test.class_names, test.steps_per_second
    )
    return {**report, "parameters": {"estimator": estimator, "classification_points": points}}
