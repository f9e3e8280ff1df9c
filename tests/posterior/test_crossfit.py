"""Cross-fitting (avemotion.posterior.crossfit): every training clip seen through a model
blind to its speaker."""

from __future__ import annotations

import numpy as np
import pytest

from avemotion.posterior import Posteriors, RunningMeanSoftmax, cross_fit, fit_calibration
from avemotion.posterior.crossfit import subset_posteriors
from avemotion.store import FeatureStore


def test_out_of_fold_logits_come_from_models_blind_to_the_speaker(tiny_store) -> None:
    fitted = cross_fit(tiny_store, lambda: RunningMeanSoftmax(1e-2), n_folds=0)
    assert fitted.folds.members == [["P1"], ["P2"], ["P3"]]
    for speaker in tiny_store.speaker_set:
        blind = RunningMeanSoftmax(1e-2).fit(
            tiny_store.subset(exclude_speakers=[speaker]), init=fitted.model.model
        )
        for i in np.flatnonzero(np.array(tiny_store.speakers) == speaker)[:2]:
            expected = blind.step_logits(np.asarray(tiny_store.clip(int(i)).frames))
            np.testing.assert_allclose(fitted.step_logits[int(i)], expected, atol=1e-3)
    # the out-of-fold posteriors are those logits' running means, calibrated
    z = fitted.step_logits[0]
    running = np.cumsum(z, axis=0) / np.arange(1, len(z) + 1)[:, None]
    a, b = fitted.model.calibration
    scaled = running * np.exp(a + b * np.log(np.arange(1, len(z) + 1)))[:, None]
    expected = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(fitted.posteriors.proba[: len(z)], expected, atol=1e-5)


def test_out_of_fold_posteriors_are_weaker_than_in_sample(tiny_store) -> None:
    """The reason for cross-fitting: on its own speakers a model is over-confident."""
    fitted = cross_fit(tiny_store)
    in_sample = fitted.model.posteriors(tiny_store)
    assert in_sample.proba.max(axis=1).mean() > fitted.posteriors.proba.max(axis=1).mean()


def test_one_speaker_is_cross_fitted_on_clip_folds(tiny_store) -> None:
    """One speaker: 4 stratified clip folds, each clip seen through a model blind to it;
    one fold asked: nothing held out, the posteriors in-sample and uncalibrated."""
    one = tiny_store.subset(speakers=["P1"])
    fitted = cross_fit(one, lambda: RunningMeanSoftmax(1e-2))
    assert fitted.folds.kind == "clip" and len(fitted.folds) == 4
    assert sorted(sum(fitted.folds.members, [])) == sorted(one.clip_ids)
    held = fitted.folds.held_out(one)[0]
    rest = np.setdiff1d(np.arange(one.n_clips), held)
    blind = RunningMeanSoftmax(1e-2).fit(one.subset(indices=rest), init=fitted.model.model)
    i = int(held[0])
    expected = blind.step_logits(np.asarray(one.clip(i).frames))
    np.testing.assert_allclose(fitted.step_logits[i], expected, atol=1e-3)
    alone = cross_fit(one, n_folds=1)
    assert alone.folds.kind == "none" and alone.step_logits is None
    assert alone.model.calibration == (0.0, 0.0)


def test_subset_posteriors_picks_rows_and_rebuilds_offsets_by_hand() -> None:
    # clip 0: rows 0-1 (label 1); clip 1: row 2 (label 0); clip 2: rows 3-5 (label 0)
    proba = np.array([[0.1, 0.9], [0.2, 0.8], [0.3, 0.7], [0.4, 0.6], [0.5, 0.5], [0.6, 0.4]])
    post = Posteriors(proba, np.array([0, 2, 3]), np.array([2, 1, 3]), np.array([1, 0, 0]))
    part = subset_posteriors(post, np.array([2, 0]))
    # clips 2 then 0: rows 3, 4, 5 then 0, 1; lengths 3, 2, so offsets 0, 3; labels 0, 1
    np.testing.assert_array_equal(
        part.proba, [[0.4, 0.6], [0.5, 0.5], [0.6, 0.4], [0.1, 0.9], [0.2, 0.8]]
    )
    assert part.offsets.tolist() == [0, 3] and part.lengths.tolist() == [3, 2]
    assert part.labels.tolist() == [0, 1]
    # subset clip 0 (clip 2) after 3 steps: row 0 + 3 - 1 = 2 = [0.6, 0.4];
    # subset clip 1 (clip 0) after 1 step: row 3 + 1 - 1 = 3 = [0.1, 0.9]
    np.testing.assert_array_equal(part.at(np.array([3, 1])), [[0.6, 0.4], [0.1, 0.9]])
    middle = subset_posteriors(post, np.array([1]))
    np.testing.assert_array_equal(middle.proba, [[0.3, 0.7]])
    assert (middle.offsets.tolist(), middle.lengths.tolist(), middle.labels.tolist()) == (
        [0],
        [1],
        [0],
    )


FIVE = ["D", "A", "E", "C", "B"]
"""Five speakers, in store order (not sorted): speaker_folds sorts them to A B C D E and
cuts them into 2 contiguous groups of near-equal size (np.array_split of 5: 3 then 2)."""


def five_speaker_store(path) -> FeatureStore:
    """Four clips per speaker (two per class), 2-D steps, 2 or 3 steps each; the classes
    overlap (unit noise around ±(1, -1)) so that no fit here is separable."""
    rng = np.random.default_rng(0)
    sequences, labels, speakers = [], [], []
    for speaker in FIVE:
        for k in range(4):
            label = k % 2
            length = int(rng.integers(2, 4))
            centre = np.array([1.0, -1.0]) * (1 if label else -1)
            sequences.append((centre + rng.normal(0.0, 1.0, (length, 2))).astype(np.float32))
            labels.append(label)
            speakers.append(speaker)
    return FeatureStore.create(path, sequences, labels, speakers, ["calm", "sad"])


def test_cross_fit_holds_out_the_speaker_folds_and_each_fold_is_blind(tmp_path) -> None:
    store = five_speaker_store(tmp_path / "five")
    fitted = cross_fit(store, lambda: RunningMeanSoftmax(1e-2), n_folds=2)
    assert fitted.folds.members == [["A", "B", "C"], ["D", "E"]]
    # A second implementation: fit a model blind to each fold (warm-started from the full
    # fit, as documented), take the running mean of each held clip's steps, its logits,
    # then the calibration fitted on these out-of-fold logits, then the softmax.
    logits = [np.empty(0)] * store.n_clips
    for held in (["A", "B", "C"], ["D", "E"]):
        rest = store.subset(exclude_speakers=held)
        assert sorted(rest.speaker_set) == sorted(set(FIVE) - set(held))
        blind = RunningMeanSoftmax(1e-2).fit(rest, init=fitted.model.model)
        for i in range(store.n_clips):
            if store.speakers[i] in held:
                x = np.asarray(store.clip(i).frames, np.float64)
                running = np.cumsum(x, axis=0) / np.arange(1, len(x) + 1)[:, None]
                logits[i] = blind.model.logits(running.astype(np.float32))
                np.testing.assert_allclose(
                    fitted.step_logits[i], blind.model.logits(x.astype(np.float32)), atol=1e-5
                )
    steps = np.concatenate([np.arange(1, n + 1) for n in store.lengths])
    rows = np.vstack(logits)
    a, b = fit_calibration(rows, steps, np.repeat(store.labels, store.lengths))
    # (L-BFGS on float32 logits: the two calibration fits agree to ~2e-4)
    np.testing.assert_allclose(fitted.model.calibration, (a, b), atol=2e-3)
    scaled = rows * np.exp(a + b * np.log(steps))[:, None]
    expected = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(fitted.posteriors.proba, expected, atol=1e-3)
    assert fitted.posteriors.offsets.tolist() == store.offsets.tolist()
    # and the out-of-fold logits are not the in-sample ones (the model saw every speaker)
    assert not np.allclose(rows, fitted.model.running_logits(store), atol=1e-3)


class TrainingMean:
    """A posterior model with no logits whose output tells what it was fitted on: every step
    of every clip gets P(class 0) = (mean of the fitted clips' mean step) / 10."""

    def fit(self, store: FeatureStore, init=None) -> TrainingMean:
        self.p = float(np.mean([store.clip(i).frames.mean() for i in range(store.n_clips)])) / 10
        return self

    def posteriors(self, store: FeatureStore) -> Posteriors:
        rows = np.tile([self.p, 1 - self.p], (int(store.lengths.sum()), 1))
        offsets = np.concatenate([[0], np.cumsum(store.lengths)[:-1]])
        return Posteriors(rows, offsets, store.lengths, store.labels)


def test_cross_fit_posteriors_come_from_the_other_fold_by_hand(tmp_path) -> None:
    # one clip per speaker, every step of speaker s's clip equal to its value below
    value = {"D": 4.0, "A": 1.0, "E": 5.0, "C": 3.0, "B": 2.0}
    lengths = {"D": 2, "A": 1, "E": 3, "C": 2, "B": 1}
    store = FeatureStore.create(
        tmp_path / "means",
        [np.full((lengths[s], 1), value[s], np.float32) for s in FIVE],
        [0, 1, 0, 1, 0],
        FIVE,
        ["calm", "sad"],
    )
    fitted = cross_fit(store, TrainingMean, n_folds=2)
    assert fitted.folds.members == [["A", "B", "C"], ["D", "E"]] and fitted.step_logits is None
    # fold A B C is seen through a model fitted on D, E: p = (4 + 5) / 2 / 10 = 0.45;
    # fold D E through a model fitted on A, B, C: p = (1 + 2 + 3) / 3 / 10 = 0.2;
    # the returned model saw all five: p = 15 / 5 / 10 = 0.3
    p = {"A": 0.45, "B": 0.45, "C": 0.45, "D": 0.2, "E": 0.2}
    # store order D A E C B, lengths 2 1 3 2 1: rows D D A E E E C C B
    expected_p = [0.2, 0.2, 0.45, 0.2, 0.2, 0.2, 0.45, 0.45, 0.45]
    assert expected_p == [p[s] for s in FIVE for _ in range(lengths[s])]
    np.testing.assert_allclose(fitted.posteriors.proba[:, 0], expected_p, atol=1e-7)
    np.testing.assert_allclose(fitted.posteriors.proba[:, 1], 1 - np.array(expected_p), atol=1e-7)
    assert fitted.posteriors.offsets.tolist() == [0, 2, 3, 6, 8]
    assert fitted.posteriors.lengths.tolist() == [2, 1, 3, 2, 1]
    assert fitted.posteriors.labels.tolist() == [0, 1, 0, 1, 0]
    assert fitted.model.p == pytest.approx(0.3)
