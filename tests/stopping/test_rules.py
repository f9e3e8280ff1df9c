"""Non-RL stopping rules: each decides once per clip on a posterior model's posteriors."""

from __future__ import annotations

import numpy as np
import pytest

from avemotion.posterior import Posteriors, cross_fit
from avemotion.stopping.aeon import aeon_available, classification_points, padded_panel
from avemotion.stopping.rules import (
    THRESHOLDS,
    TunedRules,
    decide_fraction,
    decide_threshold,
    evaluate_baselines,
    rule_curves,
    rule_reports,
    score,
    tune_rules,
)


def hand_posteriors() -> Posteriors:
    # clip 0: 3 steps, clip 1: 2 steps
    proba = np.array([[0.5, 0.5], [0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    return Posteriors(proba, np.array([0, 3]), np.array([3, 2]), np.array([1, 0]))


def test_rule_decisions_hand_computed() -> None:
    post = hand_posteriors()
    predictions, steps = decide_threshold(post, 0.85)
    assert predictions.tolist() == [0, 0] and steps.tolist() == [2, 2]  # clip 1 never confident
    predictions, steps = decide_threshold(post, 0.55, consecutive=2)
    # clip 0: 0.9 (class 0) then 0.8 (class 1): the class changed, no run of 2 -> its end;
    # clip 1: 0.7 (class 1) then 0.6 (class 0) -> its end as well
    assert predictions.tolist() == [1, 0] and steps.tolist() == [3, 2]
    predictions, steps = decide_fraction(post, 0.5)
    assert steps.tolist() == [2, 1] and predictions.tolist() == [0, 1]
    accuracy, earliness, hm = score(post, (predictions, steps))
    assert accuracy == 0.0 and earliness == pytest.approx((2 / 3 + 1 / 2) / 2) and hm == 0.0


def test_tuning_picks_the_best_hm_by_hand() -> None:
    post = hand_posteriors()
    rules = tune_rules(post)
    # Labels: clip 0 -> 1, clip 1 -> 0. θ ≤ 0.7: clip 1 answers class 1 at step 1, wrong,
    # and clip 0 answers class 0, wrong: HM 0. θ in (0.7, 0.9]: clip 0 wrong at step 2,
    # clip 1 never confident, right at its end: accuracy 1/2, earliness (2/3 + 1) / 2,
    # HM 2 · 0.5 · 1/6 / (0.5 + 1/6) = 0.25. θ > 0.9: both right at their ends, HM 0.
    # The first θ of the grid in (0.7, 0.9] is 0.75.
    assert rules.threshold == 0.75
    assert score(post, decide_threshold(post, 0.75))[2] == pytest.approx(0.25)
    # Fractions: clip 0 (T = 3) is right only after all 3 steps (x > 2/3), clip 1 (T = 2)
    # after 2 (x > 1/2). x ≤ 1/2: both wrong, HM 0. x in (1/2, 2/3]: clip 1 right, accuracy
    # 1/2, earliness (2/3 + 1) / 2, HM 0.25 as above. x > 2/3: both right at their ends,
    # earliness 1, HM 0. The first x of the grid in (1/2, 2/3] is 0.55.
    assert rules.fraction == 0.55
    assert score(post, decide_fraction(post, 0.55))[2] == pytest.approx(0.25)


def test_rules_tuned_on_training_speakers_only(tiny_store) -> None:
    train, test = tiny_store.subset(exclude_speakers=["P3"]), tiny_store.subset(speakers=["P3"])
    reports = evaluate_baselines(train, test, aeon=False)
    assert set(reports) == {"full_clip", "threshold", "fixed_fraction", "consecutive"}
    assert reports["full_clip"]["earliness"] == 1.0
    # tuning never looks at the test speaker: the same θ as tuning the training data alone
    rules = tune_rules(cross_fit(train).posteriors)
    assert reports["threshold"]["parameters"]["threshold"] == rules.threshold
    assert reports["fixed_fraction"]["parameters"]["fraction"] == rules.fraction
    # and the reported figures are the rule's decisions on the test posteriors
    post = cross_fit(train).model.posteriors(test)
    accuracy, earliness, hm = score(post, decide_threshold(post, rules.threshold))
    assert reports["threshold"]["accuracy"] == pytest.approx(accuracy)
    assert reports["threshold"]["earliness"] == pytest.approx(earliness)
    curves = rule_curves(post)
    assert len(curves["threshold"]) == len(THRESHOLDS)
    earliness_curve = [p["earliness"] for p in curves["fixed_fraction"]]
    assert earliness_curve == sorted(earliness_curve)


def test_shuffled_test_labels_leave_every_rule_at_chance(tiny_store) -> None:
    """A leak check: if any rule had read the test labels, shuffling them would not hurt it."""
    train, test = tiny_store.subset(exclude_speakers=["P3"]), tiny_store.subset(speakers=["P3"])
    fitted = cross_fit(train)
    rules = tune_rules(fitted.posteriors)
    post = fitted.model.posteriors(test)
    honest = rule_reports(rules, post, test)["full_clip"]["accuracy"]
    rng = np.random.default_rng(0)
    accuracies = []
    for _ in range(20):
        shuffled = Posteriors(post.proba, post.offsets, post.lengths, rng.permutation(post.labels))
        accuracies += [
            score(shuffled, decide_threshold(shuffled, rules.threshold))[0],
            score(shuffled, decide_fraction(shuffled, rules.fraction))[0],
        ]
    assert honest >= 0.75  # the tiny store is easy for an honest rule
    assert abs(np.mean(accuracies) - 1 / 3) < 0.1  # 3 classes: chance


def test_tuned_rules_round_trip() -> None:
    rules = TunedRules(0.5, 0.3, 0.6, 2)
    assert TunedRules(**rules.as_dict()) == rules


def test_aeon_panel_and_points(tiny_store) -> None:
    panel = padded_panel(tiny_store, int(tiny_store.lengths.max()))
    assert panel.shape == (tiny_store.n_clips, tiny_store.dim, tiny_store.lengths.max())
    first = tiny_store.clip(0)
    np.testing.assert_allclose(
        panel[0, :, len(first.frames) - 1 :],
        np.repeat(first.frames[-1][:, None], panel.shape[2] - len(first.frames) + 1, axis=1),
    )
    # np.linspace(3, 29, 20) rounded: 3, 4.37, 5.74, 7.11, 8.47, 9.84, ... 27.63, 29
    assert classification_points(29) == [
        3,
        4,
        6,
        7,
        8,
        10,
        11,
        13,
        14,
        15,
        17,
        18,
        19,
        21,
        22,
        24,
        25,
        26,
        28,
        29,
    ]


@pytest.mark.skipif(not aeon_available(), reason="aeon is not installed (optional extra)")
def test_aeon_baselines_report(tiny_store) -> None:
    from avemotion.stopping.aeon import evaluate_aeon_baselines

    train, test = tiny_store.subset(exclude_speakers=["P3"]), tiny_store.subset(speakers=["P3"])
    reports = evaluate_aeon_baselines(train, test)
    assert set(reports) == {"aeon_probability_threshold", "aeon_teaser"}
    for report in reports.values():
        assert report["n_clips"] == test.n_clips
        assert report["accuracy"] > 1 / 3  # the tiny store's classes are well apart


def test_a_rule_whose_grid_scores_the_same_everywhere_is_named() -> None:
    """Clips of one step: every rule answers at step 1 whatever its parameter (earliness 1,
    HM 0), so nothing is tuned: each rule keeps its grid's first value and is named."""
    post = Posteriors(
        np.array([[0.7, 0.3], [0.2, 0.8]]), np.array([0, 1]), np.ones(2, int), np.zeros(2, int)
    )
    untuned: list[str] = []
    rules = tune_rules(post, untuned)
    assert rules == TunedRules(0.2, 0.05, 0.2, 1)
    tail = "on the training posteriors; left untuned at"
    assert untuned == [
        f"threshold: every value of its grid scores HM 0.000 {tail} 0.2",
        f"fraction: every value of its grid scores HM 0.000 {tail} 0.05",
        f"consecutive: every value of its grid scores HM 0.000 {tail} 0.2, 1",
    ]
    varied: list[str] = []
    tune_rules(hand_posteriors(), varied)
    assert varied == []
