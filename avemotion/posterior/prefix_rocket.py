"""A posterior model from aeon's MiniRocket at classification points (needs the ``aeon`` extra).

aeon's own early classifiers (ProbabilityThreshold, TEASER) fit one classifier per
classification point on the series truncated there, MiniRocket + ridge being their
strongest estimator on short series. :class:`PrefixMiniRocket` is that classifier as a
posterior model, so that every stopping rule (our DQN included) can read it:

- the classification points are the first prefix lengths of the buckets every prefix
  model calibrates by (:data:`~avemotion.posterior.prefix_shape.BUCKET_STARTS`: 1, 2, 3,
  4, 6, 8, 11, 16, ...), up to the longest training clip;
- at point ``p`` a MiniRocket transform (aeon's defaults, a fixed seed) is fitted on the
  training clips cut to ``p`` steps, followed by a standard scaling and a ridge
  classifier with its penalty chosen by leave-one-out (aeon's ``MiniRocketClassifier``
  pipeline), whose one-vs-rest scores are the logits;
- after ``t`` steps the posterior is that of the last point ``p ≤ t``, read from steps
  ``1..p``: causal, and constant between points, which keeps the cost at one transform
  per point and clip instead of one per step (a stream keeps the steps up to the last
  point only, :class:`RocketLogits`);
- each bucket's logits are scaled by a factor fitted out of fold, as for the other
  prefix models.

A prefix shorter than MiniRocket's 9-step minimum, or a training clip shorter than the
point, is padded with its last step (as aeon pads). The fitted transform and ridge are
saved as plain arrays; loading rebuilds aeon's transform from them without refitting.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from avemotion.posterior.models import POSTERIOR_MODELS
from avemotion.posterior.prefix_shape import BUCKET_STARTS, BucketCalibrated, step_buckets
from avemotion.store import FeatureStore

MIN_STEPS = 9
"""MiniRocket's shortest series (its kernels have 9 taps)."""
RIDGE_ALPHAS = np.logspace(-3, 3, 10)
"""The ridge penalties searched by leave-one-out, as in aeon's ``MiniRocketClassifier``."""
ROCKET_MAX_DIM = 64
"""``--posterior auto`` tries this model on stores of at most this many dims: series, not
embeddings. MiniRocket's kernels each read at most 9 channels, so over hundreds of
embedding dims (steps that are exchangeable evidence, read best by their running mean)
they see a random few, and its fit would be most of a run's setup."""
PARAMETERS = (
    "channels_per_combination",
    "channel_indices",
    "dilations",
    "features_per_dilation",
    "biases",
)
"""MiniRocket's fitted ``parameters`` tuple, field by field."""


def rocket_available() -> bool:
    """Whether aeon (the ``aeon`` extra) is installed. A broken install is not "absent":
    it fails where MiniRocket is imported, instead of silently leaving the candidate out."""
    return importlib.util.find_spec("aeon") is not None


def prefix_panel(clips: list[np.ndarray], point: int) -> np.ndarray:
    """``[n, d, max(point, MIN_STEPS)]`` float32: each clip's first ``point`` steps, a
    shorter clip or prefix padded with its last step."""
    width = max(int(point), MIN_STEPS)
    panel = np.empty((len(clips), clips[0].shape[1], width), np.float32)
    for i, frames in enumerate(clips):
        cut = np.asarray(frames[: min(int(point), len(frames))], np.float32)
        panel[i, :, : len(cut)] = cut.T
        panel[i, :, len(cut) :] = cut[-1][:, None]
    return panel


class RidgeScores:
    """A ridge classifier's one-vs-rest scores over every class of the store (a class
    missing from the training clips scores one below the row's lowest)."""

    def __init__(
        self,
        scale: np.ndarray,
        coef: np.ndarray,
        intercept: np.ndarray,
        classes: np.ndarray,
        n_classes: int,
    ) -> None:
        self.scale, self.coef, self.intercept = scale, coef, intercept
        self.classes, self.n_classes = np.asarray(classes, np.int64), int(n_classes)

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, n_classes: int) -> RidgeScores:
        from sklearn.linear_model import RidgeClassifierCV

        scale = features.std(axis=0) + 1e-8
        classes = np.unique(labels)
        if len(classes) == 1:  # nothing to tell apart: that class wins
            return cls(scale, np.zeros((1, features.shape[1])), np.zeros(1), classes, n_classes)
        ridge = RidgeClassifierCV(alphas=RIDGE_ALPHAS).fit(features / scale, labels)
        coef, intercept = np.atleast_2d(ridge.coef_), np.atleast_1d(ridge.intercept_)
        if len(classes) == 2:  # one score s for the second class: the pair is (−s, s)
            coef, intercept = np.vstack([-coef, coef]), np.concatenate([-intercept, intercept])
        return cls(scale, coef, intercept, classes, n_classes)

    def logits(self, features: np.ndarray) -> np.ndarray:
        scores = (features / self.scale) @ self.coef.T + self.intercept
        out = np.empty((len(features), self.n_classes))
        out[:] = (scores.min(axis=1) - 1.0)[:, None]
        out[:, self.classes] = scores
        return out.astype(np.float32)

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {
            f"{prefix}scale": self.scale,
            f"{prefix}coef": self.coef,
            f"{prefix}intercept": self.intercept,
            f"{prefix}classes": self.classes,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str, n_classes: int) -> RidgeScores:
        return cls(
            *(np.asarray(arrays[prefix + k]) for k in ("scale", "coef", "intercept", "classes")),
            n_classes,
        )


def minirocket_class() -> Any:
    """aeon's MiniRocket transform, or one clear line when the extra is missing."""
    try:
        from aeon.transformations.collection.convolution_based import MiniRocket
    except ImportError:
        raise ImportError(
            "posterior prefix-minirocket: needs aeon (pip install -e '.[aeon]')"
        ) from None
    return MiniRocket


def fitted_minirocket(parameters: tuple[np.ndarray, ...], seed: int) -> Any:
    """aeon's MiniRocket in the state its ``fit`` leaves, from its ``parameters``."""
    transform = minirocket_class()(random_state=seed)
    transform.parameters = tuple(parameters)
    transform.n_kernels_ = transform.n_kernels
    transform._n_jobs = 1
    transform.is_fitted = True
    return transform


class PrefixMiniRocket(BucketCalibrated):
    """MiniRocket + ridge at each classification point (see the module doc)."""

    name = "prefix-minirocket"

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)
        self.transforms: list[Any] | None = None
        self.ridges: list[RidgeScores] = []
        self.n_classes = 0
        self.dim = 0
        self.log_scales = np.zeros(1)

    def fit(self, store: FeatureStore, init: object = None) -> PrefixMiniRocket:
        """Fit a transform and a ridge at every point up to the longest clip (``init`` is
        ignored: nothing to warm-start)."""
        minirocket = minirocket_class()
        clips = [np.asarray(store.clip(i).frames, np.float32) for i in range(store.n_clips)]
        n_points = int(step_buckets(np.array([store.lengths.max()]), 10**9)[0]) + 1
        self.n_classes, self.transforms, self.ridges = store.n_classes, [], []
        self.dim = store.dim
        for point in BUCKET_STARTS[:n_points]:
            panel = prefix_panel(clips, int(point))
            transform = minirocket(random_state=self.seed).fit(panel)
            features = np.asarray(transform.transform(panel), np.float64)
            self.transforms.append(transform)
            self.ridges.append(RidgeScores.fit(features, store.labels, store.n_classes))
        return self

    def store_logits(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        """Per clip, ``[T, n_classes]`` uncalibrated logits (one transform per point)."""
        if self.transforms is None:
            raise RuntimeError("posterior model: fit() it first")
        out = [np.empty((len(c), self.n_classes), np.float32) for c in clips]
        buckets = [step_buckets(np.arange(1, len(c) + 1), len(self.transforms)) for c in clips]
        for b in range(len(self.transforms)):
            reached = [i for i, bucket in enumerate(buckets) if (bucket == b).any()]
            if not reached:
                continue
            logits = self.point_logits(b, [clips[i] for i in reached])
            for row, i in zip(logits, reached):
                out[i][buckets[i] == b] = row
        return out

    def point_logits(self, point: int, clips: list[np.ndarray]) -> np.ndarray:
        """``[n, n_classes]`` uncalibrated logits of the clips' first ``BUCKET_STARTS[point]``
        steps, through that point's transform and ridge."""
        assert self.transforms is not None
        panel = prefix_panel(clips, int(BUCKET_STARTS[point]))
        features = np.asarray(self.transforms[point].transform(panel), np.float64)
        return self.ridges[point].logits(features)

    @property
    def row_dim(self) -> int:
        if self.transforms is None:
            raise RuntimeError("posterior model: fit() it first")
        if not self.dim:
            raise ValueError(
                f"posterior {self.name}: the saved model records no row width; refit the run to stream it"
            )
        return int(self.dim)

    def logit_state(self) -> RocketLogits:
        return RocketLogits(self)

    def running_logits(self, store: FeatureStore) -> np.ndarray:
        """Uncalibrated logits of every prefix, rows in store order."""
        clips = [np.asarray(store.clip(i).frames, np.float32) for i in range(store.n_clips)]
        return np.vstack(self.store_logits(clips))

    def arrays(self) -> dict[str, np.ndarray]:
        if self.transforms is None:
            raise RuntimeError("posterior model: fit() it first")
        arrays: dict[str, np.ndarray] = {}
        for b, (transform, ridge) in enumerate(zip(self.transforms, self.ridges)):
            arrays.update(
                {f"point{b}_{k}": np.asarray(v) for k, v in zip(PARAMETERS, transform.parameters)}
            )
            arrays.update(ridge.arrays(f"point{b}_"))
        return {
            **arrays,
            "points": np.asarray(len(self.transforms), np.int64),
            "n_classes": np.asarray(self.n_classes, np.int64),
            "dim": np.asarray(self.dim, np.int64),
            "seed": np.asarray(self.seed, np.int64),
            "log_scales": np.asarray(self.log_scales, np.float64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> PrefixMiniRocket:
        model = cls(seed=int(arrays["seed"]))
        model.n_classes = int(arrays["n_classes"])
        count = int(arrays["points"])
        model.transforms = [
            fitted_minirocket(tuple(arrays[f"point{b}_{k}"] for k in PARAMETERS), model.seed)
            for b in range(count)
        ]
        model.ridges = [
            RidgeScores.from_arrays(arrays, f"point{b}_", model.n_classes) for b in range(count)
        ]
        model.log_scales = np.asarray(arrays["log_scales"], np.float64)
        model.dim = int(arrays["dim"]) if "dim" in arrays else 0  # 0: saved before it was
        return model


class RocketLogits:
    """MiniRocket's logit state of one clip: the steps up to the last classification
    point (no more: after it the logits stay that point's) and the logits of the last
    point reached. A step costs nothing but at a point ``p``, where it costs one
    transform of ``p`` steps (``p ≤`` the longest training clip)."""

    def __init__(self, model: PrefixMiniRocket) -> None:
        assert model.transforms is not None
        self.model, self.points = model, len(model.transforms)
        self.last_point = int(BUCKET_STARTS[self.points - 1])
        self.reset()

    def reset(self) -> None:
        self.frames: list[np.ndarray] = []
        self.current = np.zeros(self.model.n_classes, np.float32)
        self.t = 0

    def extend(self, rows: np.ndarray) -> np.ndarray:
        """``[n, n_classes]`` uncalibrated logits after each of ``rows``."""
        out = np.empty((len(rows), self.model.n_classes), np.float32)
        for k, row in enumerate(np.asarray(rows, np.float32)):
            self.t += 1
            if self.t <= self.last_point:
                self.frames.append(row)
                point = int(step_buckets(np.array([self.t]), self.points)[0])
                if BUCKET_STARTS[point] == self.t:
                    self.current = self.model.point_logits(point, [np.stack(self.frames)])[0]
            out[k] = self.current
        return out


POSTERIOR_MODELS[PrefixMiniRocket.name] = PrefixMiniRocket
