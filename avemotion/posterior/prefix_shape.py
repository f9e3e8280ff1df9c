"""Posterior models that keep the *shape* of a prefix, not only its mean.

:class:`PrefixShapeSoftmax` (below) and the bucket calibration every prefix model shares;
the 1-NN on prefixes is :mod:`~avemotion.posterior.prefix_neighbour`.

The default :class:`~avemotion.posterior.RunningMeanSoftmax` reads the running mean of a
clip's steps. That suits audio embeddings, whose steps are exchangeable evidence, but
a short univariate series (GunPoint, ArrowHead, OSULeaf, ...) is told apart by *how* it
rises and falls: a rising and a falling ramp have the same mean. Here the features of a
prefix ``x_1..x_t`` (``d`` dims each) are

- its piecewise aggregate approximation: the prefix cut into ``points`` equal segments
  (fractional boundaries, i.e. linear interpolation of the cumulative sum), each
  segment's mean — a resampling to ``points`` values per dim that averages instead of
  aliasing when ``t`` is long (ACSF1: 1460 steps). The segments' average is the running
  mean, so the mean is not repeated as a feature;
- when ``d ≤ EXTRAS_MAX_DIM``: the running standard deviation and the last step;
- ``log t``;

followed by softmax regressions (:class:`~avemotion.posterior.SoftmaxRegression`), one
per bucket of prefix lengths, each bucket's logits scaled by a factor fitted out of fold. Every feature
after ``t`` steps reads steps ``1..t`` only, so the model is causal.

Cost: one row per step of every clip, ``points · d + 2d + 1`` features (``points · d + 1``
above ``EXTRAS_MAX_DIM``). ``points`` defaults to ``clamp(256 // d, 2, 16)``: 16 values per
dim for univariate and 12-d series (19 and 217 features), 2 for 256-d audio embeddings
(513 features, twice the default model's 256; the fit's cost grows with them).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from avemotion.posterior.models import (
    POSTERIOR_MODELS,
    Posteriors,
    PosteriorStream,
    calibrated_proba,
)
from avemotion.posterior.softmax import SoftmaxRegression, fit_calibration
from avemotion.store import FeatureStore

MAX_POINTS = 16
FEATURE_BUDGET = 256
"""``points · d`` is kept near this many segment features (at least 2 points per dim)."""
BUCKETS_PER_DOUBLING = 2
"""Prefix-length buckets per doubling of ``t``, each with its own regression."""
EXTRAS_MAX_DIM = 64
"""Above this many dims the running std and the last step are left out (cost)."""


def default_points(dim: int) -> int:
    """Segments per dim: ``clamp(FEATURE_BUDGET // dim, 2, MAX_POINTS)``."""
    return int(min(MAX_POINTS, max(2, FEATURE_BUDGET // max(1, int(dim)))))


def segment_means_at(
    x: np.ndarray, cumulative: np.ndarray, steps: np.ndarray, points: int
) -> np.ndarray:
    """``[len(steps), points, d]``: for each prefix length ``t`` in ``steps``, the means of
    the prefix cut into ``points`` equal segments ``[k·t/points, (k+1)·t/points)`` (step
    ``j`` covering ``[j, j+1)``), from the steps ``x`` and their cumulative sums
    ``cumulative`` (``cumulative[j]``: the sum of the first ``j`` steps). It reads steps
    ``1..t`` only. A segment shorter than a step takes the value of the step it lies in."""
    t = np.asarray(steps, dtype=np.float64)
    bounds = t[:, None] * np.arange(points + 1)[None, :] / points  # [n, points + 1]
    # the last bound, t, is step t's end: cumulative[t - 1] + 1.0 · x[t - 1] (= cumulative[t])
    whole = np.minimum(np.floor(bounds).astype(np.int64), t.astype(np.int64)[:, None] - 1)
    fraction = bounds - whole
    at = cumulative[whole] + fraction[..., None] * x[whole]  # cumulative sum at each bound
    return np.diff(at, axis=1) * (points / t)[:, None, None]


def segment_means(frames: np.ndarray, points: int) -> np.ndarray:
    """``[T, points, d]``: :func:`segment_means_at` of every prefix of ``frames``."""
    sums = PrefixSums(np.shape(frames)[1])
    sums.extend(frames)
    return segment_means_at(sums.x, sums.cumulative, np.arange(1, len(frames) + 1), points)


class PrefixSums:
    """One clip's steps so far (float64), their cumulative sums and running sum of
    squares: what the prefix features read. :meth:`features` extends them by new steps
    and describes each new prefix; the offline features of a clip (one call with all its
    steps) and its stream (one call per step) sum in the same order. The buffers double
    when full, so a step costs O(points · d) amortised; they hold the prefix (bounded in
    the recognizer by the run's T_max, see docs/online.md)."""

    def __init__(self, dim: int) -> None:
        self.dim = int(dim)
        self.reset()

    def reset(self) -> None:
        self._x = np.empty((16, self.dim), np.float64)
        self._cumulative = np.zeros((17, self.dim), np.float64)
        self.squares = np.zeros(self.dim, np.float64)
        self.t = 0

    @property
    def x(self) -> np.ndarray:
        return self._x[: self.t]

    @property
    def cumulative(self) -> np.ndarray:
        return self._cumulative[: self.t + 1]

    def extend(self, rows: np.ndarray) -> np.ndarray:
        """Append ``rows``; return their running sums of squares (``[n, d]``)."""
        rows = np.asarray(rows, dtype=np.float64)
        n, t = len(rows), self.t
        if t + n > len(self._x):
            size = max(2 * len(self._x), t + n)
            self._x = np.vstack([self._x[:t], np.empty((size - t, self.dim))])
            self._cumulative = np.vstack(
                [self._cumulative[: t + 1], np.zeros((size - t, self.dim))]
            )
        self._x[t : t + n] = rows
        self._cumulative[t + 1 : t + n + 1] = np.cumsum(
            np.vstack([self._cumulative[t], rows]), axis=0
        )[1:]
        squares = np.cumsum(np.vstack([self.squares, rows * rows]), axis=0)[1:]
        self.squares, self.t = squares[-1].copy(), t + n
        return squares

    def features(self, rows: np.ndarray, points: int) -> np.ndarray:
        """``[n, n_features]`` float32: the features of the prefixes ending at each of
        ``rows`` (segment means, then running std and last step when
        ``d ≤ EXTRAS_MAX_DIM``, then ``log t``)."""
        start = self.t
        squares = self.extend(rows)
        steps = np.arange(start + 1, self.t + 1)
        t = steps.astype(np.float64)[:, None]
        columns = [segment_means_at(self.x, self.cumulative, steps, points).reshape(len(t), -1)]
        if self.dim <= EXTRAS_MAX_DIM:
            mean = self.cumulative[steps] / t
            std = np.sqrt(np.maximum(squares / t - mean * mean, 0.0))
            columns += [std, self.x[steps - 1]]
        return np.hstack([*columns, np.log(t)]).astype(np.float32)


def prefix_features(frames: np.ndarray, points: int) -> np.ndarray:
    """``[T, n_features]`` float32: row ``t-1`` describes the prefix of ``t`` steps
    (:meth:`PrefixSums.features`)."""
    return PrefixSums(np.shape(frames)[1]).features(frames, points)


def store_features(store: FeatureStore, points: int) -> np.ndarray:
    """Prefix features of every step of every clip, rows in store order."""
    return np.vstack([prefix_features(store.clip(i).frames, points) for i in range(store.n_clips)])


BUCKET_STARTS = np.unique(np.round(2.0 ** (np.arange(80) / BUCKETS_PER_DOUBLING))).astype(np.int64)
"""First prefix length of each bucket: 1, 2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64, ..."""


def step_buckets(steps: np.ndarray, n_buckets: int) -> np.ndarray:
    """Bucket of each prefix length ``t`` (see :data:`BUCKET_STARTS`), the last of
    ``n_buckets`` also taking every longer prefix."""
    raw = np.searchsorted(BUCKET_STARTS, np.asarray(steps, dtype=np.int64), side="right") - 1
    return np.minimum(raw, n_buckets - 1)


def fit_bucket_scales(logits: np.ndarray, lengths: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """One log-scale per bucket of prefix lengths, each minimising the NLL of
    ``softmax(logits · exp(scale))`` on that bucket's rows (held-out logits, rows clip by
    clip). One ``exp(a + b · log t)`` over every length is not enough for these models:
    on ACSF1 the nearest clip after 3 steps is right 3 times in 4 but after 1000 steps
    only half the time, and a single scale, set by the many long prefixes, flattened the
    early posteriors below every threshold."""
    steps = np.concatenate([np.arange(1, n + 1) for n in lengths])
    buckets = step_buckets(steps, len(BUCKET_STARTS))
    rows = np.repeat(labels, lengths)
    return np.array(
        [
            fit_calibration(
                logits[buckets == b], np.ones(int((buckets == b).sum())), rows[buckets == b]
            )[0]
            for b in range(int(buckets.max()) + 1)
        ]
    )


def bucket_posteriors(
    logits: np.ndarray, lengths: np.ndarray, labels: np.ndarray, log_scales: np.ndarray
) -> Posteriors:
    """Posteriors from uncalibrated logits (rows clip by clip), each row scaled by its
    bucket's ``exp(log_scales[bucket])`` (the last bucket for longer prefixes)."""
    steps = np.concatenate([np.arange(1, n + 1) for n in lengths])
    return Posteriors.from_logits(bucket_scaled(logits, steps, log_scales), lengths, labels)


def bucket_scaled(logits: np.ndarray, steps: np.ndarray, log_scales: np.ndarray) -> np.ndarray:
    """Logits rows read after ``steps`` steps, each times its bucket's ``exp(log_scales[b])``."""
    scale = np.exp(np.asarray(log_scales)[step_buckets(steps, len(log_scales))])
    return logits * scale[:, None].astype(np.float32)


class BucketCalibrated(ABC):
    """What both prefix models share: uncalibrated logits of every prefix
    (``running_logits``), scaled by one factor per prefix-length bucket fitted on held-out
    logits."""

    log_scales: np.ndarray

    @abstractmethod
    def running_logits(self, store: FeatureStore) -> np.ndarray:
        """Uncalibrated logits of every prefix of every clip, rows in store order."""

    def fit_calibration(self, logits: np.ndarray, lengths: np.ndarray, labels: np.ndarray) -> None:
        """Fit the bucket scales on held-out prefix logits (:func:`fit_bucket_scales`)."""
        self.log_scales = fit_bucket_scales(logits, lengths, labels)

    def posteriors_from_logits(
        self, logits: np.ndarray, lengths: np.ndarray, labels: np.ndarray
    ) -> Posteriors:
        return bucket_posteriors(logits, lengths, labels, self.log_scales)

    def posteriors(self, store: FeatureStore) -> Posteriors:
        return self.posteriors_from_logits(self.running_logits(store), store.lengths, store.labels)

    def calibrated(self, logits: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Probabilities of uncalibrated prefix logits read after ``steps`` steps."""
        return calibrated_proba(bucket_scaled(logits, steps, self.log_scales), steps)

    @abstractmethod
    def logit_state(self) -> Any:
        """A fresh logit state of one clip (``extend(rows)``, ``reset()``), the object the
        model's offline logits of a clip are computed with."""

    @property
    @abstractmethod
    def row_dim(self) -> int:
        """Values per step the model reads."""

    def stream(self) -> PosteriorStream:
        """The posterior of one clip step by step (see :class:`PosteriorStream`)."""
        return PosteriorStream(self, self.logit_state(), self.row_dim)


class PrefixShapeSoftmax(BucketCalibrated):
    """Softmax regressions on the shape of the prefix seen so far (see the module doc),
    one per bucket of prefix lengths, each bucket's logits rescaled by a scale fitted on
    out-of-fold logits (:func:`fit_bucket_scales`).

    One regression per bucket because the segment means of a 5-step and of a 150-step
    prefix mean different things: a single linear map over every prefix length is right
    at none (GunPoint's full series fell to chance with one). The buckets are half
    doublings of ``t`` (1, 2, 3, 4–5, 6–7, 8–10, 11–15, ...), up to the longest training clip.
    """

    name = "prefix-shape-softmax"

    def __init__(self, l2: float = 1e-2, points: int | None = None) -> None:
        if points is not None and int(points) < 1:
            raise ValueError(f"points: expected a positive integer, got {points}")
        self.l2 = float(l2)
        self.points = None if points is None else int(points)
        self.model: list[SoftmaxRegression] | None = None
        self.log_scales = np.zeros(1)
        self.dim: int | None = None

    def fit(
        self, store: FeatureStore, init: list[SoftmaxRegression] | None = None
    ) -> PrefixShapeSoftmax:
        """Fit one regression per bucket on every prefix of every clip (``init``: a model
        list fitted on similar data, e.g. all folds, as a warm start); the calibration is
        left as it is."""
        if self.points is None:
            self.points = default_points(store.dim)
        self.dim = store.dim
        n_buckets = int(step_buckets(np.array([store.lengths.max()]), 10**9)[0]) + 1
        if init is not None:
            n_buckets = min(n_buckets, len(init))
        features = store_features(store, self.points)
        steps = np.concatenate([np.arange(1, n + 1) for n in store.lengths])
        buckets = step_buckets(steps, n_buckets)
        labels = np.repeat(store.labels, store.lengths)
        self.model = [
            SoftmaxRegression(l2=self.l2).fit(
                features[buckets == b],
                labels[buckets == b],
                store.n_classes,
                init=None if init is None else init[b],
            )
            for b in range(n_buckets)
        ]
        return self

    def running_logits(self, store: FeatureStore) -> np.ndarray:
        """Uncalibrated logits of every prefix, rows in store order (the name the default
        model uses, which :func:`~avemotion.posterior.crossfit.cross_fit` reads)."""
        features = store_features(store, int(self.points or 0))
        steps = np.concatenate([np.arange(1, n + 1) for n in store.lengths])
        return self.bucket_logits(features, steps)

    def bucket_logits(self, features: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Uncalibrated logits of prefix features, each row through its bucket's regression."""
        models = self._fitted()
        buckets = step_buckets(steps, len(models))
        logits = np.empty((len(features), int(models[0].bias.shape[0])), np.float32)
        for b in np.unique(buckets):
            logits[buckets == b] = models[b].logits(features[buckets == b])
        return logits

    @property
    def row_dim(self) -> int:
        """``d``: recorded by ``fit``, else read off the feature count (see the module doc)."""
        if self.dim is not None:
            return self.dim
        n, points = len(self._fitted()[0].mean) - 1, int(self.points or 0)
        with_extras = n // (points + 2)
        if with_extras * (points + 2) == n and with_extras <= EXTRAS_MAX_DIM:
            return with_extras
        return n // points

    def logit_state(self) -> ShapeLogits:
        return ShapeLogits(self)

    def arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            f"bucket{b}_{key}": value
            for b, model in enumerate(self._fitted())
            for key, value in model.arrays().items()
        }
        return {
            **arrays,
            "buckets": np.asarray(len(self._fitted()), np.int64),
            "log_scales": np.asarray(self.log_scales, np.float64),
            "l2": np.asarray(self.l2),
            "points": np.asarray(self.points, np.int64),
            **({} if self.dim is None else {"dim": np.asarray(self.dim, np.int64)}),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> PrefixShapeSoftmax:
        model = cls(l2=float(arrays["l2"]), points=int(arrays["points"]))
        model.model = [
            SoftmaxRegression.from_arrays(
                {k: arrays[f"bucket{b}_{k}"] for k in ("mean", "std", "weight", "bias")}, model.l2
            )
            for b in range(int(arrays["buckets"]))
        ]
        model.log_scales = np.asarray(arrays["log_scales"], np.float64)
        model.dim = int(arrays["dim"]) if "dim" in arrays else None
        return model

    def _fitted(self) -> list[SoftmaxRegression]:
        if self.model is None:
            raise RuntimeError("posterior model: fit() it first")
        return self.model


class ShapeLogits:
    """The prefix-shape model's logit state of one clip: its :class:`PrefixSums`."""

    def __init__(self, model: PrefixShapeSoftmax) -> None:
        self.model, self.sums = model, PrefixSums(model.row_dim)

    def reset(self) -> None:
        self.sums.reset()

    def extend(self, rows: np.ndarray) -> np.ndarray:
        start = self.sums.t
        features = self.sums.features(rows, int(self.model.points or 0))
        return self.model.bucket_logits(features, np.arange(start + 1, self.sums.t + 1))


POSTERIOR_MODELS[PrefixShapeSoftmax.name] = PrefixShapeSoftmax
"""Registered here, not in :mod:`~avemotion.posterior.models` (which this module imports):
the package's ``__init__`` imports this module, so every loader sees it."""
