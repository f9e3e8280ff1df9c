"""Speaker folds: the one rule by which training speakers are split for cross-fitting and
cross-validation (of encoders, posterior models and stopping rules alike)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def speaker_folds(speakers: Sequence[str], n_folds: int) -> list[list[str]]:
    """The sorted distinct ``speakers`` cut into ``min(n_folds, #speakers)`` contiguous
    groups of near-equal size (``n_folds=0``: one group per speaker)."""
    names = sorted(set(speakers))
    n = len(names) if n_folds <= 0 else min(n_folds, len(names))
    cuts = np.array_split(np.arange(len(names)), max(n, 1))
    return [[names[i] for i in cut] for cut in cuts if len(cut)]
