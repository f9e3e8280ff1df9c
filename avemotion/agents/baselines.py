"""Non-RL baselines behind one interface: fit on training speakers, decide on test clips.

Each baseline maps a store to per-clip ``(prediction, steps_observed)``; the same metrics as
the RL agents then apply. The "temporal model" they share is a softmax regression on the
running mean of the frames (plus the log of the number of steps seen), trained on every
prefix of every training clip.

- ``full_clip``: a softmax regression on whole-clip means; it always sees every step.
- ``threshold``: answer at the first step whose posterior maximum reaches θ; θ is tuned
  for the harmonic mean on out-of-fold posteriors of the *training* speakers (folds
  grouped by speaker), then the model is refitted on all training speakers.
- ``fixed_fraction``: answer at ``ceil(x · T)`` steps with the same model; x is tuned the
  same way.
- ``aeon_probability_threshold`` and ``aeon_teaser``: see :mod:`avemotion.agents.baselines_aeon`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from avemotion.agents.metrics import early_classification_report, harmonic_mean
from avemotion.store import FeatureStore

THRESHOLDS = np.round(np.concatenate([np.linspace(0.2, 0.9, 15), np.linspace(0.92, 0.995, 6)]), 4)
FRACTIONS = np.round(np.linspace(0.05, 1.0, 20), 4)


class SoftmaxRegression:
    """Multinomial logistic regression with L2, fitted by L-BFGS on standardised inputs."""

    def __init__(self, l2: float = 1e-3, max_iter: int = 200) -> None:
        self.l2, self.max_iter = l2, max_iter

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        n_classes: int,
        init: SoftmaxRegression | None = None,
    ) -> SoftmaxRegression:
        """Fit on rows ``x`` and labels ``y``; ``init`` (a model fitted on similar data, e.g.
        all folds) is a warm start, which needs far fewer L-BFGS iterations."""
        x = np.asarray(x, dtype=np.float32)
        self.mean, self.std = x.mean(axis=0), x.std(axis=0) + 1e-6
        xt = torch.from_numpy((x - self.mean) / self.std)
        yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
        if init is not None:
            self.weight = init.weight.detach().clone().requires_grad_()
            self.bias = init.bias.detach().clone().requires_grad_()
        else:
            generator = torch.Generator().manual_seed(0)
            self.weight = (
                torch.randn(x.shape[1], n_classes, generator=generator) * 0.01
            ).requires_grad_()
            self.bias = torch.zeros(n_classes, requires_grad=True)
        optimiser = torch.optim.LBFGS(
            [self.weight, self.bias], max_iter=self.max_iter, line_search_fn="strong_wolfe"
        )

        def closure() -> torch.Tensor:
            optimiser.zero_grad()
            loss = (
                torch.nn.functional.cross_entropy(xt @ self.weight + self.bias, yt)
                + self.l2 * (self.weight**2).sum()
            )
            loss.backward()
            return loss

        optimiser.step(closure)
        return self

    def logits(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            xt = torch.from_numpy(
                ((np.asarray(x, dtype=np.float32) - self.mean) / self.std).astype(np.float32)
            )
            return (xt @ self.weight + self.bias).numpy()

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return torch.softmax(torch.from_numpy(self.logits(x)), dim=1).numpy()


def fit_calibration(
    logits: np.ndarray, steps: np.ndarray, labels: np.ndarray
) -> tuple[float, float]:
    """``(a, b)`` minimising the NLL of ``softmax(logits · exp(a + b · log steps))``.

    A softmax regression on running means is over-confident after one step and
    under-confident after many; a scale growing with the steps seen fixes both (for
    i.i.d. Gaussian frames the exact log-likelihood ratio grows linearly with them).
    Fit it on held-out data.
    """
    z = torch.from_numpy(np.asarray(logits, dtype=np.float32))
    log_n = torch.from_numpy(np.log(np.asarray(steps, dtype=np.float32)))[:, None]
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    ab = torch.zeros(2, requires_grad=True)
    optimiser = torch.optim.LBFGS([ab], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(z * torch.exp(ab[0] + ab[1] * log_n), y)
        loss.backward()
        return loss

    optimiser.step(closure)
    a, b = ab.detach().tolist()
    return float(a), float(b)


def prefix_features(store: FeatureStore) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Running-mean features of every prefix of every clip: ``(features, clip, step)`` rows."""
    features, clips, steps = [], [], []
    for i in range(store.n_clips):
        frames = np.asarray(store.clip(i).frames, dtype=np.float64)
        count = np.arange(1, len(frames) + 1)
        running = np.cumsum(frames, axis=0) / count[:, None]
        features.append(np.hstack([running, np.log(count)[:, None]]).astype(np.float32))
        clips.append(np.full(len(frames), i))
        steps.append(count)
    return np.vstack(features), np.concatenate(clips), np.concatenate(steps)


def clip_means(store: FeatureStore) -> np.ndarray:
    """Whole-clip mean frame of every clip."""
    return np.stack(
        [
            np.asarray(store.clip(i).frames, dtype=np.float64).mean(axis=0)
            for i in range(store.n_clips)
        ]
    ).astype(np.float32)


@dataclass
class Posteriors:
    """Per-prefix class posteriors of a store's clips (row ``offsets[i] + t`` is step ``t + 1``)."""

    proba: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray

    def decide_threshold(self, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        confident = self.proba.max(axis=1) >= threshold
        predictions, steps = (
            np.empty(len(self.lengths), np.int64),
            np.empty(len(self.lengths), np.int64),
        )
        for i, (start, length) in enumerate(zip(self.offsets, self.lengths)):
            hits = np.flatnonzero(confident[start : start + length])
            t = int(hits[0]) if len(hits) else int(length) - 1
            predictions[i], steps[i] = int(self.proba[start + t].argmax()), t + 1
        return predictions, steps

    def decide_fraction(self, fraction: float) -> tuple[np.ndarray, np.ndarray]:
        steps = np.clip(np.ceil(fraction * self.lengths).astype(np.int64), 1, self.lengths)
        predictions = self.proba[self.offsets + steps - 1].argmax(axis=1)
        return predictions, steps


def posteriors(model: SoftmaxRegression, store: FeatureStore) -> Posteriors:
    features, _, _ = prefix_features(store)
    offsets = np.concatenate([[0], np.cumsum(store.lengths)[:-1]])
    return Posteriors(model.predict_proba(features), offsets, store.lengths.copy())


def fit_temporal_model(store: FeatureStore) -> SoftmaxRegression:
    """The per-step posterior model, fitted on every prefix of every clip of ``store``."""
    features, clips, _ = prefix_features(store)
    return SoftmaxRegression().fit(features, store.labels[clips], store.n_classes)


def _hm(
    labels: np.ndarray, lengths: np.ndarray, decisions: tuple[np.ndarray, np.ndarray]
) -> tuple[float, float, float]:
    predictions, steps = decisions
    accuracy, earliness = float(np.mean(predictions == labels)), float(np.mean(steps / lengths))
    return accuracy, earliness, harmonic_mean(accuracy, earliness)


def speaker_folds(store: FeatureStore, n_folds: int = 4) -> list[list[str]]:
    """Training speakers split into at most ``n_folds`` groups (in sorted order)."""
    speakers = store.speaker_set
    return [
        group
        for group in np.array_split(np.array(speakers, dtype=object), min(n_folds, len(speakers)))
        if len(group)
    ]


def out_of_fold_posteriors(train: FeatureStore) -> tuple[Posteriors, np.ndarray]:
    """Posteriors of every training clip from a model that did not see its speaker."""
    parts, labels = [], []
    if len(train.speaker_set) < 2:
        model = fit_temporal_model(train)
        return posteriors(model, train), train.labels.copy()
    for group in speaker_folds(train):
        held = train.subset(speakers=list(group))
        rest = train.subset(exclude_speakers=list(group))
        parts.append(posteriors(fit_temporal_model(rest), held))
        labels.append(held.labels)
    offsets, total = [], 0
    for p in parts:
        offsets.append(p.offsets + total)
        total += len(p.proba)
    merged = Posteriors(
        np.vstack([p.proba for p in parts]),
        np.concatenate(offsets),
        np.concatenate([p.lengths for p in parts]),
    )
    return merged, np.concatenate(labels)


def tune(train_posteriors: Posteriors, labels: np.ndarray, kind: str) -> float:
    """The threshold (``kind="threshold"``) or fraction with the best training HM."""
    grid, decide = (
        (THRESHOLDS, train_posteriors.decide_threshold)
        if kind == "threshold"
        else (FRACTIONS, train_posteriors.decide_fraction)
    )
    scores = [_hm(labels, train_posteriors.lengths, decide(float(v)))[2] for v in grid]
    return float(grid[int(np.argmax(scores))])


@dataclass
class FittedBaselines:
    """Everything the non-RL baselines learned from the training speakers."""

    full_clip: SoftmaxRegression
    temporal: SoftmaxRegression
    threshold: float
    fraction: float


def fit_baselines(train: FeatureStore) -> FittedBaselines:
    """Fit the full-clip and temporal models and tune θ and x on the training speakers."""
    oof, labels = out_of_fold_posteriors(train)
    full = SoftmaxRegression().fit(clip_means(train), train.labels, train.n_classes)
    return FittedBaselines(
        full,
        fit_temporal_model(train),
        tune(oof, labels, "threshold"),
        tune(oof, labels, "fraction"),
    )


def baseline_decisions(
    fitted: FittedBaselines, test: FeatureStore
) -> dict[str, tuple[np.ndarray, np.ndarray, dict[str, Any]]]:
    """Per-clip ``(predictions, steps, parameters)`` of each built-in baseline on ``test``."""
    post = posteriors(fitted.temporal, test)
    full_predictions = fitted.full_clip.predict_proba(clip_means(test)).argmax(axis=1)
    return {
        "full_clip": (full_predictions, test.lengths.copy(), {}),
        "threshold": (*post.decide_threshold(fitted.threshold), {"threshold": fitted.threshold}),
        "fixed_fraction": (*post.decide_fraction(fitted.fraction), {"fraction": fitted.fraction}),
    }


def baseline_curves(
    fitted: FittedBaselines, test: FeatureStore
) -> dict[str, list[dict[str, float]]]:
    """Accuracy-vs-earliness curves on ``test``: sweeping θ (threshold) and x (fixed fraction)."""
    post = posteriors(fitted.temporal, test)
    curves: dict[str, list[dict[str, float]]] = {"threshold": [], "fixed_fraction": []}
    for name, grid, decide in (
        ("threshold", THRESHOLDS, post.decide_threshold),
        ("fixed_fraction", FRACTIONS, post.decide_fraction),
    ):
        for value in grid:
            accuracy, earliness, hm = _hm(test.labels, test.lengths, decide(float(value)))
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
    """Fit every baseline on ``train`` and report each on ``test`` (aeon ones when importable)."""
    fitted = fit_baselines(train)
    reports: dict[str, dict[str, Any]] = {}
    for name, (predictions, steps, parameters) in baseline_decisions(fitted, test).items():
        report = early_classification_report(
            predictions, test.labels, steps, test.lengths, test.class_names, test.steps_per_second
        )
        reports[name] = {**report, "parameters": parameters}
    if aeon:
        from avemotion.agents.baselines_aeon import aeon_available, evaluate_aeon_baselines

        if aeon_available():
            reports.update(evaluate_aeon_baselines(train, test, seed=seed))
    return reports
