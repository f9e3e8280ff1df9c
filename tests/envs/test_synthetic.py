"""The synthetic default corpus: deterministic, shaped as documented, and harder when one waits less."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avemotion import FeatureStore
from avemotion.envs.synthetic import SYNTHETIC_CLASSES, generate_synthetic_clips, synthetic_store


def prefix_means(store: FeatureStore, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    feats = [
        np.asarray(c.frames[: max(1, round(fraction * len(c.frames)))]).mean(0)
        for c in map(store.clip, range(store.n_clips))
    ]
    return np.array(feats), store.labels


def nearest_mean_accuracy(train: FeatureStore, test: FeatureStore, fraction: float) -> float:
    x, y = prefix_means(train, 1.0)
    centroids = np.stack([x[y == k].mean(0) for k in range(train.n_classes)])
    xt, yt = prefix_means(test, fraction)
    return float((((xt[:, None] - centroids) ** 2).sum(-1).argmin(1) == yt).mean())


def test_shape_and_naming(synthetic: FeatureStore) -> None:
    assert synthetic.meta["corpus"] == "synthetic" and synthetic.class_names == list(
        SYNTHETIC_CLASSES
    )
    assert synthetic.n_classes == 6 and len(synthetic.speaker_set) == 8 and synthetic.dim == 256
    assert synthetic.lengths.min() >= 20 and synthetic.lengths.max() <= 80
    assert synthetic.steps_per_second == 10.0
    assert all(c.startswith("synthetic_") for c in synthetic.clip_ids)


def test_deterministic(tmp_path: Path, synthetic: FeatureStore) -> None:
    again = synthetic_store(tmp_path / "again")
    np.testing.assert_array_equal(np.asarray(again.frames), np.asarray(synthetic.frames))
    other = generate_synthetic_clips(seed=1)
    assert not np.array_equal(other["sequences"][0][:20], np.asarray(synthetic.clip(0).frames[:20]))


def test_waiting_longer_is_more_accurate(synthetic: FeatureStore) -> None:
    train = synthetic.subset(exclude_speakers=["S07", "S08"])
    test = synthetic.subset(speakers=["S07", "S08"])
    accuracies = [nearest_mean_accuracy(train, test, f) for f in (0.2, 0.5, 1.0)]
    assert accuracies[0] < accuracies[1] < accuracies[2]
    assert accuracies[0] < 0.4 and accuracies[2] > 0.7


def knn_accuracy(train: FeatureStore, test: FeatureStore, k: int = 5) -> float:
    x, y = prefix_means(train, 1.0)
    xt, yt = prefix_means(test, 1.0)
    neighbours = np.argsort(((xt[:, None] - x) ** 2).sum(-1), axis=1)[:, :k]
    votes = np.array(
        [np.bincount(y[row], minlength=train.n_classes).argmax() for row in neighbours]
    )
    return float((votes == yt).mean())


def test_unseen_speakers_are_harder(synthetic: FeatureStore) -> None:
    """A 5-NN on whole-clip means: a random clip split beats a speaker split (speaker styles)."""
    held_out = ["S07", "S08"]
    by_speaker = knn_accuracy(
        synthetic.subset(exclude_speakers=held_out), synthetic.subset(speakers=held_out)
    )
    order = np.random.default_rng(0).permutation(synthetic.n_clips)
    cut = synthetic.n_clips // 4
    by_clip = knn_accuracy(
        synthetic.subset(indices=order[cut:]), synthetic.subset(indices=order[:cut])
    )
    assert by_clip > by_speaker + 0.2
