"""Cross-fitting: posteriors of the training speakers as a new speaker would get them.

A stopping rule tuned on posteriors from a model that saw the very same clips learns to
trust them far too much. Every rule here is therefore tuned (or, for our DQN, trained) on
*out-of-fold* posteriors: the training clips are split into folds (by speaker when the
speakers allow it, else stratified by class: :func:`~avemotion.folds.make_folds`), and
each fold's clips are seen through a posterior model fitted on the other folds. The model
saved for test speakers is fitted on every training clip, with the step calibration
fitted on the out-of-fold logits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from avemotion.folds import Folds, make_folds
from avemotion.posterior.models import Posteriors, RunningMeanSoftmax
from avemotion.store import FeatureStore

CROSS_FIT_FOLDS = 4
"""Folds of the cross-fitting (0: one per training speaker; see :func:`make_folds`)."""


@dataclass
class CrossFit:
    """What cross-fitting a posterior model on the training speakers gives."""

    model: Any
    """The posterior model fitted on every training speaker (calibrated out of fold)."""
    posteriors: Posteriors
    """Out-of-fold posteriors of every training clip, in store order."""
    step_logits: list[np.ndarray] | None
    """Out-of-fold per-step logits of every clip (uncalibrated; linear models only): a
    store of them stands for the embeddings, since their running mean is the logits of
    the running mean."""
    folds: Folds


def cross_fit(
    store: FeatureStore,
    make_model: Callable[[], Any] = RunningMeanSoftmax,
    n_folds: int = CROSS_FIT_FOLDS,
    folds: Folds | None = None,
) -> CrossFit:
    """Cross-fit the posterior model ``make_model()`` builds (unfitted; by default
    :class:`RunningMeanSoftmax`) on ``store``'s clips, over ``folds`` (by default
    :func:`make_folds` of ``n_folds``).

    The returned model is fitted on every clip; each fold's posteriors come from a
    model fitted on the other folds (warm-started from the full fit when the model keeps a
    ``model`` attribute, as the softmax models do). A model with ``running_logits`` and
    ``fit_calibration`` gets its step calibration fitted on the out-of-fold logits (and
    applied by its ``posteriors_from_logits`` when it has one, else as ``calibration``
    through :meth:`Posteriors.from_logits`); a model
    with ``step_logits`` (linear in the steps) also yields its out-of-fold per-step logits,
    else ``step_logits`` is None. With a single fold the posteriors are in-sample.
    """
    everyone = make_model().fit(store)
    folds = make_folds(store, n_folds) if folds is None else folds
    if len(folds) < 2:
        return CrossFit(everyone, everyone.posteriors(store), None, folds)
    calibrated = hasattr(everyone, "running_logits") and hasattr(everyone, "fit_calibration")
    linear = hasattr(everyone, "step_logits")
    rows: list[np.ndarray] = [np.empty(0, np.float32)] * store.n_clips
    steps: list[np.ndarray] = [np.empty(0, np.float32)] * store.n_clips
    for clips in folds.held_out(store):
        others = np.setdiff1d(np.arange(store.n_clips), clips)
        init = getattr(everyone, "model", None)
        rest = make_model().fit(store.subset(indices=others), init=init)
        held = store.subset(indices=clips)
        values = rest.running_logits(held) if calibrated else rest.posteriors(held).proba
        cuts = np.cumsum(held.lengths)[:-1]
        for j, part in enumerate(np.split(np.asarray(values, np.float32), cuts)):
            i = int(clips[j])
            rows[i] = part
            if linear:
                steps[i] = np.asarray(rest.step_logits(held.clip(j).frames), np.float32)
    stacked = np.vstack(rows)
    if calibrated:
        everyone.fit_calibration(stacked, store.lengths, store.labels)
        if hasattr(everyone, "posteriors_from_logits"):  # its own calibration form
            oof = everyone.posteriors_from_logits(stacked, store.lengths, store.labels)
        else:
            oof = Posteriors.from_logits(stacked, store.lengths, store.labels, everyone.calibration)
    else:
        offsets = np.concatenate([[0], np.cumsum(store.lengths)[:-1]]).astype(np.int64)
        oof = Posteriors(stacked, offsets, store.lengths.copy(), store.labels.copy())
    return CrossFit(everyone, oof, steps if linear else None, folds)


def subset_posteriors(post: Posteriors, clips: np.ndarray) -> Posteriors:
    """The posteriors of the clips ``clips`` (indices, in that order)."""
    clips = np.asarray(clips, dtype=np.int64)
    lengths = post.lengths[clips]
    rows = np.concatenate(
        [np.arange(post.offsets[i], post.offsets[i] + post.lengths[i]) for i in clips]
    )
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return Posteriors(post.proba[rows], offsets, lengths, post.labels[clips])
