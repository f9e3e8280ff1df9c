"""Cross-fitting: posteriors of the training speakers as a new speaker would get them.

A stopping rule tuned on posteriors from a model that saw the very same clips learns to
trust them far too much. Every rule here is therefore tuned (or, for our DQN, trained) on
*out-of-fold* posteriors: the training speakers are split into folds, and each fold's
clips are seen through a posterior model fitted on the other folds. The model saved for
test speakers is fitted on every training speaker, with the step calibration fitted on
the out-of-fold logits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from avemotion.posterior.models import Posteriors, RunningMeanSoftmax
from avemotion.speakers import speaker_folds
from avemotion.store import FeatureStore

CROSS_FIT_FOLDS = 4
"""Speaker folds of the cross-fitting (0: one per training speaker)."""


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
    folds: list[list[str]]


def cross_fit(
    store: FeatureStore, model: Any | None = None, n_folds: int = CROSS_FIT_FOLDS
) -> CrossFit:
    """Cross-fit ``model`` (an unfitted posterior model; default :class:`RunningMeanSoftmax`)
    on ``store``'s speakers. With one speaker there is nothing to hold out: its posteriors
    then come from the model fitted on it, as they would anywhere else."""
    model = model if model is not None else RunningMeanSoftmax()
    if not isinstance(model, RunningMeanSoftmax):
        model.fit(store)
        return CrossFit(model, model.posteriors(store), None, [store.speaker_set])
    everyone = model.fit(store)
    folds = speaker_folds(store.speaker_set, n_folds)
    if len(folds) < 2:
        return CrossFit(everyone, everyone.posteriors(store), None, folds)
    index = {clip_id: i for i, clip_id in enumerate(store.clip_ids)}
    step_logits: list[np.ndarray] = [np.empty(0, np.float32)] * store.n_clips
    for group in folds:
        rest = RunningMeanSoftmax(everyone.l2).fit(
            store.subset(exclude_speakers=group), init=everyone.model
        )
        held = store.subset(speakers=group)
        for j in range(held.n_clips):
            clip = held.clip(j)
            step_logits[index[clip.clip_id]] = rest.step_logits(clip.frames).astype(np.float32)
    running = np.vstack(
        [np.cumsum(z, axis=0) / np.arange(1, len(z) + 1)[:, None] for z in step_logits]
    )
    everyone.fit_calibration(running, store.lengths, store.labels)
    oof = Posteriors.from_logits(running, store.lengths, store.labels, everyone.calibration)
    return CrossFit(everyone, oof, step_logits, folds)
