"""Posterior models: hand-computed posteriors, calibration, saving, and bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avemotion.posterior import Posteriors, RunningMeanSoftmax, StoreLogits, load_posterior_model
from avemotion.posterior.models import save_posterior_model
from avemotion.store import FeatureStore


def test_posteriors_from_logits_by_hand() -> None:
    logits = np.array(
        [[0.0, math.log(3)], [0.0, math.log(3)]], dtype=np.float32
    )  # one clip, 2 steps
    plain = Posteriors.from_logits(logits, np.array([2]), np.array([1]))
    np.testing.assert_allclose(plain.proba, [[0.25, 0.75], [0.25, 0.75]], rtol=1e-6)
    # calibration (a, b): logits x exp(a + b log n); (log 2, 0) doubles them: 1/10, 9/10;
    # (0, 1) multiplies step n's by n: step 1 as is, step 2 doubled
    doubled = Posteriors.from_logits(logits, np.array([2]), np.array([1]), (math.log(2), 0.0))
    np.testing.assert_allclose(doubled.proba, [[0.1, 0.9], [0.1, 0.9]], rtol=1e-5)
    growing = Posteriors.from_logits(logits, np.array([2]), np.array([1]), (0.0, 1.0))
    np.testing.assert_allclose(growing.proba, [[0.25, 0.75], [0.1, 0.9]], rtol=1e-5)
    np.testing.assert_allclose(growing.at(np.array([2])), [[0.1, 0.9]], rtol=1e-5)


def test_running_mean_logits_are_the_mean_of_step_logits(tiny_store) -> None:
    model = RunningMeanSoftmax().fit(tiny_store)
    frames = np.asarray(tiny_store.clip(0).frames)
    running = model.running_logits(tiny_store)[: len(frames)]
    steps = model.step_logits(frames)
    np.testing.assert_allclose(
        running, np.cumsum(steps, axis=0) / np.arange(1, len(frames) + 1)[:, None], atol=1e-4
    )


def test_saved_model_gives_the_same_posteriors(tiny_store, tmp_path) -> None:
    model = RunningMeanSoftmax(l2=0.05).fit(tiny_store)
    model.calibration = (0.2, 0.3)
    save_posterior_model(model, tmp_path / "posterior.npz")
    loaded = load_posterior_model(tmp_path / "posterior.npz")
    assert isinstance(loaded, RunningMeanSoftmax) and loaded.calibration == (0.2, 0.3)
    np.testing.assert_allclose(
        loaded.posteriors(tiny_store).proba, model.posteriors(tiny_store).proba, atol=1e-6
    )


def test_store_logits_reads_the_posterior_columns(tmp_path) -> None:
    frames = [np.array([[9.0, 0.0, math.log(3)], [9.0, math.log(3), 0.0]], dtype=np.float32)]
    store = FeatureStore.create(
        tmp_path / "t", frames, [0], ["a"], ["x", "y"], meta={"parts": {"posteriors": [1, 3]}}
    )
    post = StoreLogits().fit(store).posteriors(store)
    np.testing.assert_allclose(post.proba, [[0.25, 0.75], [0.75, 0.25]], rtol=1e-6)
    bare = FeatureStore.create(tmp_path / "b", frames, [0], ["a"], ["x", "y"])
    with pytest.raises(ValueError, match="meta.parts.posteriors: missing"):
        StoreLogits().fit(bare)


def test_bad_posterior_files_are_refused_in_one_line(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="posterior.npz: missing"):
        load_posterior_model(tmp_path / "posterior.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.npz: unreadable posterior model"):
        load_posterior_model(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", kind=np.asarray("mystery"))
    with pytest.raises(ValueError, match="other.npz: kind: expected one of"):
        load_posterior_model(tmp_path / "other.npz")
