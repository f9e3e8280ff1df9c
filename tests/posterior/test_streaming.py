"""Every posterior model streams: ``model.stream()`` gives, step by step, the posterior
its offline ``posteriors(store)`` gives (within 1e-5); hand-computed states; bad rows."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from avemotion.posterior import (
    POSTERIOR_MODELS,
    PrefixMiniRocket,
    PrefixNearestNeighbour,
    PrefixShapeSoftmax,
    RunningMeanSoftmax,
    StoreLogits,
    cross_fit,
    load_posterior_model,
)
from avemotion.posterior.models import RunningSum, save_posterior_model
from avemotion.posterior.prefix_rocket import rocket_available
from avemotion.posterior.prefix_shape import PrefixSums, prefix_features
from avemotion.store import FeatureStore

CLASSES = ["a", "b", "c"]
POSTERIOR_NAMES = [
    RunningMeanSoftmax.name,
    StoreLogits.name,
    PrefixShapeSoftmax.name,
    PrefixNearestNeighbour.name,
]


def random_store(path: Path, dim: int, seed: int = 0) -> FeatureStore:
    """12 clips of 3 classes and 3 speakers, 2 to 30 steps, a class-dependent drift; the
    last 3 columns are per-step logits (for the store-logits model)."""
    rng = np.random.default_rng(seed)
    frames, labels = [], []
    for i in range(12):
        label, length = i % 3, int(rng.integers(2, 31))
        drift = np.linspace(0, label - 1.0, length)[:, None]
        frames.append((rng.normal(size=(length, dim)) + drift).astype(np.float32))
        labels.append(label)
    speakers = [f"s{i % 3}" for i in range(12)]
    parts = {"posteriors": [dim - 3, dim]}
    return FeatureStore.create(path, frames, labels, speakers, CLASSES, meta={"parts": parts})


def fitted(name: str, store: FeatureStore) -> object:
    """The model ``name`` cross-fitted on ``store`` (calibrated out of fold), saved and
    loaded back: what a run reads."""
    model = cross_fit(store, POSTERIOR_MODELS[name], 3).model
    path = store.path.parent / f"{name}.npz"
    save_posterior_model(model, path)
    return load_posterior_model(path)


needs_aeon = pytest.mark.skipif(not rocket_available(), reason="aeon is not installed")
CASES = [
    *((name, dim) for dim in (4, 70) for name in POSTERIOR_NAMES),  # 70: no prefix extras
    pytest.param(PrefixMiniRocket.name, 4, marks=needs_aeon),  # a model for series only
]


@pytest.mark.parametrize(("name", "dim"), CASES)
def test_stream_equals_offline_posteriors(name: str, dim: int, tmp_path: Path) -> None:
    store = random_store(tmp_path / "store", dim)
    model = fitted(name, store)
    offline = model.posteriors(store)
    stream = model.stream()
    for i in (0, 5, 11, 0):  # the last one after a reset: nothing carries over
        stream.reset()
        frames = store.clip(i).frames
        online = np.stack([stream.update(row) for row in frames])
        assert online.dtype == np.float32 and stream.t == len(frames)
        expected = offline.proba[offline.offsets[i] : offline.offsets[i] + len(frames)]
        np.testing.assert_allclose(online, expected, atol=1e-5)


def test_running_mean_state_by_hand() -> None:
    """Rows (1, 2) and (3, 6): running means (1, 2) then (2, 4); one more row (5, 1)
    gives (3, 3)."""
    total = RunningSum(2)
    np.testing.assert_array_equal(
        total.extend(np.array([[1.0, 2.0], [3.0, 6.0]])), [[1, 2], [2, 4]]
    )
    np.testing.assert_array_equal(total.extend(np.array([[5.0, 1.0]])), [[3, 3]])
    assert total.t == 3 and total.total.tolist() == [9.0, 9.0]


def test_running_mean_stream_by_hand(tmp_path: Path) -> None:
    """Identity regression on 2 classes (mean 0, std 1, W = I, b = 0) with calibration
    (log 2, 0): after rows (1, 0) and (0, 0) the mean is (0.5, 0), the scaled logits
    (1, 0), the posterior (e/(1+e), 1/(1+e))."""
    model = RunningMeanSoftmax.from_arrays(
        {
            "mean": np.zeros(2, np.float32),
            "std": np.ones(2, np.float32),
            "weight": np.eye(2, dtype=np.float32),
            "bias": np.zeros(2, np.float32),
            "calibration": np.array([math.log(2), 0.0]),
            "l2": np.asarray(0.01),
        }
    )
    stream = model.stream()
    stream.update(np.array([1.0, 0.0]))
    e = math.e
    np.testing.assert_allclose(stream.update(np.zeros(2)), [e / (1 + e), 1 / (1 + e)], rtol=1e-6)


def test_prefix_sums_by_hand() -> None:
    """Steps 1, 3, 5 fed one at a time give the features fed at once; after 3 steps the
    2 segments are 5/3 and 13/3 (see test_prefix_shape), the std sqrt(35/3 − 9)."""
    sums = PrefixSums(1)
    rows = [sums.features(np.array([[v]]), 2)[0] for v in (1.0, 3.0, 5.0)]
    np.testing.assert_array_equal(
        np.stack(rows), prefix_features(np.array([[1.0], [3.0], [5.0]]), 2)
    )
    np.testing.assert_allclose(rows[2][:3], [5 / 3, 13 / 3, math.sqrt(35 / 3 - 9)], rtol=1e-6)
    assert sums.t == 3 and sums.cumulative.ravel().tolist() == [0.0, 1.0, 4.0, 9.0]


def test_prefix_sums_grow_past_their_buffer() -> None:
    x = np.random.default_rng(1).normal(size=(100, 2))
    sums = PrefixSums(2)
    online = np.vstack([sums.features(x[t : t + 1], 3) for t in range(100)])
    np.testing.assert_array_equal(online, prefix_features(x, 3))


def test_nearest_neighbour_stream_by_hand(tmp_path: Path) -> None:
    """Training clips (0, 0, 0) of class 0 and (2, 2) of class 1, standardised by their
    std sqrt(0.96) about 0.8: streaming (1, 0, 2, 0) gives, after each step, minus the
    mean squared distances 1, 1/2, 5/3, 5/4 (class 0) and 1, 5/2, 5/3, 9/4 (class 1),
    over 0.96; its state after 2 steps holds the sums of squared distances (1, 5)/0.96."""
    train = FeatureStore.create(
        tmp_path / "train", [np.zeros((3, 1)), np.full((2, 1), 2.0)], [0, 1], ["a", "b"], ["z", "t"]
    )
    model = PrefixNearestNeighbour().fit(train)
    state = model.logit_state()
    logits = [state.extend(np.array([[v]]))[0] for v in (1.0, 0.0)]
    np.testing.assert_allclose(state.total, np.array([1.0, 5.0]) / 0.96, rtol=1e-5)
    logits += [state.extend(np.array([[v]]))[0] for v in (2.0, 0.0)]
    expected = -np.array([[1, 1], [0.5, 2.5], [5 / 3, 5 / 3], [1.25, 2.25]]) / 0.96
    np.testing.assert_allclose(np.stack(logits), expected, rtol=1e-5)


@needs_aeon
def test_minirocket_stream_keeps_the_steps_up_to_its_last_point(tmp_path: Path) -> None:
    """Points 1, 2, 3, 4, 6, 8, 11, 16, 23 for clips up to 30 steps: the logits change at
    points only, and no step after the last point is kept."""
    store = random_store(tmp_path / "store", 4)
    state = PrefixMiniRocket().fit(store).logit_state()
    logits = state.extend(np.zeros((40, 4), np.float32) + np.arange(40)[:, None])
    changes = [t + 1 for t in range(1, 40) if not np.array_equal(logits[t], logits[t - 1])]
    assert set(changes) <= {2, 3, 4, 6, 8, 11, 16, 23}
    assert len(state.frames) == state.last_point == 23 and state.t == 40


@pytest.mark.parametrize("name", POSTERIOR_NAMES)
def test_a_row_of_the_wrong_width_is_refused_in_one_line(name: str, tmp_path: Path) -> None:
    store = random_store(tmp_path / "store", 5)
    stream = POSTERIOR_MODELS[name]().fit(store).stream()
    stream.update(np.zeros(5))
    with pytest.raises(ValueError) as error:
        stream.update(np.zeros(6))
    message = str(error.value)
    assert message.startswith(f"posterior {name}: row: expected 5 values per step")
    assert "(6,)" in message and "\n" not in message
    assert stream.t == 1  # the refused row changed nothing


def test_an_unfitted_or_unsized_model_cannot_stream(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="fit\\(\\) it first"):
        RunningMeanSoftmax().stream()
    with pytest.raises(ValueError, match="records no row width"):
        StoreLogits((0, 3)).stream()
