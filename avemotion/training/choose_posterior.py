"""The run's posterior model, chosen on the training speakers only: each candidate's
out-of-fold posteriors scored by the HM the threshold or fixed fraction reaches on them,
each rule's parameter tuned by inner cross-validation (docs/agents.md, "Stage 1")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from avemotion.folds import make_folds
from avemotion.posterior.candidates import default_candidates, model_maker
from avemotion.posterior.crossfit import (
    CROSS_FIT_FOLDS,
    CrossFit,
    cross_fit,
    subset_posteriors,
)
from avemotion.posterior.models import POSTERIOR_MODELS, Posteriors
from avemotion.stopping.rules import RULE_GRIDS, score, tune_rule
from avemotion.store import FeatureStore

SELECTION_RULES = ("threshold", "fixed_fraction")
"""The rules a candidate is scored by (the best of them counts)."""


def tune_threshold(post: Posteriors) -> float:
    """:func:`~avemotion.stopping.rules.tune_rule` for the threshold."""
    return tune_rule(post, "threshold")


def rule_score(
    post: Posteriors, held_out: Sequence[np.ndarray], rule: str = "threshold"
) -> dict[str, Any]:
    """``rule`` on out-of-fold posteriors, its parameter tuned on the other folds for each
    fold's clips (``held_out``: each fold's clip indices, :meth:`~avemotion.folds.Folds.held_out`):
    accuracy, earliness, harmonic mean, and the parameter tuned on every clip (what a run
    would use)."""
    _, decide = RULE_GRIDS[rule]
    predictions = np.empty(len(post.lengths), np.int64)
    observed = np.empty(len(post.lengths), np.int64)
    for held in held_out:
        rest = np.setdiff1d(np.arange(len(post.lengths)), held)
        # one fold: nothing to tune on but the clips themselves
        value = tune_rule(subset_posteriors(post, rest) if len(rest) else post, rule)
        predictions[held], observed[held] = decide(subset_posteriors(post, held), value)
    accuracy, earliness, hm = score(post, (predictions, observed))
    return {
        "accuracy": accuracy,
        "earliness": earliness,
        "harmonic_mean": hm,
        "parameter": tune_rule(post, rule),
    }


def threshold_score(post: Posteriors, held_out: Sequence[np.ndarray]) -> dict[str, Any]:
    """:func:`rule_score` of the threshold, its θ also as ``threshold``."""
    scored = rule_score(post, held_out, "threshold")
    return {**scored, "threshold": scored["parameter"]}


def candidate_score(
    post: Posteriors,
    held_out: Sequence[np.ndarray],
    rules: Sequence[str] = SELECTION_RULES,
) -> dict[str, Any]:
    """Every rule's :func:`rule_score`, and the best: ``{"harmonic_mean", "rule", <rule>: {...}}``."""
    scored = {rule: rule_score(post, held_out, rule) for rule in rules}
    best = max(rules, key=lambda rule: (scored[rule]["harmonic_mean"], -rules.index(rule)))
    return {"harmonic_mean": scored[best]["harmonic_mean"], "rule": best, **scored}


def select_posterior_model(
    store: FeatureStore,
    candidates: Sequence[str] | None = None,
    n_folds: int = CROSS_FIT_FOLDS,
    margin: float = 0.0,
    rules: Sequence[str] = SELECTION_RULES,
    l2: float | None = None,
) -> tuple[str, CrossFit, dict[str, dict[str, Any]]]:
    """Choose the posterior model for ``store`` (the training speakers only).

    Each candidate (a name of :data:`~avemotion.posterior.POSTERIOR_MODELS`, default
    settings but for ``l2``, the softmax models' L2 penalty when given; by default
    :func:`default_candidates`) is cross-fitted with
    :func:`cross_fit` over the folds :func:`~avemotion.folds.make_folds` makes of
    ``n_folds`` and scored by :func:`candidate_score` on its out-of-fold posteriors: the
    best harmonic mean of the ``rules`` (``("threshold",)`` scores by the threshold alone).
    ``candidates[0]`` is the default: another candidate replaces it only with a harmonic
    mean higher by more than ``margin``; among the others the best wins (ties: the
    earlier). A candidate other than the default that cannot be fitted on the store
    (``ValueError``) is left out. With a single fold nothing is held out, so the default is
    kept unscored.

    Returns ``(name, cross_fit, scores)``: the chosen name, its :class:`CrossFit` (ready
    to save and to tune the rules on), and per candidate ``{"harmonic_mean", "rule",
    "threshold": {...}, "fixed_fraction": {...}}``, each rule's ``{"accuracy",
    "earliness", "harmonic_mean", "parameter"}``; ``{"unscored": reason}`` for a
    candidate left unscored (``{}`` for every candidate when there is only one).
    """
    candidates = default_candidates(store) if candidates is None else tuple(candidates)
    if not candidates:
        raise ValueError("candidates: expected at least one posterior model name")
    unknown = [name for name in candidates if name not in POSTERIOR_MODELS]
    if unknown:
        raise ValueError(f"candidates: unknown {unknown}; known: {sorted(POSTERIOR_MODELS)}")
    bad_rules = [rule for rule in rules if rule not in RULE_GRIDS] or ([] if rules else ["none"])
    if bad_rules:
        raise ValueError(f"rules: expected some of {list(RULE_GRIDS)}, got {list(rules)}")
    default = candidates[0]
    folds = make_folds(store, n_folds)
    if len(folds) < 2 or len(candidates) == 1:
        fitted = cross_fit(store, model_maker(default, l2), folds=folds)
        why = {"unscored": "1 fold: no clip is held out"} if len(candidates) > 1 else {}
        return default, fitted, {name: dict(why) for name in candidates}
    fits: dict[str, CrossFit] = {}
    scores: dict[str, dict[str, Any]] = {}
    held_out = folds.held_out(store)
    for name in candidates:
        try:
            fits[name] = cross_fit(store, model_maker(name, l2), folds=folds)
        except ValueError as error:
            if name == default:
                raise
            scores[name] = {"unscored": f"cannot be fitted on this store: {error}"}
            continue
        scores[name] = candidate_score(fits[name].posteriors, held_out, tuple(rules))
    others = [n for n in candidates[1:] if n in fits] or [default]
    best = max(others, key=lambda n: (scores[n]["harmonic_mean"], -candidates.index(n)))
    better = scores[best]["harmonic_mean"] > scores[default]["harmonic_mean"] + margin
    chosen = best if better else default
    return chosen, fits[chosen], scores


def selection_lines(scores: dict[str, dict[str, Any]]) -> list[str]:
    """One line per candidate left unscored, and one when every scored candidate has the
    same harmonic mean (the default then wins on the tie alone)."""
    lines = [
        f"posterior selection: {name} unscored ({score['unscored']})"
        for name, score in scores.items()
        if "unscored" in score
    ]
    scored = {name: s["harmonic_mean"] for name, s in scores.items() if "harmonic_mean" in s}
    if len(scored) > 1 and max(scored.values()) - min(scored.values()) <= 1e-12:
        first = next(iter(scored))
        lines.append(
            f"posterior selection: every candidate scores HM {scored[first]:.3f} out of "
            f"fold; {first} kept on the tie"
        )
    return lines


def choose_posterior(
    store: FeatureStore,
    agent_config: dict[str, Any],
    posterior: str = "auto",
    status: dict[str, str] | None = None,
) -> tuple[CrossFit, dict[str, Any]]:
    """The run's posterior model cross-fitted on the training speakers (``"auto"``: chosen
    by :func:`select_posterior_model`), read from the posterior cache when it holds it
    (``status["cache"]``: hit or miss); and the selection's scores (empty when not chosen)."""
    from avemotion.posterior.cache import cached_cross_fit

    folds = int(agent_config.get("frontend_folds", CROSS_FIT_FOLDS))
    l2 = float(agent_config.get("frontend_l2", 1e-2))
    candidates = default_candidates(store) if posterior == "auto" else (posterior,)

    def fit() -> tuple[CrossFit, dict[str, Any]]:
        if posterior == "auto":
            _, fitted, scores = select_posterior_model(store, candidates, n_folds=folds, l2=l2)
            return fitted, scores
        return cross_fit(store, model_maker(posterior, l2), folds), {}

    options = {"posterior": posterior, "folds": folds, "l2": l2, "candidates": list(candidates)}
    return cached_cross_fit(store, options, fit, status)


def time_says_more(scores: dict[str, Any]) -> bool:
    """Whether a posterior model's selection scores (out of fold, on the training speakers)
    put the fixed fraction above the threshold: ``stop_time_feature="auto"`` then reads time."""
    fraction = scores.get("fixed_fraction", {}).get("harmonic_mean")
    threshold = scores.get("threshold", {}).get("harmonic_mean")
    return fraction is not None and threshold is not None and fraction > threshold
