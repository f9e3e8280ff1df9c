"""Hypothesis properties of the metric functions and of the store round-trip on awkward
values (any finite float32, unicode ids and speakers), beyond ``tests/test_store.py``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from avemotion.metrics import (
    confusion_matrix,
    early_classification_report,
    harmonic_mean,
    per_class_recall,
)
from avemotion.store import FeatureStore, StoreError

unit = st.floats(0.0, 1.0, allow_nan=False)


@given(accuracy=unit, earliness=unit)
def test_harmonic_mean_bounds_and_symmetry(accuracy: float, earliness: float) -> None:
    hm = harmonic_mean(accuracy, earliness)
    timeliness = 1.0 - earliness
    assert 0.0 <= hm <= 1.0
    assert min(accuracy, timeliness) - 1e-12 <= hm <= max(accuracy, timeliness) + 1e-12
    assert hm == pytest.approx(harmonic_mean(timeliness, 1.0 - accuracy), abs=1e-12)
    if accuracy == 0.0 or timeliness == 0.0:
        assert hm == 0.0


@given(a=unit, b=unit, earliness=unit)
def test_harmonic_mean_grows_with_accuracy(a: float, b: float, earliness: float) -> None:
    low, high = sorted((a, b))
    assert harmonic_mean(low, earliness) <= harmonic_mean(high, earliness) + 1e-12


@st.composite
def decisions(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    """Predictions (-1 = no answer), labels, steps observed and lengths of n clips, K classes."""
    k = draw(st.integers(1, 5))
    n = draw(st.integers(1, 30))
    labels = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    predictions = np.array(draw(st.lists(st.integers(-1, k - 1), min_size=n, max_size=n)))
    lengths = np.array(draw(st.lists(st.integers(1, 50), min_size=n, max_size=n)))
    steps = np.array([draw(st.integers(1, int(t))) for t in lengths])
    return predictions, labels, steps, lengths, np.array(k)


@given(data=decisions(), rate=st.floats(0.5, 100.0))
def test_report_properties(data: tuple[np.ndarray, ...], rate: float) -> None:
    predictions, labels, steps, lengths, k = data
    names = [f"c{i}" for i in range(int(k))]
    report = early_classification_report(predictions, labels, steps, lengths, names, rate)
    json.dumps(report, allow_nan=False)  # JSON-ready, no NaN objects
    assert report["accuracy"] == pytest.approx(np.mean(predictions == labels))
    assert report["earliness"] == pytest.approx(
        sum(int(s) / int(t) for s, t in zip(steps, lengths)) / len(steps)
    )
    a, rest = report["accuracy"], 1.0 - report["earliness"]
    assert report["harmonic_mean"] == pytest.approx(2 * a * rest / (a + rest) if a + rest else 0.0)
    matrix = np.array(report["confusion_matrix"])
    assert (
        matrix.sum() == (predictions >= 0).sum()
        and np.trace(matrix) == (predictions == labels).sum()
    )
    support = np.bincount(labels, minlength=int(k))
    assert (matrix.sum(axis=1) <= support).all()
    recall = [r for r in report["per_class_recall"].values() if r is not None]
    for c, name in enumerate(names):  # recall by hand: answered c among clips of class c
        expected = np.mean(predictions[labels == c] == c) if support[c] else None
        assert report["per_class_recall"][name] == (
            None if expected is None else pytest.approx(expected)
        )
    assert report["balanced_accuracy"] == pytest.approx(np.mean(recall))
    assert report["mean_decision_s"] == pytest.approx(steps.mean() / rate)
    # the report does not depend on the order of the clips
    order = np.random.default_rng(0).permutation(len(labels))
    again = early_classification_report(
        predictions[order], labels[order], steps[order], lengths[order], names, rate
    )
    for key in ("accuracy", "earliness", "harmonic_mean", "balanced_accuracy"):
        assert again[key] == pytest.approx(report[key])
    assert again["confusion_matrix"] == report["confusion_matrix"]


@given(data=decisions())
def test_report_refuses_steps_outside_the_clip(data: tuple[np.ndarray, ...]) -> None:
    predictions, labels, steps, lengths, k = data
    bad = steps.copy()
    bad[0] = lengths[0] + 1
    with pytest.raises(ValueError, match="steps_observed"):
        early_classification_report(predictions, labels, bad, lengths, ["x"] * int(k), 10.0)
    bad[0] = 0
    with pytest.raises(ValueError, match="steps_observed"):
        early_classification_report(predictions, labels, bad, lengths, ["x"] * int(k), 10.0)


@given(data=decisions())
def test_recall_with_unanswered_clips(data: tuple[np.ndarray, ...]) -> None:
    predictions, labels, _, _, k = data
    matrix = confusion_matrix(labels, predictions, int(k))
    support = np.bincount(labels, minlength=int(k))
    recall = per_class_recall(matrix, support)
    for c in range(int(k)):
        if support[c]:
            assert recall[c] == pytest.approx(np.mean(predictions[labels == c] == c))
        else:
            assert np.isnan(recall[c])


finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sequences=st.lists(
        arrays(np.float32, st.tuples(st.integers(1, 5), st.just(3)), elements=finite32),
        min_size=1,
        max_size=5,
    ),
    speakers=st.lists(names, min_size=5, max_size=5),
    clip_ids=st.lists(names, min_size=5, max_size=5, unique=True),
)
def test_store_round_trip_of_any_finite_values_and_unicode_names(
    tmp_path_factory: pytest.TempPathFactory,
    sequences: list[np.ndarray],
    speakers: list[str],
    clip_ids: list[str],
) -> None:
    n = len(sequences)
    path: Path = tmp_path_factory.mktemp("prop") / "s"
    store = FeatureStore.create(
        path, sequences, [i % 2 for i in range(n)], speakers[:n], ["a", "b"], clip_ids=clip_ids[:n]
    )
    store = FeatureStore.open(path)
    for i, seq in enumerate(sequences):
        clip = store.clip(i)
        np.testing.assert_array_equal(clip.frames, seq)  # bit-exact, -0.0 and subnormals too
        assert (clip.speaker, clip.clip_id, clip.label) == (speakers[i], clip_ids[i], i % 2)
    chosen = speakers[0]
    kept = store.subset(speakers=[chosen])
    assert set(kept.speakers) == {chosen}
    assert kept.n_clips == sum(s == chosen for s in speakers[:n])


@st.composite
def clips_with_non_finite_values(draw: st.DrawFn) -> tuple[list[np.ndarray], int, int]:
    """1-4 finite clips, then NaN/±inf written straight into one of them at 1-6 drawn cells
    (no filtering: every example holds a non-finite value). Returns the clips, the bad
    clip's index and how many cells were overwritten."""
    shape = st.tuples(st.integers(1, 5), st.just(3))
    clips = draw(st.lists(arrays(np.float32, shape, elements=finite32), min_size=1, max_size=4))
    bad = draw(st.integers(0, len(clips) - 1))
    rows, cols = clips[bad].shape
    cells = draw(
        st.lists(
            st.tuples(st.integers(0, rows - 1), st.integers(0, cols - 1)),
            min_size=1,
            max_size=6,
            unique=True,
        )
    )
    for row, col in cells:
        clips[bad][row, col] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return clips, bad, len(cells)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=clips_with_non_finite_values())
def test_store_refuses_any_non_finite_value(
    tmp_path_factory: pytest.TempPathFactory, case: tuple[list[np.ndarray], int, int]
) -> None:
    clips, _, _ = case
    path = tmp_path_factory.mktemp("prop") / "s"
    with pytest.raises(StoreError, match="NaN or inf"):
        FeatureStore.create(path, clips, [0] * len(clips), ["s"] * len(clips), ["a"])
    assert not path.exists()
