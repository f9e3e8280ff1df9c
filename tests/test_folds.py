"""Folds of the training clips (avemotion.folds): speaker folds when the speakers allow it,
else stratified clip folds, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from avemotion.folds import CLIP_FOLDS, Folds, clip_folds, make_folds
from avemotion.store import FeatureStore


def store_of(path, labels: list[int], speakers: list[str]) -> FeatureStore:
    """One 2-step clip per label, ids c0, c1, ...; classes calm (0) and sad (1)."""
    sequences = [np.full((2, 1), i, np.float32) for i in range(len(labels))]
    ids = [f"c{i}" for i in range(len(labels))]
    return FeatureStore.create(path, sequences, labels, speakers, ["calm", "sad"], clip_ids=ids)


SEVEN = [0, 1, 0, 1, 0, 1, 1]
"""Class 0: clips c0 c2 c4; class 1: c1 c3 c5 c6."""


def test_clip_folds_by_hand(tmp_path) -> None:
    """Seed 0's generator draws permutation(3) = [2, 0, 1], then permutation(4) = [3, 2, 1, 0].
    Class 0's clips [c0, c2, c4] shuffled: [c4, c0, c2], dealt to folds 0, 1, 0. Three dealt,
    class 1's [c1, c3, c5, c6] shuffled: [c6, c5, c3, c1], dealt on from fold 1: 1, 0, 1, 0.
    Fold 0: c1 c2 c4 c5; fold 1: c0 c3 c6 (sizes 4 and 3, both classes in each)."""
    rng = np.random.default_rng(0)
    assert rng.permutation(3).tolist() == [2, 0, 1] and rng.permutation(4).tolist() == [3, 2, 1, 0]
    store = store_of(tmp_path / "seven", SEVEN, ["A"] * 7)
    folds = clip_folds(store, 2, seed=0, reason="why")
    assert folds == Folds("clip", [["c1", "c2", "c4", "c5"], ["c0", "c3", "c6"]], "why", 0)
    assert [f.tolist() for f in folds.held_out(store)] == [[1, 2, 4, 5], [0, 3, 6]]
    # the same seed, the same folds; the record reads back to the same folds
    assert clip_folds(store, 2, seed=0, reason="why") == folds
    assert Folds.from_record(folds.as_record()) == folds


def test_another_seed_draws_other_folds(tmp_path) -> None:
    store = store_of(tmp_path / "many", [i % 2 for i in range(40)], ["A"] * 40)
    assert clip_folds(store, 4, seed=1) != clip_folds(store, 4, seed=0)
    sizes = [len(m) for m in clip_folds(store, 4, seed=1).members]
    assert sizes == [10, 10, 10, 10]


def test_one_speaker_gets_stratified_clip_folds_and_says_so(tmp_path) -> None:
    store = store_of(tmp_path / "one", SEVEN, ["A"] * 7)
    folds = make_folds(store, 2)
    assert folds.kind == "clip" and folds.members == clip_folds(store, 2, 0).members
    assert folds.reason == "fewer than 2 speakers"
    wide = make_folds(store, 0)  # one per speaker: too few speakers, the clip folds' default
    assert wide.kind == "clip" and len(wide) == CLIP_FOLDS
    assert wide.line(1) == (
        "store has 1 speaker: cross-fitting on 4 stratified clip folds; "
        "held-out scores are not speaker-independent"
    )


def test_enough_speakers_get_speaker_folds(tmp_path) -> None:
    store = store_of(tmp_path / "five", [0, 1, 0, 1, 0], ["D", "A", "E", "C", "B"])
    folds = make_folds(store, 2)
    assert folds == Folds("speaker", [["A", "B", "C"], ["D", "E"]], "enough speakers")
    assert [f.tolist() for f in folds.held_out(store)] == [[1, 3, 4], [0, 2]]
    assert (
        folds.line(5) == "store has 5 speakers: cross-fitting on 2 speaker folds (enough speakers)"
    )


def test_two_speakers_by_the_class_rule(tmp_path) -> None:
    """Fewer speakers than folds: one fold per speaker when each leaves every class in the
    other's clips; else clip folds, naming the speaker and the class."""
    both = store_of(tmp_path / "both", [0, 1, 0, 1], ["A", "A", "B", "B"])
    folds = make_folds(both, 4)
    assert folds.kind == "speaker" and folds.members == [["A"], ["B"]]
    assert folds.reason == "one per speaker: 2 speakers, fewer than 4 folds"
    # sad only in B: holding B out leaves no sad clip to fit on
    lopsided = store_of(tmp_path / "lopsided", [0, 0, 0, 1, 1], ["A", "A", "B", "B", "B"])
    folds = make_folds(lopsided, 4)
    assert folds.kind == "clip" and len(folds) == 4
    assert folds.reason == "holding out speaker B would leave class 'sad' unseen"
    assert folds.line(2).startswith(
        "store has 2 speakers: cross-fitting on 4 stratified clip folds (holding out speaker B"
    )


def test_one_fold_is_no_cross_fitting(tmp_path) -> None:
    store = store_of(tmp_path / "one", SEVEN, ["A"] * 7)
    folds = make_folds(store, 1)
    assert folds.kind == "none" and folds.members == [["A"]]
    assert folds.line(1).endswith("cross-fitting off (1 fold); training posteriors are in-sample")


def test_two_speakers_with_a_one_clip_class_keep_speaker_folds_and_say_why(tmp_path) -> None:
    """Class 'sad' has one clip (speaker B's): neither speaker folds nor clip folds can hold
    it out with the class still seen, so the speakers stay the folds and the reason says so."""
    store = store_of(tmp_path / "rare", [0, 0, 0, 1], ["A", "A", "B", "B"])
    folds = make_folds(store, 4)
    assert folds.kind == "speaker" and folds.members == [["A"], ["B"]]
    assert folds.reason == (
        "holding out speaker B would leave class 'sad' unseen, "
        "and class 'sad' has 1 clip, too few for clip folds"
    )


def test_broken_inputs_one_line(tmp_path) -> None:
    single = store_of(tmp_path / "single", [0, 0, 0, 1], ["A"] * 4)
    with pytest.raises(ValueError) as error:
        make_folds(single, 4)
    assert str(error.value) == (
        f"{single.path}: labels: class 'sad' has 1 clip in the training selection; "
        "cross-fitting on clip folds needs at least 2 clips of every class"
    )
    with pytest.raises(ValueError, match="^folds: expected 0 .* got -1$"):
        make_folds(single, -1)
