"""A tiny feature store for fast agent and posterior tests: 3 speakers, 3 classes, short clips."""

from __future__ import annotations

import numpy as np

from avemotion.store import FeatureStore


def make_tiny_store(
    path, seed: int = 0, speakers: int = 3, clips_per_class: int = 4, dim: int = 8
) -> FeatureStore:
    rng = np.random.default_rng(seed)
    prototypes = rng.normal(0.0, 2.0, size=(3, dim))
    sequences, labels, names = [], [], []
    for s in range(speakers):
        for c in range(3):
            for _ in range(clips_per_class):
                length = int(rng.integers(4, 13))
                ramp = np.linspace(0.2, 1.0, length)[:, None]
                sequences.append(
                    (ramp * prototypes[c] + rng.normal(0.0, 1.0, size=(length, dim))).astype(
                        np.float32
                    )
                )
                labels.append(c)
                names.append(f"P{s + 1}")
    return FeatureStore.create(
        path, sequences, labels, names, ["calm", "happy", "sad"], meta={"steps_per_second": 10.0}
    )


def onset_store(
    path,
    seed: int,
    speakers: tuple[str, ...],
    length: int,
    onsets: tuple[int, int] = (0, 0),
    noise: float = 0.5,
    scale: float = 2.0,
    clips_per_class: int = 16,
    classes: int = 4,
    dim: int = 8,
) -> FeatureStore:
    """Clips of ``length`` noisy steps that show their class's prototype (``scale`` times a
    unit vector) from a random onset in ``onsets`` (inclusive) on: the learning tests' store."""
    rng = np.random.default_rng(seed)
    prototypes = scale * np.eye(classes, dim, dtype=np.float32)
    sequences, labels, names = [], [], []
    for speaker in speakers:
        for label in range(classes):
            for _ in range(clips_per_class):
                onset = int(rng.integers(onsets[0], onsets[1] + 1))
                steps = rng.normal(0.0, noise, size=(length, dim)).astype(np.float32)
                steps[onset:] += prototypes[label]
                sequences.append(steps)
                labels.append(label)
                names.append(speaker)
    return FeatureStore.create(
        path, sequences, labels, names, [f"c{k}" for k in range(classes)],
        meta={"steps_per_second": 10.0}, overwrite=True,
    )  # fmt: skip
