"""The comparison table writer: Markdown with ``mean ± std`` cells and CSV with both columns."""

from __future__ import annotations

import csv
import math

import pytest

from avemotion.evaluation.report import comparison_markdown, format_mean_std, write_comparison

ROWS = [
    {
        "agent": "dqn",
        "n_trials": 4,
        "accuracy_mean": 0.8125,
        "accuracy_std": 0.05,
        "earliness_mean": 0.25,
        "earliness_std": 0.0,
    },
    {"method": "majority", "accuracy_mean": 0.2, "accuracy_std": math.nan},
]


def test_mean_std_cells() -> None:
    assert format_mean_std(0.8125, 0.05) == "0.812 ± 0.050"
    assert format_mean_std(0.2, math.nan) == "0.200"
    assert format_mean_std(math.nan, 0.1) == "–"


def test_markdown_has_a_row_per_method_and_only_present_metrics() -> None:
    lines = comparison_markdown(ROWS).splitlines()
    assert lines[0] == "| method | n_trials | accuracy | earliness |"
    assert lines[2] == "| dqn | 4 | 0.812 ± 0.050 | 0.250 ± 0.000 |"
    assert lines[3] == "| majority |  | 0.200 | – |"


def test_write_comparison_writes_markdown_and_csv(tmp_path) -> None:
    markdown, table = write_comparison(ROWS, tmp_path / "out" / "comparison")
    assert markdown.read_text() == comparison_markdown(ROWS)
    rows = list(csv.DictReader(table.open()))
    assert [r["method"] for r in rows] == ["dqn", "majority"]
    assert float(rows[0]["accuracy_mean"]) == 0.8125 and float(rows[0]["accuracy_std"]) == 0.05
    assert not list(tmp_path.joinpath("out").glob(".*tmp*"))


def test_label_columns_pooled_values_and_a_note() -> None:
    rows = [{"method": "threshold", "kind": "baseline", "accuracy_mean": 0.5}]
    text = comparison_markdown(rows, metrics=("accuracy",), note="pooled over clips")
    assert text.splitlines() == [
        "| method | kind | accuracy |",
        "|---|---:|---:|",
        "| threshold | baseline | 0.500 |",
        "",
        "pooled over clips",
    ]


def test_paired_wins_by_hand() -> None:
    from avemotion.evaluation.report import paired_wins

    assert paired_wins([0.5, 0.4, 0.3, 0.6], [0.4, 0.4, 0.35, 0.1]) == (2, 1, 1)
    with pytest.raises(ValueError, match="3 values against 2"):
        paired_wins([1, 2, 3], [1, 2])


def test_wins_against_the_best_rival_by_hand() -> None:
    from avemotion.evaluation.report import wins_against_best

    entries = [
        {"agent": "dqn", "fold": "A", "seed": 0, "harmonic_mean": 0.6},
        {"agent": "dqn", "fold": "A", "seed": 1, "harmonic_mean": 0.4},  # fold A: 0.5
        {"agent": "dqn", "fold": "B", "seed": 0, "harmonic_mean": 0.3},
        {"agent": "sb3-ppo", "fold": "A", "seed": 0, "harmonic_mean": 0.45},
        {"agent": "sb3-ppo", "fold": "B", "seed": 0, "harmonic_mean": 0.35},  # mean 0.40
        {"agent": "sb3-dqn", "fold": "A", "seed": 0, "harmonic_mean": 0.1},
        {"agent": "sb3-dqn", "fold": "B", "seed": 0, "harmonic_mean": 0.2},  # mean 0.15
    ]
    wins = wins_against_best(entries)
    assert wins == {
        "ours": "dqn",
        "best_other": "sb3-ppo",
        "folds": ["A", "B"],
        "ours_values": [0.5, 0.3],
        "best_other_values": [0.45, 0.35],
        "wins": 1,
        "ties": 0,
        "losses": 1,
    }
    assert wins_against_best(entries[:3]) is None
    # a rival named by the caller (compare.py names the best by its pooled table)
    named = wins_against_best(entries, best="sb3-dqn")
    assert named is not None and named["best_other_values"] == [0.1, 0.2]
    assert (named["wins"], named["ties"], named["losses"]) == (2, 0, 0)
    assert wins_against_best(entries, best="threshold") is None


def test_pooled_results_must_share_their_settings() -> None:
    from avemotion.evaluation.report import check_pooled

    def result(fold: str, steps: int) -> dict:
        return {"fold": fold, "steps": steps, "agent_config": {"hidden": [8]}}

    fields = ("steps", "agent_config")
    results = [
        ("a/eval.json", None, {"fold": "A"}),  # recorded nothing: counted, not checked
        ("b/eval.json", result("B", 120), {"fold": "B"}),
        ("c/eval.json", result("C", 120), {"fold": "C"}),
    ]
    assert check_pooled(results, fields) == 1
    tail = "; results of other settings are not pooled"
    other = [*results, ("d/eval.json", result("D", 121), {"fold": "D"})]
    with pytest.raises(ValueError) as error:
        check_pooled(other, fields)
    assert str(error.value) == (
        f"d/eval.json: steps: 121 there, 120 in b/eval.json{tail} (pool only one of them)"
    )
    deeper = {**result("D", 120), "agent_config": {"hidden": [9]}}
    with pytest.raises(ValueError, match=r"d/eval.json: agent_config.hidden: \[9\] there, \[8\]"):
        check_pooled([*results, ("d/eval.json", deeper, {"fold": "D"})], fields)
    moved = [*results, ("d/eval.json", result("C", 120), {"fold": "D"})]
    with pytest.raises(ValueError) as error:
        check_pooled(moved, fields)
    assert str(error.value) == f"d/eval.json: fold: 'C' there, 'D' by its place{tail} (move it)"
