"""Turn scoring: overlap matching, earliness on the labelled clip and HM, by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from avemotion.online.turn_metrics import (
    clip_earliness,
    harmonic_mean,
    match_turns,
    read_labels,
    score_turns,
)


def test_match_turns_by_hand() -> None:
    detected = [(0.0, 1.0), (2.0, 3.0), (5.0, 6.0)]
    labelled = [(0.2, 1.5), (2.5, 4.0), (7.0, 8.0)]
    # overlaps 0.8 and 0.5 (each >= half its detected turn); the third overlaps nothing
    assert match_turns(detected, labelled) == [(0, 0), (1, 1)]
    # a detected turn only 0.4 inside its label is not a match at min_share 0.5
    assert match_turns([(0.0, 1.0)], [(0.6, 2.0)]) == []


def test_split_and_merged_turns_cost_precision_and_recall() -> None:
    split = match_turns([(0.0, 1.0), (1.2, 2.0)], [(0.0, 2.0)])
    assert split == [(0, 0)]  # the second piece is unmatched: precision 1/2
    merged = match_turns([(0.0, 3.0)], [(0.0, 1.8), (2.2, 3.0)])
    assert merged == [(0, 0)]  # 1.8 s of 3 s inside the first; the second label missed


def test_clip_earliness_by_hand() -> None:
    # a 3.5 s clip holds (56000 - 15600) // 1600 + 1 = 26 steps
    assert clip_earliness(2.0, (1.0, 4.5)) == pytest.approx(1 / 26)  # first window only
    assert clip_earliness(3.0, (1.0, 4.5)) == pytest.approx(11 / 26)  # 32000 samples in
    assert clip_earliness(9.0, (1.0, 4.5)) == 1.0  # capped at the clip's steps


def test_harmonic_mean_and_score_by_hand() -> None:
    assert harmonic_mean(0.5, 0.25) == pytest.approx(0.6)
    turns = [
        {"start_s": 1.1, "end_s": 4.2, "decision_s": 3.0, "label": "happy"},
        {"start_s": 6.0, "end_s": 6.5, "decision_s": 6.5, "label": "sad"},
    ]
    labels = [{"start": 1.0, "end": 4.5, "label": "happy"}, {"start": 8, "end": 9, "label": "sad"}]
    score = score_turns(turns, labels)
    assert (score["precision"], score["recall"], score["accuracy"]) == (0.5, 0.5, 1.0)
    assert score["earliness"] == pytest.approx(11 / 26)
    assert score["harmonic_mean"] == pytest.approx(harmonic_mean(1.0, 11 / 26))
    assert score["accuracy_all_labelled"] == 0.5


@pytest.mark.parametrize(
    "text, message",
    [
        ("start,end\n1,2\n", "missing column"),
        ("start,end,label\n", "no turns"),
        ("start,end,label\n1,x,happy\n", "row 2: start/end: not numbers"),
        ("start,end,label\n2,1,happy\n", "row 2: expected 0 <= start < end"),
    ],
)
def test_broken_label_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_labels(path)
