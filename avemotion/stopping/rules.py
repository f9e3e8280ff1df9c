"""Non-RL stopping rules on a posterior model's per-step posteriors.

Every rule reads :class:`~avemotion.posterior.Posteriors` from the same posterior model
as our DQN, and has its parameter tuned for the harmonic mean on the *out-of-fold*
posteriors of the training speakers (:func:`~avemotion.posterior.cross_fit`), never on a
test clip:

- ``threshold``: answer at the first step whose posterior maximum reaches θ;
- ``fixed_fraction``: answer after ``ceil(x · T)`` steps;
- ``consecutive``: aeon's ProbabilityThreshold rule on our posterior: answer once the
  posterior maximum has reached θ with the same class for ``c`` steps in a row;
- ``full_clip``: the posterior after the last step (no rule; earliness 1).

aeon's own classifiers, on their own posterior (1-NN on raw prefixes), are extra rows:
:mod:`avemotion.stopping.aeon`.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from avemotion.metrics import early_classification_report, harmonic_mean
from avemotion.posterior import Posteriors
from avemotion.store import FeatureStore

THRESHOLDS = np.round(np.concatenate([np.linspace(0.2, 0.9, 15), np.linspace(0.92, 0.995, 6)]), 4)
FRACTIONS = np.round(np.linspace(0.05, 1.0, 20), 4)
CONSECUTIVE = (1, 2, 3, 5)
TUNED_RULES = ("threshold", "fraction", "consecutive")
"""The rules :func:`tune_rules` tunes (by these names in its ``untuned`` lines)."""

Decisions = tuple[np.ndarray, np.ndarray]
"""Per-clip ``(predicted class, steps observed)``."""


def decide_threshold(post: Posteriors, threshold: float, consecutive: int = 1) -> Decisions:
    """First step where the posterior maximum has reached ``threshold`` with the same
    class for ``consecutive`` steps in a row (else the clip's last step)."""
    if consecutive == 1:
        return _first_confident(post, threshold)
    return _confident_in_a_row(post, threshold, consecutive)


def _first_confident(post: Posteriors, threshold: float) -> Decisions:
    """``consecutive == 1`` for every clip at once, without a Python loop over steps:
    tuning and model selection score every θ of the grid on thousands of clips."""
    lengths = np.asarray(post.lengths, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    local = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(starts, lengths)
    rows = np.repeat(np.asarray(post.offsets, dtype=np.int64), lengths) + local
    confident = post.proba[rows].max(axis=1) >= threshold
    first = np.minimum.reduceat(np.where(confident, local, np.iinfo(np.int64).max), starts)
    steps = np.minimum(first, lengths - 1) + 1
    best = post.proba.argmax(axis=1)
    return best[post.offsets + steps - 1].astype(np.int64), steps


def _confident_in_a_row(post: Posteriors, threshold: float, consecutive: int) -> Decisions:
    best, confident = post.proba.argmax(axis=1), post.proba.max(axis=1) >= threshold
    predictions = np.empty(len(post.lengths), np.int64)
    steps = np.empty(len(post.lengths), np.int64)
    for i, (start, length) in enumerate(zip(post.offsets, post.lengths)):
        ok, cls = confident[start : start + length], best[start : start + length]
        run, t = 0, int(length) - 1
        for j in range(int(length)):
            run = run + 1 if ok[j] and (run == 0 or cls[j] == cls[j - 1]) else int(ok[j])
            if run >= consecutive:
                t = j
                break
        predictions[i], steps[i] = int(cls[t]), t + 1
    return predictions, steps


def decide_fraction(post: Posteriors, fraction: float) -> Decisions:
    """Answer after ``ceil(fraction · T)`` steps (at least one)."""
    steps = np.clip(np.ceil(fraction * post.lengths).astype(np.int64), 1, post.lengths)
    return post.at(steps).argmax(axis=1), steps


def decide_full_clip(post: Posteriors) -> Decisions:
    return post.at(post.lengths).argmax(axis=1), post.lengths.copy()


def score(post: Posteriors, decisions: Decisions) -> tuple[float, float, float]:
    """Accuracy, earliness and their harmonic mean of ``decisions`` on ``post``'s clips."""
    predictions, steps = decisions
    accuracy = float(np.mean(predictions == post.labels))
    earliness = float(np.mean(steps / post.lengths))
    return accuracy, earliness, harmonic_mean(accuracy, earliness)


@dataclass
class TunedRules:
    """The rules' parameters, tuned on out-of-fold training posteriors (``rules.json``)."""

    threshold: float
    fraction: float
    consecutive_threshold: float
    consecutive: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def tune_rules(oof: Posteriors, untuned: list[str] | None = None) -> TunedRules:
    """Each rule's parameter with the best HM on ``oof`` (ties: the first in grid order).
    A rule whose every grid value scores the same HM (there is nothing to tune: the first
    value is kept) is named, with that HM, in ``untuned`` when it is given."""
    found = untuned if untuned is not None else []
    pairs = [(float(v), c) for c in CONSECUTIVE for v in THRESHOLDS]
    grids = ([(float(v),) for v in THRESHOLDS], [(float(v),) for v in FRACTIONS], pairs)
    deciders = (decide_threshold, decide_fraction, decide_threshold)
    threshold, fraction, consecutive = (
        _best(oof, grid, decide, name, found)
        for grid, decide, name in zip(grids, deciders, TUNED_RULES)
    )
    return TunedRules(threshold[0], fraction[0], consecutive[0], int(consecutive[1]))


def tune(post: Posteriors, grid: list[tuple], decide: Any) -> tuple[tuple, list[float]]:
    """The parameters of ``grid`` whose decisions reach the best HM on ``post`` (ties: the
    first), and every point's HM: the one tuning loop of every rule."""
    scores = [score(post, decide(post, *params))[2] for params in grid]
    return grid[int(np.argmax(scores))], scores


def tune_rule(post: Posteriors, rule: str = "threshold") -> float:
    """The parameter of ``rule``'s grid (``"threshold"`` or ``"fixed_fraction"``) with the
    best HM on ``post`` (ties: the first)."""
    grid, decide = RULE_GRIDS[rule]
    return tune(post, [(float(v),) for v in grid], decide)[0][0]


def _best(post: Posteriors, grid: list[tuple], decide: Any, name: str, flat: list[str]) -> tuple:
    best, scores = tune(post, grid, decide)
    if max(scores) - min(scores) <= 1e-12:
        flat.append(
            f"{name}: every value of its grid scores HM {scores[0]:.3f} on the training "
            f"posteriors; left untuned at {', '.join(map(str, grid[0]))}"
        )
    return best


RULE_GRIDS: dict[str, tuple[np.ndarray, Any]] = {
    "threshold": (THRESHOLDS, decide_threshold),
    "fixed_fraction": (FRACTIONS, decide_fraction),
}
"""The one-parameter rules a posterior model is chosen by, with their grids."""


def rule_decisions(rules: TunedRules, post: Posteriors) -> dict[str, tuple[Decisions, dict]]:
    """Each rule's decisions on ``post`` with its tuned parameters."""
    return {
        "full_clip": (decide_full_clip(post), {}),
        "threshold": (decide_threshold(post, rules.threshold), {"threshold": rules.threshold}),
        "fixed_fraction": (decide_fraction(post, rules.fraction), {"fraction": rules.fraction}),
        "consecutive": (
            decide_threshold(post, rules.consecutive_threshold, rules.consecutive),
            {"threshold": rules.consecutive_threshold, "consecutive": rules.consecutive},
        ),
    }


def rule_reports(rules: TunedRules, post: Posteriors, test: FeatureStore) -> dict[str, Any]:
    """The metrics report of every rule on ``test`` (whose posteriors are ``post``)."""
    reports = {}
    for name, ((predictions, steps), parameters) in rule_decisions(rules, post).items():
        report = early_classification_report(
            predictions, test.labels, steps, test.lengths, test.class_names, test.steps_per_second
        )
        reports[name] = {**report, "parameters": parameters}
    return reports


def rule_curves(post: Posteriors) -> dict[str, list[dict[str, float]]]:
    """Accuracy-vs-earliness curves: sweeping θ (threshold) and x (fixed fraction)."""
    curves: dict[str, list[dict[str, float]]] = {}
    for name, grid, decide in (
        ("threshold", THRESHOLDS, decide_threshold),
        ("fixed_fraction", FRACTIONS, decide_fraction),
    ):
        curves[name] = []
        for value in grid:
            accuracy, earliness, hm = score(post, decide(post, float(value)))
            curves[name].append(
                {
                    "parameter": float(value),
                    "accuracy": accuracy,
                    "earliness": earliness,
                    "harmonic_mean": hm,
                }
            )
    return curves


def evaluate_baselines(
    train: FeatureStore, test: FeatureStore, seed: int = 0, aeon: bool = True
) -> dict[str, dict[str, Any]]:
    """Cross-fit the default posterior model on ``train``, tune every rule on its
    out-of-fold posteriors, and report each on ``test`` (plus aeon's when importable). A
    rule left untuned is said in one line (stderr)."""
    from avemotion.posterior import cross_fit

    fitted, untuned = cross_fit(train), []
    rules = tune_rules(fitted.posteriors, untuned)
    for line in untuned:
        print(line, file=sys.stderr, flush=True)
    reports = rule_reports(rules, fitted.model.posteriors(test), test)
    if aeon:
        from avemotion.stopping.aeon import aeon_available, evaluate_aeon_baselines

        if aeon_available():
            reports.update(evaluate_aeon_baselines(train, test, seed=seed))
    return reports
