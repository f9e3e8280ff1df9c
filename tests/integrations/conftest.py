"""An easy store for learning tests: the first step already names the class.

Three classes (chance 1/3), each a separate direction with little noise, so a learner that
works reaches near-perfect accuracy in a few thousand steps and a broken one stays near
chance. Clips last 4–7 steps, so answering early pays under the earliness reward.
"""

from __future__ import annotations

import numpy as np
import pytest

from avemotion.store import FeatureStore

EASY_CLASSES = ("calm", "happy", "sad")
EASY_SPEAKERS = ("E1", "E2", "E3")


def make_easy_store(path, seed: int = 0, clips_per_class: int = 8, dim: int = 4) -> FeatureStore:
    """Clips whose every step is ``2 * e_class + N(0, 0.3)``: separable from step one."""
    rng = np.random.default_rng(seed)
    sequences, labels, speakers = [], [], []
    for speaker in EASY_SPEAKERS:
        for label in range(len(EASY_CLASSES)):
            for _ in range(clips_per_class):
                length = int(rng.integers(4, 8))
                frames = rng.normal(0.0, 0.3, size=(length, dim))
                frames[:, label] += 2.0
                sequences.append(frames.astype(np.float32))
                labels.append(label)
                speakers.append(speaker)
    return FeatureStore.create(
        path, sequences, labels, speakers, list(EASY_CLASSES), meta={"corpus": "easy-test"}
    )


@pytest.fixture(scope="session")
def easy_store(tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    """The easy store (3 speakers x 3 classes x 8 clips), generated once per session."""
    return make_easy_store(tmp_path_factory.mktemp("stores") / "easy")
