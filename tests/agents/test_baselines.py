"""Non-RL baselines: each decides once per clip; θ and x come from the training speakers."""

from __future__ import annotations

import numpy as np
import pytest

from avemotion.agents.baselines import (
    FRACTIONS,
    THRESHOLDS,
    Posteriors,
    baseline_curves,
    evaluate_baselines,
    fit_baselines,
)
from avemotion.agents.baselines_aeon import aeon_available, classification_points, padded_panel


def test_posterior_decisions_hand_computed() -> None:
    proba = np.array([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    post = Posteriors(proba, offsets=np.array([0, 3]), lengths=np.array([3, 2]))
    predictions, steps = post.decide_threshold(0.85)
    assert predictions.tolist() == [0, 0] and steps.tolist() == [
        2,
        2,
    ]  # clip 2 never confident: answers at its end
    predictions, steps = post.decide_fraction(0.5)
    assert steps.tolist() == [2, 1] and predictions.tolist() == [0, 1]


def test_baselines_fit_on_training_speakers_only(tiny_store) -> None:
    train, test = tiny_store.subset(exclude_speakers=["P3"]), tiny_store.subset(speakers=["P3"])
    reports = evaluate_baselines(train, test, aeon=False)
    assert set(reports) == {"full_clip", "threshold", "fixed_fraction"}
    assert reports["full_clip"]["earliness"] == 1.0
    assert reports["threshold"]["parameters"]["threshold"] in THRESHOLDS
    assert reports["fixed_fraction"]["parameters"]["fraction"] in FRACTIONS
    for report in reports.values():
        assert report["n_clips"] == test.n_clips and 0.0 <= report["accuracy"] <= 1.0
    # tuning never looks at the test speaker: the same θ whatever the test set is
    assert fit_baselines(train).threshold == reports["threshold"]["parameters"]["threshold"]
    curves = baseline_curves(fit_baselines(train), test)
    assert len(curves["threshold"]) == len(THRESHOLDS)
    earliness = [p["earliness"] for p in curves["fixed_fraction"]]
    assert earliness == sorted(earliness)


def test_aeon_panel_and_points(tiny_store) -> None:
    panel = padded_panel(tiny_store, int(tiny_store.lengths.max()))
    assert panel.shape == (tiny_store.n_clips, tiny_store.dim, tiny_store.lengths.max())
    first = tiny_store.clip(0)
    np.testing.assert_allclose(
        panel[0, :, len(first.frames) - 1 :],
        np.repeat(first.frames[-1][:, None], panel.shape[2] - len(first.frames) + 1, axis=1),
    )
    points = classification_points(29)
    assert points[0] == 3 and points[-1] == 29 and len(points) <= 20


@pytest.mark.skipif(not aeon_available(), reason="aeon is not installed (optional extra)")
def test_aeon_baselines_report(tiny_store) -> None:
    from avemotion.agents.baselines_aeon import evaluate_aeon_baselines

    reports = evaluate_aeon_baselines(
        tiny_store.subset(exclude_speakers=["P3"]), tiny_store.subset(speakers=["P3"])
    )
    assert set(reports) == {"aeon_probability_threshold", "aeon_teaser"}
    for report in reports.values():
        assert 0 < report["earliness"] <= 1.0
