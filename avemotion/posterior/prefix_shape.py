"""Posterior models that keep the *shape* of a prefix, not only its mean.

Two of them: :class:`PrefixShapeSoftmax` (below) and :class:`PrefixNearestNeighbour`
(1-NN distances to the training clips' prefixes, see its docstring).

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

import numpy as np

from avemotion.posterior.models import POSTERIOR_MODELS, Posteriors
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


def segment_means(frames: np.ndarray, points: int) -> np.ndarray:
    """``[T, points, d]``: for every prefix length ``t``, the means of the prefix cut into
    ``points`` equal segments ``[k·t/points, (k+1)·t/points)`` (step ``j`` covering
    ``[j, j+1)``). A segment shorter than a step takes the value of the step it lies in."""
    x = np.asarray(frames, dtype=np.float64)
    length = len(x)
    cumulative = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
    t = np.arange(1, length + 1, dtype=np.float64)
    bounds = t[:, None] * np.arange(points + 1)[None, :] / points  # [T, points + 1]
    whole = np.minimum(np.floor(bounds).astype(np.int64), length - 1)
    fraction = bounds - whole  # 1.0 exactly when a bound sits on step T's end
    at = cumulative[whole] + fraction[..., None] * x[whole]  # cumulative sum at each bound
    return np.diff(at, axis=1) * (points / t)[:, None, None]


def prefix_features(frames: np.ndarray, points: int) -> np.ndarray:
    """``[T, n_features]`` float32: row ``t-1`` describes the prefix of ``t`` steps
    (segment means, then running std and last step when ``d ≤ EXTRAS_MAX_DIM``, then
    ``log t``)."""
    x = np.asarray(frames, dtype=np.float64)
    length = len(x)
    t = np.arange(1, length + 1, dtype=np.float64)[:, None]
    columns = [segment_means(x, points).reshape(length, -1)]
    if x.shape[1] <= EXTRAS_MAX_DIM:
        mean = np.cumsum(x, axis=0) / t
        columns += [np.sqrt(np.maximum(np.cumsum(x * x, axis=0) / t - mean * mean, 0.0)), x]
    return np.hstack([*columns, np.log(t)]).astype(np.float32)


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
    scale = np.exp(np.asarray(log_scales)[step_buckets(steps, len(log_scales))])
    return Posteriors.from_logits(logits * scale[:, None].astype(np.float32), lengths, labels)


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

    def fit(
        self, store: FeatureStore, init: list[SoftmaxRegression] | None = None
    ) -> PrefixShapeSoftmax:
        """Fit one regression per bucket on every prefix of every clip (``init``: a model
        list fitted on similar data, e.g. all folds, as a warm start); the calibration is
        left as it is."""
        if self.points is None:
            self.points = default_points(store.dim)
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
        models = self._fitted()
        features = store_features(store, int(self.points or 0))
        steps = np.concatenate([np.arange(1, n + 1) for n in store.lengths])
        buckets = step_buckets(steps, len(models))
        logits = np.empty((len(features), store.n_classes), np.float32)
        for b in np.unique(buckets):
            logits[buckets == b] = models[b].logits(features[buckets == b])
        return logits

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
        return model

    def _fitted(self) -> list[SoftmaxRegression]:
        if self.model is None:
            raise RuntimeError("posterior model: fit() it first")
        return self.model


MISSING_CLASS_GAP = 10.0
"""A class with no training clip sits this far (mean squared distance) behind the nearest."""


class PrefixNearestNeighbour(BucketCalibrated):
    """1-NN on prefixes: the logit of class ``c`` after ``t`` steps is minus the mean
    squared distance (per step and dim, standardised) from ``x_1..x_t`` to the first ``t``
    steps of the nearest training clip of class ``c``, times a scale fitted out of fold
    for each bucket of prefix lengths (which sets how sharp the evidence is at each ``t``).

    It keeps the whole shape, the posterior counterpart of aeon's 1-NN early classifiers.
    Training clips shorter than ``t`` are padded with their last step, as aeon pads them.
    Causal: the distance after ``t`` steps reads steps ``1..t`` only. Cost: a distance to
    every training clip at every step (``n_train · T · d`` per clip, as batched dot
    products), and the training clips are saved with the model.
    """

    name = "prefix-nearest-neighbour"

    def __init__(self) -> None:
        self.panel: np.ndarray | None = None
        self.train_labels = np.empty(0, np.int64)
        self.n_classes = 0
        self.center = np.empty(0, np.float32)
        self.scale = np.empty(0, np.float32)
        self.log_scales = np.zeros(1)
        self.norms = np.empty((0, 0), np.float32)

    def fit(self, store: FeatureStore, init: object = None) -> PrefixNearestNeighbour:
        """Keep the standardised training clips (``init`` is ignored: nothing to warm-start)."""
        frames = np.asarray(
            store.frames[
                np.concatenate([np.arange(o, o + n) for o, n in zip(store.offsets, store.lengths)])
            ],
            dtype=np.float64,
        )
        self.center = frames.mean(axis=0).astype(np.float32)
        self.scale = (frames.std(axis=0) + 1e-6).astype(np.float32)
        length = int(store.lengths.max())
        panel = np.empty((store.n_clips, length, store.dim), np.float32)
        for i in range(store.n_clips):
            x = self._standardise(store.clip(i).frames)
            panel[i, : len(x)], panel[i, len(x) :] = x, x[-1]
        self.panel, self.train_labels = panel, store.labels.copy()
        self.n_classes = store.n_classes
        self.norms = (panel * panel).sum(axis=2)
        return self

    def _standardise(self, frames: np.ndarray) -> np.ndarray:
        return ((np.asarray(frames, np.float32) - self.center) / self.scale).astype(np.float32)

    def clip_logits(self, frames: np.ndarray) -> np.ndarray:
        """``[T, n_classes]`` uncalibrated logits of every prefix of one clip."""
        if self.panel is None:
            raise RuntimeError("posterior model: fit() it first")
        x = self._standardise(frames)
        steps = len(x)
        panel, norms = self.panel[:, :steps], self.norms[:, :steps]
        if steps > panel.shape[1]:  # longer than every training clip: their last steps repeat
            extra = steps - panel.shape[1]
            panel = np.concatenate([panel, np.repeat(self.panel[:, -1:], extra, axis=1)], axis=1)
            norms = np.concatenate([norms, np.repeat(self.norms[:, -1:], extra, axis=1)], axis=1)
        # ||x_t - y_jt||² = ||x_t||² + ||y_jt||² - 2 x_t·y_jt, the last as batched matmuls
        cross = np.matmul(panel.transpose(1, 0, 2), x[:, :, None])[:, :, 0]  # [T, n_train]
        squared = (x * x).sum(axis=1)[:, None] + norms.T - 2.0 * cross
        t = np.arange(1, steps + 1, dtype=np.float64)[:, None]
        mean = np.cumsum(np.maximum(squared, 0.0), axis=0) / (t * x.shape[1])
        logits = np.full((steps, self.n_classes), np.nan)
        for c in range(self.n_classes):
            members = self.train_labels == c
            if members.any():
                logits[:, c] = -mean[:, members].min(axis=1)
        nearest = np.nanmax(logits, axis=1, keepdims=True)
        return np.where(np.isnan(logits), nearest - MISSING_CLASS_GAP, logits).astype(np.float32)

    def running_logits(self, store: FeatureStore) -> np.ndarray:
        """Uncalibrated logits of every prefix, rows in store order."""
        return np.vstack([self.clip_logits(store.clip(i).frames) for i in range(store.n_clips)])

    def arrays(self) -> dict[str, np.ndarray]:
        if self.panel is None:
            raise RuntimeError("posterior model: fit() it first")
        return {
            "panel": self.panel,
            "train_labels": self.train_labels,
            "n_classes": np.asarray(self.n_classes, np.int64),
            "center": self.center,
            "scale": self.scale,
            "log_scales": np.asarray(self.log_scales, np.float64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> PrefixNearestNeighbour:
        model = cls()
        model.panel = np.asarray(arrays["panel"], np.float32)
        model.train_labels = np.asarray(arrays["train_labels"], np.int64)
        model.n_classes = int(arrays["n_classes"])
        model.center = np.asarray(arrays["center"], np.float32)
        model.scale = np.asarray(arrays["scale"], np.float32)
        model.log_scales = np.asarray(arrays["log_scales"], np.float64)
        model.norms = (model.panel * model.panel).sum(axis=2)
        return model


POSTERIOR_MODELS[PrefixShapeSoftmax.name] = PrefixShapeSoftmax
POSTERIOR_MODELS[PrefixNearestNeighbour.name] = PrefixNearestNeighbour
"""Both registered here, not in :mod:`~avemotion.posterior.models` (which this module imports):
the package's ``__init__`` imports this module, so every loader sees it."""
