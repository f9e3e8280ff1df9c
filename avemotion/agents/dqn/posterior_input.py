"""What our DQN learns on: the out-of-fold posterior store its envs step, its frozen
front end, and the per-episode sharpness jitter (why: docs/agents.md)."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avemotion.posterior import CrossFit, Posteriors, RunningMeanSoftmax, cross_fit
from avemotion.store import FeatureStore


def set_from_posterior(frontend: Any, posterior: RunningMeanSoftmax, max_length: int) -> None:
    """Load a fitted running-mean posterior model into a ``"posterior"`` front end."""
    model = posterior._fitted()
    frontend.set(
        torch.from_numpy(np.asarray(model.mean)),
        torch.from_numpy(np.asarray(model.std)),
        model.weight.detach(),
        model.bias.detach(),
    )
    frontend.set_calibration(*posterior.calibration, max_length)


def set_identity(frontend: Any, calibration: tuple[float, float], max_length: int) -> None:
    """A ``"posterior"`` front end over a store whose steps already are class logits."""
    k = frontend.store_dim
    frontend.set(torch.zeros(k), torch.ones(k), torch.eye(k), torch.zeros(k))
    frontend.set_calibration(*calibration, max_length)


def set_normaliser(frontend: Any, layout: Any, store: FeatureStore) -> None:
    """A ``"raw"`` front end: per-feature statistics of (a sample of) the store's steps."""
    rows = np.linspace(0, len(store.frames) - 1, min(100_000, len(store.frames))).astype(np.int64)
    frames = np.asarray(store.frames[rows], dtype=np.float64)
    mean, std = frames.mean(axis=0), frames.std(axis=0) + 1e-6
    shift, scale = np.zeros(layout.size), np.ones(layout.size)
    for part in (layout.frame_slice, layout.mean_slice):
        if part.stop > part.start:
            shift[part], scale[part] = mean, std
    frontend.set(torch.tensor(shift, dtype=torch.float32), torch.tensor(scale, dtype=torch.float32))


def logit_store(
    store: FeatureStore, sequences: list[np.ndarray], directory: str | Path, what: str
) -> FeatureStore:
    """A K-dim store of per-step ``sequences`` (logits or log-posteriors) of ``store``'s clips."""
    return FeatureStore.create(
        Path(directory) / "posterior-input",
        sequences,
        store.labels,
        store.speakers,
        store.class_names,
        clip_ids=store.clip_ids,
        meta={"corpus": what, "steps_per_second": store.steps_per_second},
        overwrite=True,
    )


def log_posterior_sequences(posteriors: Posteriors) -> list[np.ndarray]:
    """Each clip's per-step log-posteriors (the input of an agent that reads a posterior
    model which no front end can express)."""
    logs = log_posteriors(posteriors.proba)
    return [logs[o : o + n] for o, n in zip(posteriors.offsets, posteriors.lengths)]


LOG_FLOOR = 1e-7
"""Probabilities are floored here before the log (a 0 would be ``-inf``)."""


def log_posteriors(proba: np.ndarray) -> np.ndarray:
    """float32 log-probabilities, floored at ``log LOG_FLOOR``: what such an agent steps."""
    return np.log(np.clip(proba, LOG_FLOOR, 1.0)).astype(np.float32)


def reads_posterior_store(fitted: CrossFit | None) -> bool:
    """Whether the agent steps a store of log-posteriors rather than the embeddings: the
    posterior model is not the linear running-mean softmax its front end can hold."""
    return fitted is not None and not isinstance(fitted.model, RunningMeanSoftmax)


class AgentData:
    """What the agent learns on: the store its envs step and how to fit its front end.

    ``store`` is the training speakers' embedding store, or with cross-fitting their
    out-of-fold logit store; :meth:`close` removes the latter. ``fitted`` is the run's
    cross-fitted posterior model (fitted here when not given).
    """

    def __init__(self, store: FeatureStore, config: Any, fitted: CrossFit | None = None) -> None:
        self.all_speakers = store
        self.tuned: dict[str, float] = {}
        """What stop tuning found on the agent's store (set with the saved model)."""
        self.posterior = config.frontend == "posterior"
        self.crossfit = self.posterior and config.frontend_crossfit and config.frontend_folds != 1
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.store = store
        self.fitted = fitted
        self.posterior_store = self.posterior and reads_posterior_store(fitted)
        if self.posterior and self.fitted is None:
            folds = config.frontend_folds if self.crossfit else 1
            model = functools.partial(RunningMeanSoftmax, config.frontend_l2)
            self.fitted = cross_fit(store, model, folds)
        if self.posterior_store:
            self._tmp = tempfile.TemporaryDirectory(prefix="avemotion-oof-")
            oof = config.frontend_crossfit  # else in-sample, as a linear front end would be
            posteriors = self.fitted.posteriors if oof else self.fitted.model.posteriors(store)
            sequences = log_posterior_sequences(posteriors)
            what = f"{'out-of-fold' if oof else 'in-sample'} log-posteriors (training only)"
            self.store = logit_store(store, sequences, self._tmp.name, what)
            self.crossfit = False
        elif self.crossfit and self.fitted is not None and self.fitted.step_logits is not None:
            self._tmp = tempfile.TemporaryDirectory(prefix="avemotion-oof-")
            what = "out-of-fold posterior logits (training only)"
            self.store = logit_store(store, self.fitted.step_logits, self._tmp.name, what)
        else:
            self.crossfit = False

    @property
    def calibration(self) -> tuple[float, float]:
        if self.fitted is None or self.posterior_store:
            return (0.0, 0.0)  # log-posteriors are calibrated already
        return self.fitted.model.calibration

    def fit(self, frontend: Any, layout: Any) -> None:
        """Fit the training network's front end."""
        if not self.posterior:
            set_normaliser(frontend, layout, self.store)
        elif self.crossfit or self.posterior_store:
            set_identity(frontend, self.calibration, layout.max_length)
        else:
            set_from_posterior(frontend, self.fitted.model, layout.max_length)

    def fit_final(self, frontend: Any, layout: Any) -> None:
        """With cross-fitting: the saved network's front end, the posterior model fitted
        on every training speaker, with the out-of-fold calibration."""
        set_from_posterior(frontend, self.fitted.model, layout.max_length)

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def transplant(trained: torch.nn.Module, fresh: torch.nn.Module) -> torch.nn.Module:
    """``fresh`` (same architecture, its own front end already fitted) with every learnt
    parameter of ``trained`` copied in: the layers after the front end do not depend on
    the front end's input size."""
    state = {k: v for k, v in trained.state_dict().items() if not k.startswith("frontend.")}
    missing, unexpected = fresh.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("frontend.") for k in missing):
        raise RuntimeError(f"transplant: missing {missing}, unexpected {unexpected}")
    return fresh


class SharpnessJitter:
    """Random sharpness of the posteriors the agent learns on, one factor per episode.

    Cross-fitted posteriors of the training speakers are as sharp as a model fitted on
    fewer speakers makes them; a new speaker's may be sharper or flatter. Scaling each
    training episode's logits by ``exp(u)``, ``u ~ U(−r, r)``, keeps the learnt stopping
    rule from leaning on one level of confidence: it must read confidence, not only time.
    """

    def __init__(self, r: float, layout: Any, rng: np.random.Generator) -> None:
        self.r, self.rng = r, rng
        self.columns = np.ones(layout.size, dtype=np.float32)
        self.logit_columns = np.zeros(layout.size, dtype=bool)
        self.logit_columns[:-1] = True  # every part but the time feature is a logit
        self.scale: np.ndarray | None = None

    def start(self, starting: np.ndarray, obs: np.ndarray) -> np.ndarray:
        """Draw new factors where an episode starts; the jittered observation."""
        if self.r <= 0:
            return obs
        if self.scale is None:
            self.scale = np.ones(len(obs), dtype=np.float32)
        n = int(starting.sum())
        self.scale[starting] = np.exp(self.rng.uniform(-self.r, self.r, n)).astype(np.float32)
        out = obs.copy()
        out[:, self.logit_columns] *= self.scale[:, None]
        return out
