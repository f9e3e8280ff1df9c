"""MiniRocket + ridge at classification points, as a posterior model (needs aeon)."""

from __future__ import annotations

import numpy as np
import pytest
from test_prefix_shape import ramp_store

from avemotion.posterior import POSTERIOR_MODELS, load_posterior_model
from avemotion.posterior.candidates import DEFAULT_CANDIDATES, default_candidates
from avemotion.posterior.models import save_posterior_model
from avemotion.posterior.prefix_rocket import (
    ROCKET_MAX_DIM,
    PrefixMiniRocket,
    RidgeScores,
    prefix_panel,
    rocket_available,
)
from avemotion.store import FeatureStore

needs_aeon = pytest.mark.skipif(
    not rocket_available(),
    reason="aeon (the `aeon` extra) is not installed",
)


def test_prefix_panel_pads_with_the_last_step_by_hand() -> None:
    """Clip a (3 steps) cut at 2: [1, 2] then 2 up to MiniRocket's 9; clip b (1 step)
    shorter than the point: its one step throughout."""
    a = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]], np.float32)
    b = np.array([[5.0, 50.0]], np.float32)
    panel = prefix_panel([a, b], 2)
    assert panel.shape == (2, 2, 9)
    np.testing.assert_array_equal(panel[0, 0], [1, 2, 2, 2, 2, 2, 2, 2, 2])
    np.testing.assert_array_equal(panel[0, 1], [10, 20, 20, 20, 20, 20, 20, 20, 20])
    np.testing.assert_array_equal(panel[1], np.full((2, 9), [[5.0], [50.0]]))
    assert prefix_panel([a], 12).shape == (1, 2, 12)  # longer points: no minimum padding


def test_ridge_scores_by_hand() -> None:
    """Four classes, the ridge saw classes 0 and 2 (binary): one score s = 2·x₀ − 1 for
    class 2 (the second seen), −s for class 0, and min − 1 for the classes it never saw.
    For x = (1.5,) scaled by 0.5: s = 2·3 − 1 = 5, so the row is (−5, −6, 5, −6)."""
    ridge = RidgeScores(
        np.array([0.5]), np.array([[-2.0], [2.0]]), np.array([1.0, -1.0]), np.array([0, 2]), 4
    )
    np.testing.assert_allclose(ridge.logits(np.array([[1.5]])), [[-5.0, -6.0, 5.0, -6.0]])


def test_ridge_scores_of_one_class_and_of_two() -> None:
    features = np.array([[0.0], [1.0], [2.0], [3.0]])
    only = RidgeScores.fit(features, np.array([1, 1, 1, 1]), 3)
    np.testing.assert_array_equal(only.logits(features[:1]), [[-1.0, 0.0, -1.0]])
    two = RidgeScores.fit(features, np.array([0, 0, 1, 1]), 2)
    logits = two.logits(features)
    np.testing.assert_allclose(logits[:, 0], -logits[:, 1])  # the (−s, s) pair
    assert logits.argmax(axis=1).tolist() == [0, 0, 1, 1]


@needs_aeon
def test_posteriors_are_causal_and_constant_between_points(tmp_path) -> None:
    store = ramp_store(tmp_path / "a")
    model = PrefixMiniRocket().fit(store)
    model.fit_calibration(model.running_logits(store), store.lengths, store.labels)
    sequences = [np.array(store.clip(i).frames) for i in range(store.n_clips)]
    cut = 6  # points 1, 2, 3, 4, 6, 8, 11: step 6 starts a point, steps 4 and 5 share one
    for s in sequences:
        s[cut:] = -s[cut:] + 3.0
    other = FeatureStore.create(
        tmp_path / "b", sequences, store.labels, store.speakers, store.class_names
    )
    za, zb = model.running_logits(store), model.running_logits(other)
    offsets = model.posteriors(store).offsets
    for i in range(store.n_clips):
        rows = slice(offsets[i], offsets[i] + cut)
        np.testing.assert_array_equal(za[rows], zb[rows])
        np.testing.assert_array_equal(za[offsets[i] + 3], za[offsets[i] + 4])
    # step 8 reads steps 7 and 8 of the changed clips
    assert not np.allclose(za[offsets + 7], zb[offsets + 7])


@needs_aeon
def test_it_tells_rising_from_falling(tmp_path) -> None:
    store = ramp_store(tmp_path / "ramps", n_per_class=20)
    post = PrefixMiniRocket().fit(store).posteriors(store)
    assert np.mean(post.at(store.lengths).argmax(axis=1) == store.labels) == 1.0


@needs_aeon
def test_save_and_load_round_trip(tmp_path) -> None:
    store = ramp_store(tmp_path / "d")
    model = PrefixMiniRocket(seed=3).fit(store)
    model.log_scales = np.linspace(-0.5, 0.5, len(model.transforms))
    save_posterior_model(model, tmp_path / "posterior.npz")
    loaded = load_posterior_model(tmp_path / "posterior.npz")
    assert (
        isinstance(loaded, PrefixMiniRocket) and POSTERIOR_MODELS[loaded.name] is PrefixMiniRocket
    )
    assert loaded.seed == 3 and len(loaded.transforms) == len(model.transforms) == 7
    np.testing.assert_array_equal(loaded.running_logits(store), model.running_logits(store))
    np.testing.assert_array_equal(loaded.posteriors(store).proba, model.posteriors(store).proba)


def test_unfitted_model_one_line() -> None:
    with pytest.raises(RuntimeError, match="fit\\(\\) it first"):
        PrefixMiniRocket().store_logits([np.zeros((3, 1), np.float32)])


def test_default_candidates_add_it_to_series_only(
    tiny_store_factory, tmp_path, monkeypatch
) -> None:
    import avemotion.posterior.candidates as selection

    narrow = tiny_store_factory(tmp_path / "narrow", dim=ROCKET_MAX_DIM)
    wide = tiny_store_factory(tmp_path / "wide", dim=ROCKET_MAX_DIM + 1)
    monkeypatch.setattr(selection, "rocket_available", lambda: True)
    assert default_candidates(narrow) == (*DEFAULT_CANDIDATES, "prefix-minirocket")
    assert default_candidates(wide) == DEFAULT_CANDIDATES
    monkeypatch.setattr(selection, "rocket_available", lambda: False)  # without the aeon extra
    assert default_candidates(narrow) == DEFAULT_CANDIDATES


@needs_aeon
def test_the_candidates_are_part_of_the_cache_key(tiny_store, tmp_path, monkeypatch) -> None:
    """A run with aeon installed does not read a selection made without it (nor the reverse)."""
    import json

    import avemotion.posterior.candidates as selection
    from avemotion.training.train import fit_posterior

    monkeypatch.setenv("AVEMOTION_CACHE", str(tmp_path / "cache"))
    seen = []
    for available in (False, True, True):
        monkeypatch.setattr(selection, "rocket_available", lambda a=available: a)
        run, status = tmp_path / f"run{len(seen)}", {}
        run.mkdir()
        fit_posterior(tiny_store, run, {}, "auto", status)
        scored = json.loads((run / "rules.json").read_text())["selection"]
        seen.append((status["cache"], "prefix-minirocket" in scored))
    assert seen == [("miss", False), ("miss", True), ("hit", True)]
