"""Cross-fitting any posterior model, and choosing one on the training speakers."""

from __future__ import annotations

import numpy as np
import pytest

from avemotion.posterior import (
    Posteriors,
    PrefixShapeSoftmax,
    RunningMeanSoftmax,
    cross_fit,
)
from avemotion.posterior.candidates import default_candidates
from avemotion.posterior.crossfit import subset_posteriors
from avemotion.store import FeatureStore
from avemotion.training.choose_posterior import (
    candidate_score,
    select_posterior_model,
    selection_lines,
    threshold_score,
    tune_rule,
    tune_threshold,
)


def hand_posteriors() -> Posteriors:
    """Clip 0 (4 steps, class 0): wrong at step 1 (class 1, 0.6), then class 0 at 0.95.
    Clip 1 (2 steps, class 1): class 1 at 0.55, then 0.8."""
    proba = np.array(
        [[0.4, 0.6], [0.95, 0.05], [0.95, 0.05], [0.95, 0.05], [0.45, 0.55], [0.2, 0.8]]
    )
    return Posteriors(proba, np.array([0, 4]), np.array([4, 2]), np.array([0, 1]))


HALVES = [np.array([0]), np.array([1])]
"""Two folds of one clip each."""


def test_threshold_tuning_by_hand() -> None:
    """θ ≤ 0.55: both answer at step 1, clip 0 wrong: accuracy 1/2, earliness (1/4 + 1/2)/2
    = 0.375, HM 2·0.5·0.625/1.125 = 0.5556, the best; the first such θ of the grid is 0.2."""
    post = hand_posteriors()
    assert tune_threshold(post) == 0.2
    # inner cross-validation: clip 0's θ is tuned on clip 1 alone (0.2: wrong at step 1),
    # clip 1's on clip 0 alone (0.65, the first above 0.6: step 2, right); accuracy 1/2,
    # earliness (1/4 + 2/2)/2 = 0.625, HM 2·0.5·0.375/0.875
    scored = threshold_score(post, HALVES)
    assert scored["accuracy"] == 0.5 and scored["earliness"] == 0.625
    assert scored["harmonic_mean"] == pytest.approx(2 * 0.5 * 0.375 / 0.875)
    assert scored["threshold"] == 0.2


def test_fixed_fraction_and_the_best_rule_by_hand() -> None:
    """Fraction 0.3 (the first of the grid 0.05, 0.1, ... with ceil(0.3·4) = 2 and
    ceil(0.3·2) = 1 steps) gets both right: HM 2·1·0.5/1.5. Inner cross-validation: clip 0's
    fraction tuned on clip 1 alone is 0.05 (step 1, wrong); clip 1's, tuned on clip 0
    alone, 0.3 (step 1, right): accuracy 1/2, earliness (1/4 + 1/2)/2, HM 0.5556 — above
    the threshold's 0.4286, so the fixed fraction is the candidate's rule."""
    post = hand_posteriors()
    assert tune_rule(post, "fixed_fraction") == 0.3
    scored = candidate_score(post, HALVES)
    assert scored["rule"] == "fixed_fraction" and scored["fixed_fraction"]["parameter"] == 0.3
    assert scored["harmonic_mean"] == pytest.approx(2 * 0.5 * 0.625 / 1.125)
    assert scored["threshold"]["harmonic_mean"] == pytest.approx(2 * 0.5 * 0.375 / 0.875)
    threshold_only = candidate_score(post, HALVES, ("threshold",))
    assert threshold_only["rule"] == "threshold" and "fixed_fraction" not in threshold_only


def test_subset_posteriors_by_hand() -> None:
    part = subset_posteriors(hand_posteriors(), np.array([1]))
    np.testing.assert_array_equal(part.proba, [[0.45, 0.55], [0.2, 0.8]])
    assert part.offsets.tolist() == [0] and part.lengths.tolist() == [2]
    assert part.labels.tolist() == [1]


def test_cross_fit_prefix_shape_is_out_of_fold(tiny_store) -> None:
    fitted = cross_fit(tiny_store, lambda: PrefixShapeSoftmax(points=2), n_folds=0)
    assert fitted.step_logits is None and np.all(fitted.model.log_scales != 0.0)
    blind = PrefixShapeSoftmax(points=2).fit(
        tiny_store.subset(exclude_speakers=["P2"]), init=fitted.model.model
    )
    blind.log_scales = fitted.model.log_scales
    held = np.flatnonzero(np.array(tiny_store.speakers) == "P2")
    expected = blind.posteriors(tiny_store.subset(speakers=["P2"])).proba
    np.testing.assert_allclose(
        subset_posteriors(fitted.posteriors, held).proba, expected, atol=1e-5
    )


class SeenSpeakers:
    """A posterior model with no logits: probability 1 for class 0 when the clip's
    speaker was fitted on, else for class 1."""

    name = "seen-speakers"

    def fit(self, store: FeatureStore, init=None) -> SeenSpeakers:
        self.seen = set(store.speaker_set)
        return self

    def posteriors(self, store: FeatureStore) -> Posteriors:
        seen = np.array([s in self.seen for s in store.speakers], dtype=np.float32)
        rows = np.repeat(seen, store.lengths)
        proba = np.stack([rows, 1 - rows], axis=1)
        offsets = np.concatenate([[0], np.cumsum(store.lengths)[:-1]])
        return Posteriors(proba, offsets, store.lengths, store.labels)


def test_cross_fit_without_logits_reads_held_out_posteriors(tiny_store) -> None:
    fitted = cross_fit(tiny_store, SeenSpeakers, n_folds=2)
    assert fitted.step_logits is None and fitted.folds.members == [["P1", "P2"], ["P3"]]
    np.testing.assert_array_equal(fitted.posteriors.proba.argmax(axis=1), 1)
    assert fitted.posteriors.proba.shape[0] == tiny_store.lengths.sum()


def slope_store(path, n_clips: int = 48, seed: int = 0, speakers: int = 4) -> FeatureStore:
    """Rising or falling series at a random level: the slope, not the mean, is the class."""
    rng = np.random.default_rng(seed)
    sequences, labels, names = [], [], []
    for i in range(n_clips):
        length = int(rng.integers(10, 17))
        sign = 1.0 if i % 2 == 0 else -1.0
        series = sign * np.linspace(-2.0, 2.0, length) + rng.normal(0, 3.0)
        sequences.append((series + rng.normal(0, 0.2, length))[:, None].astype(np.float32))
        labels.append(i % 2)
        names.append(f"S{i % speakers}")
    return FeatureStore.create(path, sequences, labels, names, ["rise", "fall"])


def test_prefix_shape_is_chosen_where_shape_matters(tmp_path) -> None:
    store = slope_store(tmp_path / "slopes")
    candidates = ("running-mean-softmax", "prefix-shape-softmax")
    name, fitted, scores = select_posterior_model(store, candidates)
    assert name == "prefix-shape-softmax" and isinstance(fitted.model, PrefixShapeSoftmax)
    assert scores[name]["harmonic_mean"] > scores["running-mean-softmax"]["harmonic_mean"]
    assert fitted.folds.members == [["S0"], ["S1"], ["S2"], ["S3"]]
    # the margin a challenger must clear: an impossible one keeps the default
    kept, _, same = select_posterior_model(store, candidates, margin=1.0)
    assert kept == "running-mean-softmax" and same == scores


def test_the_running_mean_is_kept_where_it_suffices(tiny_store) -> None:
    """Class prototypes plus noise: the mean is all there is; the richer model only overfits."""
    name, fitted, scores = select_posterior_model(tiny_store)
    assert name == "running-mean-softmax" and isinstance(fitted.model, RunningMeanSoftmax)
    assert set(scores) == set(default_candidates(tiny_store))
    assert scores[name]["harmonic_mean"] >= max(s["harmonic_mean"] for s in scores.values())


def test_one_fold_keeps_the_default_unscored_and_says_so(tiny_store) -> None:
    name, fitted, scores = select_posterior_model(tiny_store, n_folds=1)
    assert name == "running-mean-softmax" and fitted.folds.kind == "none"
    why = {"unscored": "1 fold: no clip is held out"}
    assert scores == {candidate: why for candidate in default_candidates(tiny_store)}
    assert selection_lines(scores)[0] == (
        "posterior selection: running-mean-softmax unscored (1 fold: no clip is held out)"
    )


def test_one_speaker_scores_every_candidate_on_clip_folds(tmp_path) -> None:
    """The slope store under one speaker: clip folds, and the shape still wins."""
    store = slope_store(tmp_path / "slopes", speakers=1)
    candidates = ("running-mean-softmax", "prefix-shape-softmax")
    name, fitted, scores = select_posterior_model(store, candidates)
    assert fitted.folds.kind == "clip" and len(fitted.folds) == 4
    assert name == "prefix-shape-softmax"
    assert scores[name]["harmonic_mean"] > scores["running-mean-softmax"]["harmonic_mean"] + 0.1


def test_a_candidate_that_cannot_be_fitted_is_left_out_with_a_line(tiny_store, monkeypatch) -> None:
    from avemotion.posterior import POSTERIOR_MODELS

    class Broken:
        name = "broken"

        def fit(self, store, init=None):
            raise ValueError("series too short")

    monkeypatch.setitem(POSTERIOR_MODELS, "broken", Broken)
    name, _, scores = select_posterior_model(tiny_store, ("running-mean-softmax", "broken"))
    assert name == "running-mean-softmax" and "harmonic_mean" in scores[name]
    assert scores["broken"] == {"unscored": "cannot be fitted on this store: series too short"}
    assert selection_lines(scores) == [
        "posterior selection: broken unscored (cannot be fitted on this store: series too short)"
    ]


def test_unknown_candidate_or_rule_one_line(tiny_store) -> None:
    with pytest.raises(ValueError, match="candidates: unknown \\['nope'\\]"):
        select_posterior_model(tiny_store, candidates=("running-mean-softmax", "nope"))
    with pytest.raises(ValueError, match="rules: expected some of"):
        select_posterior_model(tiny_store, rules=("consecutive",))


def test_first_confident_matches_the_threshold_rule() -> None:
    """The vectorised one-step-in-a-row path of ``decide_threshold`` (what selection and
    tuning score) makes the decisions of its clip-by-clip loop at every θ of the grid, also
    with posteriors exactly at θ, clips of one step and rows not stored clip after clip."""
    from avemotion.stopping.rules import THRESHOLDS, _confident_in_a_row, decide_threshold

    rng = np.random.default_rng(5)
    lengths = rng.integers(1, 9, size=40)
    proba = rng.dirichlet(np.ones(3) * 0.7, size=int(lengths.sum())).astype(np.float32)
    proba[::7] = np.float32([0.8, 0.15, 0.05])  # the maximum sits exactly on θ = 0.8
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    order = rng.permutation(len(lengths))  # clips listed out of storage order
    post = Posteriors(proba, offsets[order], lengths[order], rng.integers(0, 3, size=40))
    for theta in [*THRESHOLDS, 0.8]:
        expected = _confident_in_a_row(post, float(theta), 1)
        got = decide_threshold(post, float(theta))
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
    # by hand (hand_posteriors): θ 0.9 → clip 0 stops at step 2 (0.95, class 0), clip 1
    # never reaches it and answers at its last step 2 with class 1
    predictions, steps = decide_threshold(hand_posteriors(), 0.9)
    assert predictions.tolist() == [0, 1] and steps.tolist() == [2, 2]


def test_the_softmax_candidates_take_the_given_l2(tiny_store) -> None:
    """``l2`` reaches each softmax candidate (1-NN has none); without it, their default."""
    from avemotion.posterior.candidates import model_maker

    candidates = ("running-mean-softmax", "prefix-shape-softmax")
    _, fitted, _ = select_posterior_model(tiny_store, candidates[:1], l2=3.0)
    assert fitted.model.l2 == 3.0
    assert [model_maker(name, 3.0)().l2 for name in candidates] == [3.0, 3.0]
    assert [model_maker(name)().l2 for name in candidates] == [1e-2, 1e-2]
    assert not hasattr(model_maker("prefix-nearest-neighbour", 3.0)(), "l2")
