"""Fitting the frozen posterior front end of our DQN, and what the agent learns on.

The front end (:class:`~avemotion.agents.networks.FrontEnd`) maps each embedding part of
the observation to class logits with one linear softmax regression fitted on every prefix's
running mean of the training speakers. If the agent learnt its stopping rule on those same
speakers, it would see posteriors far more often right than on a new voice, and wait too
little. Two remedies:

- **cross-fitting** (``frontend_crossfit``, the default): every training speaker's clips are
  turned into the logits of a front end fitted on the *other* training speakers (one fold
  per speaker, or ``frontend_folds`` groups of speakers). The map is linear, so the running
  mean of per-frame logits is the logits of the running mean, and the agent can step a
  K-dim logit store instead of the embedding store. Calibration is fitted on those
  out-of-fold logits. The saved network gets the front end fitted on all training
  speakers, with the learnt layers transplanted unchanged (:func:`transplant`).
- **a split** (``frontend_split``): one half of the speakers fits the front end, the
  agent learns on the other half (weaker posteriors than on test, since the front end saw
  half the data).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avemotion.agents.baselines import (
    SoftmaxRegression,
    fit_calibration,
    prefix_features,
    speaker_folds,
)
from avemotion.store import FeatureStore


def fit_softmax(
    store: FeatureStore, l2: float, init: SoftmaxRegression | None = None
) -> SoftmaxRegression:
    """The posterior front end's softmax regression on every prefix's running mean
    (``init``: a warm start)."""
    features, clips, _ = prefix_features(store)
    return SoftmaxRegression(l2=l2).fit(
        features[:, :-1], store.labels[clips], store.n_classes, init=init
    )


def set_from_model(frontend: Any, model: SoftmaxRegression) -> None:
    """Load a fitted softmax regression into a ``"posterior"`` front end."""
    frontend.set(
        torch.from_numpy(model.mean),
        torch.from_numpy(model.std),
        model.weight.detach(),
        model.bias.detach(),
    )


def set_identity(frontend: Any) -> None:
    """A ``"posterior"`` front end over a store whose frames already are class logits."""
    k = frontend.store_dim
    frontend.set(torch.zeros(k), torch.ones(k), torch.eye(k), torch.zeros(k))


def fit_frontend(
    frontend: Any,
    layout: Any,
    store: FeatureStore,
    l2: float,
    calibration: FeatureStore | None = None,
    known: tuple[float, float] | None = None,
) -> tuple[float, float]:
    """Fit the frozen front end on ``store``: frame statistics for ``"raw"``; for
    ``"posterior"`` the softmax regression, whose logits are rescaled by a step-dependent
    calibration fitted on ``calibration`` (speakers it did not see) or ``known``.
    ``layout`` is the env's :class:`~avemotion.envs.core.ObservationLayout`. Returns the
    calibration ``(a, b)``."""
    if frontend.kind == "raw":
        rows = np.linspace(0, len(store.frames) - 1, min(100_000, len(store.frames))).astype(
            np.int64
        )
        frames = np.asarray(store.frames[rows], dtype=np.float64)
        mean, std = frames.mean(axis=0), frames.std(axis=0) + 1e-6
        shift, scale = np.zeros(layout.size), np.ones(layout.size)
        for part in (layout.frame_slice, layout.mean_slice):
            if part.stop > part.start:
                shift[part], scale[part] = mean, std
        frontend.set(
            torch.tensor(shift, dtype=torch.float32), torch.tensor(scale, dtype=torch.float32)
        )
        return (0.0, 0.0)
    model = fit_softmax(store, l2)
    set_from_model(frontend, model)
    if known is None:
        known = (0.0, 0.0)
        if calibration is not None:
            held, held_clips, held_steps = prefix_features(calibration)
            known = fit_calibration(
                model.logits(held[:, :-1]), held_steps, calibration.labels[held_clips]
            )
    frontend.set_calibration(known[0], known[1], layout.max_length)
    return known


def split_for_frontend(
    store: FeatureStore, fraction: float, kind: str
) -> tuple[FeatureStore, FeatureStore]:
    """(speakers that fit the front end, speakers the agent learns on), split by speaker."""
    speakers = store.speaker_set
    n_front = int(round(fraction * len(speakers)))
    if kind != "posterior" or n_front < 1 or n_front >= len(speakers):
        return store, store
    front = speakers[::2][:n_front] if n_front <= (len(speakers) + 1) // 2 else speakers[:n_front]
    return store.subset(speakers=front), store.subset(exclude_speakers=front)


def out_of_fold_logits(
    store: FeatureStore, l2: float, n_folds: int, directory: str | Path
) -> tuple[FeatureStore, tuple[float, float], SoftmaxRegression]:
    """A K-dim store of per-frame logits of ``store``'s clips, each from a front end fitted
    on the other speakers' folds, written into ``directory``; and the step calibration
    fitted on those out-of-fold logits; and the front end fitted on every speaker."""
    folds = speaker_folds(store, n_folds if n_folds > 0 else len(store.speaker_set))
    sequences: list[np.ndarray] = [np.empty(0)] * store.n_clips
    running, steps, labels = [], [], []
    index = {clip_id: i for i, clip_id in enumerate(store.clip_ids)}
    everyone = fit_softmax(store, l2)
    for group in folds:
        held = store.subset(speakers=list(group))
        model = fit_softmax(store.subset(exclude_speakers=list(group)), l2, init=everyone)
        for j in range(held.n_clips):
            clip = held.clip(j)
            logits = model.logits(np.asarray(clip.frames, dtype=np.float32))
            sequences[index[clip.clip_id]] = logits.astype(np.float32)
            count = np.arange(1, len(logits) + 1)
            running.append(np.cumsum(logits, axis=0) / count[:, None])
            steps.append(count)
            labels.append(np.full(len(logits), clip.label))
    calibration = fit_calibration(np.vstack(running), np.concatenate(steps), np.concatenate(labels))
    logit_store = FeatureStore.create(
        Path(directory) / "out-of-fold-logits",
        sequences,
        store.labels,
        store.speakers,
        store.class_names,
        clip_ids=store.clip_ids,
        meta={
            "corpus": "out-of-fold front-end logits (training only)",
            "steps_per_second": store.steps_per_second,
        },
        overwrite=True,
    )
    return logit_store, calibration, everyone


class AgentData:
    """What the agent learns on: the store its envs step and how to fit its front end.

    ``store`` is the training speakers' embedding store, or with cross-fitting their
    out-of-fold logit store; :meth:`close` removes the latter.
    """

    def __init__(self, store: FeatureStore, config: Any) -> None:
        self.all_speakers = store
        self.tuned: dict[str, float] = {}
        """What stop tuning found on the agent's store (set with the saved model)."""
        self.crossfit = (
            config.frontend == "posterior"
            and config.frontend_crossfit
            and len(store.speaker_set) >= 2
        )
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if self.crossfit:
            self._tmp = tempfile.TemporaryDirectory(prefix="avemotion-oof-")
            self.store, self.calibration, self.full_model = out_of_fold_logits(
                store, config.frontend_l2, config.frontend_folds, self._tmp.name
            )
            self.frontend_store = store
        else:
            self.frontend_store, self.store = split_for_frontend(
                store, config.frontend_split, config.frontend
            )
            self.calibration = (0.0, 0.0)

    def fit(self, frontend: Any, layout: Any, l2: float) -> tuple[float, float]:
        """Fit the training network's front end; returns the calibration."""
        if self.crossfit:
            set_identity(frontend)
            frontend.set_calibration(*self.calibration, layout.max_length)
            return self.calibration
        held = self.store if self.frontend_store is not self.store else None
        self.calibration = fit_frontend(frontend, layout, self.frontend_store, l2, calibration=held)
        return self.calibration

    def fit_final(self, frontend: Any, layout: Any) -> None:
        """With cross-fitting: the saved network's front end, fitted on every training
        speaker (once, when the data was prepared), with the out-of-fold calibration."""
        set_from_model(frontend, self.full_model)
        frontend.set_calibration(*self.calibration, layout.max_length)

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
