"""The prefix-shape posterior model: hand-computed features, causality, save and load."""

from __future__ import annotations

import numpy as np
import pytest

from avemotion.posterior import POSTERIOR_MODELS, PrefixShapeSoftmax, load_posterior_model
from avemotion.posterior.models import save_posterior_model
from avemotion.posterior.prefix_neighbour import PrefixNearestNeighbour
from avemotion.posterior.prefix_shape import (
    default_points,
    fit_bucket_scales,
    prefix_features,
    segment_means,
    step_buckets,
)
from avemotion.store import FeatureStore


def test_features_by_hand() -> None:
    """Steps 1, 3, 5, 7; after 3 steps, 2 segments [0, 1.5) and [1.5, 3): the first holds
    step 1 and half of step 2, (1 + 0.5·3) / 1.5 = 5/3; the second (0.5·3 + 5) / 1.5 = 13/3.
    Running std of (1, 3, 5): sqrt(35/3 − 9); last step 5; log 3."""
    rows = prefix_features(np.array([[1.0], [3.0], [5.0], [7.0]]), points=2)
    expected = [5 / 3, 13 / 3, np.sqrt(35 / 3 - 9), 5.0, np.log(3)]
    np.testing.assert_allclose(rows[2], expected, rtol=1e-6)
    # after one step both half-step segments lie inside step 1
    np.testing.assert_allclose(rows[0], [1.0, 1.0, 0.0, 1.0, 0.0], atol=1e-7)
    # after 4 steps the segments are exact halves: (1 + 3) / 2 and (5 + 7) / 2
    np.testing.assert_allclose(rows[3][:2], [2.0, 6.0])


def test_segment_means_of_a_long_prefix_average_it() -> None:
    x = np.arange(12, dtype=np.float64)[:, None]
    means = segment_means(x, 4)[-1, :, 0]  # 4 segments of 3 steps
    np.testing.assert_allclose(means, [1.0, 4.0, 7.0, 10.0])


def test_default_points_and_feature_count() -> None:
    assert [default_points(d) for d in (1, 12, 64, 256)] == [16, 16, 4, 2]
    assert prefix_features(np.zeros((5, 1)), default_points(1)).shape == (5, 16 + 2 + 1)
    assert prefix_features(np.zeros((5, 256)), default_points(256)).shape == (5, 2 * 256 + 1)


def test_features_are_causal() -> None:
    """Row t−1 reads steps 1..t only: it equals the last row of the prefix's own features,
    and changing later steps leaves it unchanged."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(9, 3))
    full = prefix_features(x, 5)
    changed = x.copy()
    changed[6:] += 100.0
    for t in range(1, 10):
        np.testing.assert_allclose(full[t - 1], prefix_features(x[:t], 5)[-1], rtol=1e-6)
    np.testing.assert_array_equal(full[:6], prefix_features(changed, 5)[:6])


def ramp_store(path, n_per_class: int = 10, seed: int = 0) -> FeatureStore:
    """Two classes with the same mean: rising and falling ramps (plus noise)."""
    rng = np.random.default_rng(seed)
    sequences, labels, speakers = [], [], []
    for i in range(2 * n_per_class):
        length = int(rng.integers(8, 16))
        ramp = np.linspace(-1.0, 1.0, length) * (1 if i % 2 == 0 else -1)
        sequences.append((ramp + rng.normal(0, 0.3, length))[:, None].astype(np.float32))
        labels.append(i % 2)
        speakers.append(f"S{i % 4}")
    return FeatureStore.create(path, sequences, labels, speakers, ["rise", "fall"])


@pytest.mark.parametrize("make", [lambda: PrefixShapeSoftmax(points=4), PrefixNearestNeighbour])
def test_posteriors_are_causal_through_a_store(tmp_path, make) -> None:
    store = ramp_store(tmp_path / "a")
    model = make().fit(store)
    model.fit_calibration(model.running_logits(store), store.lengths, store.labels)
    sequences = [np.array(store.clip(i).frames) for i in range(store.n_clips)]
    cut = 5
    for s in sequences:
        s[cut:] = -s[cut:] + 3.0
    other = FeatureStore.create(
        tmp_path / "b", sequences, store.labels, store.speakers, store.class_names
    )
    a, b = model.posteriors(store), model.posteriors(other)
    za, zb = model.running_logits(store), model.running_logits(other)
    for i in range(store.n_clips):
        rows = slice(a.offsets[i], a.offsets[i] + cut)
        np.testing.assert_allclose(a.proba[rows], b.proba[rows], atol=1e-6)
        np.testing.assert_allclose(za[rows], zb[rows], atol=1e-5)
        assert not np.allclose(za[a.offsets[i] + cut], zb[b.offsets[i] + cut])


@pytest.mark.parametrize("make", [PrefixShapeSoftmax, PrefixNearestNeighbour])
def test_it_tells_rising_from_falling(tmp_path, make) -> None:
    """The running mean cannot (both classes have mean ≈ 0); the shape can."""
    store = ramp_store(tmp_path / "ramps", n_per_class=20)
    post = make().fit(store).posteriors(store)
    full = post.at(store.lengths).argmax(axis=1)
    assert np.mean(full == store.labels) == 1.0


def test_posteriors_scale_each_bucket(tmp_path) -> None:
    store = ramp_store(tmp_path / "c")
    model = PrefixShapeSoftmax(points=2).fit(store)
    logits = model.running_logits(store)
    model.log_scales = np.log([0.5, 2.0])  # t = 1: halved; t ≥ 2 (the last bucket): doubled
    steps = np.concatenate([np.arange(1, n + 1) for n in store.lengths])
    scaled = logits * np.where(steps == 1, 0.5, 2.0)[:, None]
    expected = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.posteriors(store).proba, expected, atol=1e-6)


def test_bucket_scale_by_hand() -> None:
    """Four one-step clips, logits (1, 0), labels 0, 0, 0, 1: the NLL is least where
    sigmoid(s) = 3/4, s = ln 3, so the log-scale is ln ln 3."""
    logits = np.array([[1.0, 0.0]] * 4, np.float32)
    scales = fit_bucket_scales(logits, np.ones(4, np.int64), np.array([0, 0, 0, 1]))
    np.testing.assert_allclose(scales, [np.log(np.log(3.0))], atol=1e-4)


def test_save_and_load_round_trip(tmp_path) -> None:
    store = ramp_store(tmp_path / "d")
    model = PrefixShapeSoftmax(l2=0.05).fit(store)
    model.log_scales = np.array([0.3, 0.1])
    save_posterior_model(model, tmp_path / "posterior.npz")
    loaded = load_posterior_model(tmp_path / "posterior.npz")
    assert (
        isinstance(loaded, PrefixShapeSoftmax)
        and POSTERIOR_MODELS[loaded.name] is PrefixShapeSoftmax
    )
    assert (loaded.l2, loaded.points, loaded.log_scales.tolist()) == (0.05, 16, [0.3, 0.1])
    np.testing.assert_allclose(
        loaded.posteriors(store).proba, model.posteriors(store).proba, atol=1e-6
    )


def test_bad_input_one_line() -> None:
    with pytest.raises(ValueError, match="points: expected a positive integer"):
        PrefixShapeSoftmax(points=0)
    with pytest.raises(RuntimeError, match="fit\\(\\) it first"):
        PrefixShapeSoftmax().arrays()


def test_buckets_by_hand() -> None:
    assert step_buckets(np.array([1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 15, 16]), 99).tolist() == [
        0,
        1,
        2,
        3,
        3,
        4,
        4,
        5,
        5,
        6,
        6,
        7,
    ]
    assert step_buckets(np.array([1000]), 4).tolist() == [3]


def test_nearest_neighbour_logits_by_hand(tmp_path) -> None:
    """Training clips (0, 0, 0) of class 0 and (2, 2) of class 1 (padded with its last step);
    frames standardised by their std sqrt(0.96), so squared distances are divided by 0.96.
    Test clip (1, 0, 2, 0): mean squared distances to class 0 after 1..4 steps 1, 1/2, 5/3,
    5/4; to class 1: 1, 5/2, 5/3, 9/4 (the 4th step is past every training clip)."""
    train = FeatureStore.create(
        tmp_path / "train",
        [np.zeros((3, 1)), np.full((2, 1), 2.0)],
        [0, 1],
        ["a", "b"],
        ["zero", "two", "never"],
    )
    model = PrefixNearestNeighbour().fit(train)
    logits = model.clip_logits(np.array([[1.0], [0.0], [2.0], [0.0]]))
    expected = -np.array([[1, 1], [0.5, 2.5], [5 / 3, 5 / 3], [1.25, 2.25]]) / 0.96
    np.testing.assert_allclose(logits[:, :2], expected, rtol=1e-5)
    # no training clip of class 2: it sits MISSING_CLASS_GAP behind the nearest class
    np.testing.assert_allclose(logits[:, 2], expected.max(axis=1) - 10.0, rtol=1e-5)


def test_nearest_neighbour_scales_each_bucket(tmp_path) -> None:
    model = PrefixNearestNeighbour()
    model.log_scales = np.log([1.0, 2.0, 3.0])
    logits = np.array([[1.0, 0.0]] * 4, np.float32)  # one clip of 4 steps: buckets 0, 1, 2, 2
    post = model.posteriors_from_logits(logits, np.array([4]), np.array([0]))
    expected = [1 / (1 + np.exp(-s)) for s in (1.0, 2.0, 3.0, 3.0)]
    np.testing.assert_allclose(post.proba[:, 0], expected, rtol=1e-5)


def test_nearest_neighbour_round_trip(tmp_path) -> None:
    store = ramp_store(tmp_path / "e")
    model = PrefixNearestNeighbour().fit(store)
    model.fit_calibration(model.running_logits(store), store.lengths, store.labels)
    save_posterior_model(model, tmp_path / "posterior.npz")
    loaded = load_posterior_model(tmp_path / "posterior.npz")
    assert isinstance(loaded, PrefixNearestNeighbour)
    np.testing.assert_allclose(
        loaded.posteriors(store).proba, model.posteriors(store).proba, atol=1e-6
    )
