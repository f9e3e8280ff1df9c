"""Posterior models: fitted on training speakers, they give every step of a clip its class
probabilities. A model is saved with a run (``posterior.npz``) so that evaluation and the
online recognizer read exactly the posteriors the stopping rules were tuned on."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avemotion.posterior.softmax import SoftmaxRegression, calibration_scale, fit_calibration
from avemotion.store import FeatureStore


def softmax_rows(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)


class RunningSum:
    """The float64 running sum of one clip's steps: :meth:`extend` gives the running mean
    after each new step. The offline prefixes (:func:`running_means`) and the stream of a
    clip both go through it, so both sum in the same order."""

    def __init__(self, dim: int) -> None:
        self.total = np.zeros(dim, np.float64)
        self.t = 0

    def reset(self) -> None:
        self.total[:] = 0.0
        self.t = 0

    def extend(self, rows: np.ndarray) -> np.ndarray:
        """``[n, d]`` float32: the running means after each of ``rows`` (``[n, d]``)."""
        sums = np.cumsum(np.vstack([self.total, np.asarray(rows, np.float64)]), axis=0)[1:]
        count = np.arange(self.t + 1, self.t + len(sums) + 1)
        self.total[:], self.t = sums[-1], self.t + len(sums)
        return (sums / count[:, None]).astype(np.float32)


def calibrated_proba(
    logits: np.ndarray, steps: np.ndarray, calibration: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """float32 class probabilities of logits rows, row ``i`` read after ``steps[i]`` steps:
    ``softmax(logits · exp(a + b · log steps))``."""
    scale = calibration_scale(calibration, np.asarray(steps, dtype=np.int64))
    return softmax_rows(logits * np.asarray(scale)[:, None])


class PosteriorStream:
    """One clip's posterior step by step, as the model's offline ``posteriors(store)``
    gives it: :meth:`update` takes the next store row and returns the class probabilities
    after it; :meth:`reset` starts a new clip. ``logits`` is the model's own per-clip logit
    state (``extend(rows)``: uncalibrated logits after each row; ``reset()``), the same
    object its offline logits are computed with; ``model.calibrated(logits, steps)``
    turns them into probabilities."""

    def __init__(self, model: Any, logits: Any, dim: int) -> None:
        self.model, self.logits, self.dim = model, logits, int(dim)
        self.t = 0

    def reset(self) -> None:
        self.logits.reset()
        self.t = 0

    def update(self, row: np.ndarray) -> np.ndarray:
        """float32 ``[n_classes]``: the posterior after ``row`` (``dim`` values)."""
        row = np.asarray(row, dtype=np.float32)
        if row.shape != (self.dim,):
            raise ValueError(
                f"posterior {self.model.name}: row: expected {self.dim} values per step, got shape {row.shape}"
            )
        self.t += 1
        return self.model.calibrated(self.logits.extend(row[None]), np.array([self.t]))[0]


def running_means(store: FeatureStore) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(means, clip, steps)``: the running mean of every prefix of every clip (float64
    sums), the clip it belongs to and how many steps it covers."""
    means, clips, steps = [], [], []
    for i in range(store.n_clips):
        frames = store.clip(i).frames
        means.append(RunningSum(store.dim).extend(frames))
        clips.append(np.full(len(frames), i))
        steps.append(np.arange(1, len(frames) + 1))
    return np.vstack(means), np.concatenate(clips), np.concatenate(steps)


def clip_means(store: FeatureStore) -> np.ndarray:
    """Whole-clip mean step of every clip."""
    return np.stack(
        [
            np.asarray(store.clip(i).frames, dtype=np.float64).mean(axis=0)
            for i in range(store.n_clips)
        ]
    ).astype(np.float32)


@dataclass
class Posteriors:
    """Per-step class posteriors of a store's clips: row ``offsets[i] + t`` holds clip
    ``i``'s class probabilities after ``t + 1`` of its ``lengths[i]`` steps."""

    proba: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray

    @classmethod
    def from_logits(
        cls,
        logits: np.ndarray,
        lengths: np.ndarray,
        labels: np.ndarray,
        calibration: tuple[float, float] = (0.0, 0.0),
    ) -> Posteriors:
        """Posteriors from per-row logits, each row scaled by its step calibration."""
        lengths = np.asarray(lengths, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        steps = np.arange(len(logits)) - np.repeat(offsets, lengths) + 1
        proba = calibrated_proba(logits, steps, calibration)
        return cls(proba, offsets, lengths, np.asarray(labels, dtype=np.int64))

    def at(self, steps: np.ndarray) -> np.ndarray:
        """Each clip's posterior after ``steps[i]`` steps (1-based)."""
        return self.proba[self.offsets + np.asarray(steps, dtype=np.int64) - 1]


class RunningMeanSoftmax:
    """Softmax regression on the running mean of a clip's steps, with calibrated logits.

    After ``n`` steps the class logits are ``W · mean(x_1..x_n) + b`` (standardised
    inputs) multiplied by ``exp(a + b' · log n)``. The map is linear, so the logits of the
    running mean are the running mean of per-step logits: a store of per-step logits
    stands for the embeddings (:mod:`~avemotion.posterior.crossfit`). The calibration is
    fitted on out-of-fold logits of the training speakers (speakers the regression did not
    see), since on its own speakers the regression is over-confident.
    """

    name = "running-mean-softmax"

    def __init__(self, l2: float = 1e-2) -> None:
        self.l2 = float(l2)
        self.model: SoftmaxRegression | None = None
        self.calibration: tuple[float, float] = (0.0, 0.0)

    def fit(self, store: FeatureStore, init: SoftmaxRegression | None = None) -> RunningMeanSoftmax:
        """Fit the regression on every prefix of every clip of ``store`` (``init``: a warm
        start); the calibration is left as it is (see :func:`~avemotion.posterior.cross_fit`)."""
        means, clips, _ = running_means(store)
        self.model = SoftmaxRegression(l2=self.l2).fit(
            means, store.labels[clips], store.n_classes, init=init
        )
        return self

    def step_logits(self, frames: np.ndarray) -> np.ndarray:
        """Uncalibrated logits of each step on its own (their running mean is the logits
        of the running mean)."""
        return self._fitted().logits(np.asarray(frames, dtype=np.float32))

    def running_logits(self, store: FeatureStore) -> np.ndarray:
        """Uncalibrated logits of every prefix's running mean, rows in store order."""
        means, _, _ = running_means(store)
        return self._fitted().logits(means)

    def fit_calibration(self, logits: np.ndarray, lengths: np.ndarray, labels: np.ndarray) -> None:
        """Fit the step calibration on held-out running-mean logits (rows clip by clip)."""
        steps = np.concatenate([np.arange(1, n + 1) for n in lengths])
        self.calibration = fit_calibration(logits, steps, np.repeat(labels, lengths))

    def posteriors(self, store: FeatureStore) -> Posteriors:
        return Posteriors.from_logits(
            self.running_logits(store), store.lengths, store.labels, self.calibration
        )

    def calibrated(self, logits: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """Probabilities of uncalibrated running-mean logits read after ``steps`` steps."""
        return calibrated_proba(logits, steps, self.calibration)

    def stream(self) -> PosteriorStream:
        """The posterior of one clip step by step (a running sum: O(d) per step)."""
        return PosteriorStream(self, RunningMeanLogits(self._fitted()), len(self._fitted().mean))

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            **self._fitted().arrays(),
            "calibration": np.asarray(self.calibration, np.float64),
            "l2": np.asarray(self.l2),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> RunningMeanSoftmax:
        model = cls(l2=float(arrays["l2"]))
        model.model = SoftmaxRegression.from_arrays(arrays, model.l2)
        a, b = (float(v) for v in arrays["calibration"])
        model.calibration = (a, b)
        return model

    def _fitted(self) -> SoftmaxRegression:
        if self.model is None:
            raise RuntimeError("posterior model: fit() it first")
        return self.model


class RunningMeanLogits:
    """A running-mean model's logit state of one clip: its :class:`RunningSum`."""

    def __init__(self, regression: SoftmaxRegression) -> None:
        self.regression, self.sum = regression, RunningSum(len(regression.mean))

    def reset(self) -> None:
        self.sum.reset()

    def extend(self, rows: np.ndarray) -> np.ndarray:
        return self.regression.logits(self.sum.extend(rows))


class StoreLogits:
    """The store's steps already hold per-step log-posteriors (the temporal LSTM's, in the
    columns ``meta["parts"]["posteriors"]`` of a ``--level temporal`` store): the
    posterior after ``t`` steps is the softmax of step ``t``'s. Nothing is fitted."""

    name = "store-logits"

    def __init__(self, columns: tuple[int, int] | None = None, dim: int | None = None) -> None:
        self.columns, self.dim = columns, dim

    def fit(self, store: FeatureStore, init: Any = None) -> StoreLogits:
        parts = store.meta.get("parts") or {}
        if "posteriors" not in parts:
            raise ValueError(
                f"{store.path}: meta.parts.posteriors: missing; the store-logits posterior "
                "needs a --level temporal store"
            )
        start, stop = (int(v) for v in parts["posteriors"])
        if stop - start != store.n_classes:
            raise ValueError(
                f"{store.path}: meta.parts.posteriors: {stop - start} columns for {store.n_classes} classes"
            )
        self.columns, self.dim = (start, stop), store.dim
        return self

    def posteriors(self, store: FeatureStore) -> Posteriors:
        # clip by clip: a speaker subset's frames are its parent store's
        logits = np.vstack([self.extend(store.clip(i).frames) for i in range(store.n_clips)])
        return Posteriors.from_logits(logits, store.lengths, store.labels)

    def extend(self, rows: np.ndarray) -> np.ndarray:
        """The logit columns of ``rows`` (each step's logits are its own: no state)."""
        if self.columns is None:
            raise RuntimeError("posterior model: fit() it first")
        start, stop = self.columns
        return np.asarray(rows[:, start:stop], dtype=np.float32)

    def reset(self) -> None:
        """Nothing carries from step to step."""

    def calibrated(self, logits: np.ndarray, steps: np.ndarray) -> np.ndarray:
        return calibrated_proba(logits, steps)

    def stream(self) -> PosteriorStream:
        """The posterior of one clip step by step (no state: O(1) per step)."""
        if self.dim is None:
            raise ValueError(
                f"posterior {self.name}: the saved model records no row width; refit the run to stream it"
            )
        return PosteriorStream(self, self, self.dim)

    def arrays(self) -> dict[str, np.ndarray]:
        dim = {} if self.dim is None else {"dim": np.asarray(self.dim, np.int64)}
        return {"columns": np.asarray(self.columns, np.int64), **dim}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> StoreLogits:
        start, stop = (int(v) for v in arrays["columns"])
        return cls((start, stop), int(arrays["dim"]) if "dim" in arrays else None)


POSTERIOR_MODELS: dict[str, Any] = {
    RunningMeanSoftmax.name: RunningMeanSoftmax,
    StoreLogits.name: StoreLogits,
}


def save_posterior_model(model: Any, path: str | os.PathLike[str]) -> None:
    """Write ``model`` as an ``.npz`` (plain arrays, loaded without pickle), atomically."""
    from avemotion.atomic import replace_atomic

    with replace_atomic(Path(path)) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, kind=np.asarray(model.name), **model.arrays())


def load_posterior_model(path: str | os.PathLike[str]) -> Any:
    """A posterior model written by :func:`save_posterior_model`; one clear line if not."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (the run's posterior model)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: unreadable posterior model ({error})") from None
    kind = str(arrays.pop("kind", ""))
    if kind not in POSTERIOR_MODELS:
        raise ValueError(f"{path}: kind: expected one of {list(POSTERIOR_MODELS)}, got {kind!r}")
    return POSTERIOR_MODELS[kind].from_arrays(arrays)
