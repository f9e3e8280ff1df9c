"""Posterior models (:mod:`avemotion.posterior.models`) by hand.

The running means and whole-clip means of a store, a row softmax, and
:class:`RunningMeanSoftmax` on a 2-class, 2-dim toy with hand-set parameters: running
mean -> standardised input -> logits -> step-calibrated posterior. Also what its fits pass
on, its ``arrays``/``from_arrays`` round trip, its refusal before a fit, and
:class:`StoreLogits`; :class:`Posteriors` from logits, and bad posterior files refused.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from avemotion.posterior import Posteriors, models
from avemotion.posterior.models import (
    RunningMeanSoftmax,
    StoreLogits,
    clip_means,
    load_posterior_model,
    running_means,
    save_posterior_model,
    softmax_rows,
)
from avemotion.posterior.softmax import SoftmaxRegression
from avemotion.store import FeatureStore

LN3 = math.log(3)

# Clip 0 (class "sad" = 1): frames (1, 1), (5, -1); running means (1, 1), (3, 0).
# Clip 1 (class "calm" = 0): frame (3, 0); running mean (3, 0).
CLIPS = [[[1.0, 1.0], [5.0, -1.0]], [[3.0, 0.0]]]

# Hand-set regression: inputs standardised by mean (1, 0) and std (2, 1); the "calm" logit
# is the bias 0, the "sad" logit ln3 · z0 - ln3 · z1.
PARAMETERS = {
    "mean": np.array([1.0, 0.0], np.float32),
    "std": np.array([2.0, 1.0], np.float32),
    "weight": np.array([[0.0, LN3], [0.0, -LN3]], np.float32),
    "bias": np.array([0.0, 0.0], np.float32),
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    return FeatureStore.create(
        tmp_path_factory.mktemp("models") / "toy",
        [np.array(clip, np.float32) for clip in CLIPS],
        [1, 0],
        ["S1", "S2"],
        ["calm", "sad"],
    )


def toy_model(calibration: tuple[float, float] = (0.0, 1.0), l2: float = 0.5) -> RunningMeanSoftmax:
    arrays = {**PARAMETERS, "calibration": np.array(calibration), "l2": np.asarray(l2)}
    return RunningMeanSoftmax.from_arrays(arrays)


def test_softmax_rows_by_hand() -> None:
    """exp(0) : exp(ln 3) = 1 : 3 -> (1/4, 3/4); shifting a row changes nothing, even by
    1000 (the maximum is subtracted before exp); float32 out."""
    proba = softmax_rows(np.array([[0.0, LN3], [1000.0, 1000.0 + LN3], [LN3, 0.0]]))
    np.testing.assert_allclose(proba, [[0.25, 0.75], [0.25, 0.75], [0.75, 0.25]], rtol=1e-6)
    assert proba.dtype == np.float32


def test_running_means_and_clip_means_by_hand(store: FeatureStore) -> None:
    """Clip 0: (1, 1), then ((1, 1) + (5, -1)) / 2 = (3, 0); clip 1: (3, 0). Rows name their
    clip and how many steps they cover. Whole-clip means: (3, 0) and (3, 0)."""
    means, clips, steps = running_means(store)
    np.testing.assert_array_equal(means, [[1, 1], [3, 0], [3, 0]])
    assert clips.tolist() == [0, 0, 1] and steps.tolist() == [1, 2, 1]
    np.testing.assert_array_equal(clip_means(store), [[3, 0], [3, 0]])


def test_running_mean_softmax_logits_by_hand(store: FeatureStore) -> None:
    """Standardised running means z = (m - (1, 0)) / (2, 1): (1, 1) -> (0, 1),
    (3, 0) -> (1, 0), (3, 0) -> (1, 0); "sad" logit ln3 (z0 - z1): -ln3, ln3, ln3.
    Each step alone: (1, 1) -> -ln3, (5, -1) -> z (2, -1) -> 3 ln3; the mean of the first
    two, (-ln3 + 3 ln3) / 2 = ln3, is the running logit of step 2."""
    model = toy_model()
    np.testing.assert_allclose(
        model.running_logits(store), [[0, -LN3], [0, LN3], [0, LN3]], rtol=1e-6, atol=1e-7
    )
    np.testing.assert_allclose(
        model.step_logits(np.array(CLIPS[0])), [[0, -LN3], [0, 3 * LN3]], rtol=1e-6, atol=1e-7
    )


def test_running_mean_softmax_calibrated_posteriors_by_hand(store: FeatureStore) -> None:
    """Calibration (0, 1) multiplies the logits after n steps by exp(0 + 1 · ln n) = n:
    clip 0 step 1: (0, -ln3) -> 3 : 1 -> (3/4, 1/4); step 2: (0, 2 ln3) -> 1 : 9 ->
    (1/10, 9/10); clip 1 step 1: (0, ln3) -> (1/4, 3/4). Calibration (ln 2, 0) doubles
    every logit: (0, -2 ln3) -> (9/10, 1/10), then (1/10, 9/10) twice."""
    post = toy_model((0.0, 1.0)).posteriors(store)
    np.testing.assert_allclose(post.proba, [[0.75, 0.25], [0.1, 0.9], [0.25, 0.75]], rtol=1e-5)
    assert post.offsets.tolist() == [0, 2] and post.lengths.tolist() == [2, 1]
    assert post.labels.tolist() == [1, 0]
    np.testing.assert_allclose(post.at(np.array([2, 1])), [[0.1, 0.9], [0.25, 0.75]], rtol=1e-5)
    doubled = toy_model((math.log(2), 0.0)).posteriors(store)
    np.testing.assert_allclose(doubled.proba, [[0.9, 0.1], [0.1, 0.9], [0.1, 0.9]], rtol=1e-5)


def test_fit_regresses_every_prefix_on_its_clips_label(
    store: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The regression is fitted on the running means (1, 1), (3, 0), (3, 0) (not the raw
    frames), with labels 1, 1, 0 (clip 0's twice), 2 classes, the model's l2 and the warm
    start given; the calibration is left as it was."""
    seen: dict = {}

    class Recording(SoftmaxRegression):
        def fit(self, x, y, n_classes, init=None):  # type: ignore[no-untyped-def]
            seen.update(x=x, y=y, n_classes=n_classes, init=init, l2=self.l2)
            return self

    monkeypatch.setattr(models, "SoftmaxRegression", Recording)
    warm = SoftmaxRegression()
    model = RunningMeanSoftmax(l2=0.25)
    model.calibration = (0.5, 0.25)
    assert model.fit(store, init=warm) is model
    np.testing.assert_array_equal(seen["x"], [[1, 1], [3, 0], [3, 0]])
    assert seen["y"].tolist() == [1, 1, 0] and seen["n_classes"] == 2
    assert seen["init"] is warm and seen["l2"] == 0.25
    assert isinstance(model.model, Recording) and model.calibration == (0.5, 0.25)


def test_fit_standardises_by_the_running_means(store: FeatureStore) -> None:
    """A real fit on the toy standardises by the running means' statistics: mean
    ((1 + 3 + 3) / 3, (1 + 0 + 0) / 3) = (7/3, 1/3); first column's deviations -4/3, 2/3,
    2/3, variance (16 + 4 + 4) / 9 / 3 = 8/9, std sqrt(8/9) (+ 1e-6)."""
    fitted = RunningMeanSoftmax().fit(store)
    np.testing.assert_allclose(fitted.model.mean, [7 / 3, 1 / 3], rtol=1e-6)
    assert fitted.model.std[0] == pytest.approx(math.sqrt(8 / 9) + 1e-6, rel=1e-6)


def test_fit_calibration_is_given_each_rows_step_and_label(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Clips of 2 and 1 steps labelled 1 and 0: rows at steps 1, 2, 1 with labels 1, 1, 0."""
    seen: dict = {}

    def fit_calibration(logits, steps, labels):  # type: ignore[no-untyped-def]
        seen.update(logits=logits, steps=steps, labels=labels)
        return 0.5, 0.25

    monkeypatch.setattr(models, "fit_calibration", fit_calibration)
    model = RunningMeanSoftmax()
    logits = np.arange(6.0).reshape(3, 2)
    model.fit_calibration(logits, np.array([2, 1]), np.array([1, 0]))
    assert seen["logits"] is logits
    assert seen["steps"].tolist() == [1, 2, 1] and seen["labels"].tolist() == [1, 1, 0]
    assert model.calibration == (0.5, 0.25)


def test_arrays_round_trip_exactly(store: FeatureStore, tmp_path: Path) -> None:
    """``arrays`` gives the parameters, calibration and l2 back unchanged; ``from_arrays`` of
    them is the same model (same arrays, same posteriors), also through a saved file."""
    model = toy_model((0.125, -0.5), l2=0.03)
    arrays = model.arrays()
    assert set(arrays) == {"mean", "std", "weight", "bias", "calibration", "l2"}
    for name, value in PARAMETERS.items():
        np.testing.assert_array_equal(arrays[name], value)
    assert arrays["calibration"].tolist() == [0.125, -0.5] and float(arrays["l2"]) == 0.03
    again = RunningMeanSoftmax.from_arrays(arrays)
    assert again.calibration == (0.125, -0.5) and again.l2 == 0.03
    assert all(type(v) is float for v in again.calibration)
    for name, value in again.arrays().items():
        np.testing.assert_array_equal(value, arrays[name])
    save_posterior_model(model, tmp_path / "posterior.npz")
    loaded = load_posterior_model(tmp_path / "posterior.npz")
    np.testing.assert_array_equal(loaded.posteriors(store).proba, model.posteriors(store).proba)


@pytest.mark.parametrize(
    "use",
    [
        lambda m, s: m.step_logits(np.zeros((1, 2))),
        lambda m, s: m.running_logits(s),
        lambda m, s: m.posteriors(s),
        lambda m, s: m.arrays(),
    ],
    ids=["step_logits", "running_logits", "posteriors", "arrays"],
)
def test_an_unfitted_model_is_refused(store: FeatureStore, use) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuntimeError, match=r"posterior model: fit\(\) it first"):
        use(RunningMeanSoftmax(), store)


def test_store_logits_refuses_columns_that_are_not_one_per_class(tmp_path: Path) -> None:
    """Posterior columns [1, 2) are 1 column for 2 classes; unfitted, it gives nothing."""
    frames = [np.zeros((2, 3), np.float32)]
    store = FeatureStore.create(
        tmp_path / "t", frames, [0], ["a"], ["x", "y"], meta={"parts": {"posteriors": [1, 2]}}
    )
    with pytest.raises(ValueError, match=r"meta.parts.posteriors: 1 columns for 2 classes"):
        StoreLogits().fit(store)
    with pytest.raises(RuntimeError, match=r"fit\(\) it first"):
        StoreLogits().posteriors(store)


def test_store_logits_round_trips_its_columns(tmp_path: Path) -> None:
    """Columns (1, 3) saved and loaded; on a store whose rows hold (9, 0, ln3) and
    (9, ln3, 0) they give 1 : 3 -> (1/4, 3/4), then (3/4, 1/4); column 0 is not read."""
    model = StoreLogits((1, 3))
    assert model.arrays()["columns"].tolist() == [1, 3]
    save_posterior_model(model, tmp_path / "posterior.npz")
    loaded = load_posterior_model(tmp_path / "posterior.npz")
    assert isinstance(loaded, StoreLogits) and loaded.columns == (1, 3)
    frames = [np.array([[9.0, 0.0, LN3], [9.0, LN3, 0.0]], np.float32)]
    store = FeatureStore.create(tmp_path / "s", frames, [0], ["a"], ["x", "y"])
    np.testing.assert_allclose(
        loaded.posteriors(store).proba, [[0.25, 0.75], [0.75, 0.25]], rtol=1e-6
    )


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
