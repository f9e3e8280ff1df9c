"""The 1-NN posterior model on prefixes: distances to the training clips' first steps.

Incremental: after ``t`` steps its state is one running sum of squared distances per
training clip (:class:`NeighbourLogits`), so a step costs ``n_train · d`` whatever ``t``;
a clip's offline logits are that state extended by all its steps at once.
"""

from __future__ import annotations

import numpy as np

from avemotion.posterior.models import POSTERIOR_MODELS
from avemotion.posterior.prefix_shape import BucketCalibrated
from avemotion.store import FeatureStore

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
    every training clip at every step (``n_train · d`` per step, as batched dot products;
    the running sums of squared distances make it incremental), and the training clips
    are saved with the model.
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
        return self.logit_state().extend(frames)

    def running_logits(self, store: FeatureStore) -> np.ndarray:
        """Uncalibrated logits of every prefix, rows in store order."""
        return np.vstack([self.clip_logits(store.clip(i).frames) for i in range(store.n_clips)])

    @property
    def row_dim(self) -> int:
        return len(self.center)

    def logit_state(self) -> NeighbourLogits:
        if self.panel is None:
            raise RuntimeError("posterior model: fit() it first")
        return NeighbourLogits(self)

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


class NeighbourLogits:
    """The 1-NN's logit state of one clip: per training clip, the float32 running sum of
    squared distances (standardised) from the clip's steps so far to its own."""

    def __init__(self, model: PrefixNearestNeighbour) -> None:
        assert model.panel is not None
        self.model, self.panel = model, model.panel
        self.reset()

    def reset(self) -> None:
        self.total = np.zeros(len(self.panel), np.float32)
        self.t = 0

    def extend(self, frames: np.ndarray) -> np.ndarray:
        """``[n, n_classes]`` uncalibrated logits after each of ``frames``."""
        model = self.model
        x = model._standardise(frames)
        # a clip longer than a training clip meets that clip's last step again (padding)
        at = np.minimum(np.arange(self.t, self.t + len(x)), self.panel.shape[1] - 1)
        panel, norms = self.panel[:, at], model.norms[:, at]
        # ||x_t - y_jt||² = ||x_t||² + ||y_jt||² - 2 x_t·y_jt, the last as batched matmuls
        cross = np.matmul(panel.transpose(1, 0, 2), x[:, :, None])[:, :, 0]  # [n, n_train]
        squared = (x * x).sum(axis=1)[:, None] + norms.T - 2.0 * cross
        sums = np.cumsum(np.vstack([self.total[None], np.maximum(squared, 0.0)]), axis=0)[1:]
        t = np.arange(self.t + 1, self.t + len(x) + 1, dtype=np.float64)[:, None]
        self.total, self.t = sums[-1].copy(), self.t + len(x)
        mean = sums / (t * x.shape[1])
        logits = np.full((len(x), model.n_classes), np.nan)
        for c in range(model.n_classes):
            members = model.train_labels == c
            if members.any():
                logits[:, c] = -mean[:, members].min(axis=1)
        nearest = np.nanmax(logits, axis=1, keepdims=True)
        return np.where(np.isnan(logits), nearest - MISSING_CLASS_GAP, logits).astype(np.float32)


POSTERIOR_MODELS[PrefixNearestNeighbour.name] = PrefixNearestNeighbour
