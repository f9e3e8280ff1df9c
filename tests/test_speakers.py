"""The one rule that splits speakers into folds."""

from __future__ import annotations

from avemotion.speakers import speaker_folds


def test_speaker_folds_by_hand() -> None:
    assert speaker_folds(["b", "a", "c", "d", "e", "a"], 2) == [["a", "b", "c"], ["d", "e"]]
    assert speaker_folds(["b", "a"], 0) == [["a"], ["b"]]
    assert speaker_folds(["a", "b"], 4) == [["a"], ["b"]]
