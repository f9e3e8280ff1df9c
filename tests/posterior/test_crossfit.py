"""Cross-fitting: every training clip seen through a model blind to its speaker."""

from __future__ import annotations

import numpy as np

from avemotion.posterior import RunningMeanSoftmax, cross_fit


def test_out_of_fold_logits_come_from_models_blind_to_the_speaker(tiny_store) -> None:
    fitted = cross_fit(tiny_store, RunningMeanSoftmax(1e-2), n_folds=0)
    assert fitted.folds == [["P1"], ["P2"], ["P3"]]
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


def test_one_speaker_has_nothing_to_hold_out(tiny_store) -> None:
    one = tiny_store.subset(speakers=["P1"])
    fitted = cross_fit(one)
    assert fitted.step_logits is None and fitted.model.calibration == (0.0, 0.0)
