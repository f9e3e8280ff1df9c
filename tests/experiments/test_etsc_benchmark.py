"""The 8-set benchmark: stores as aeon ships the sets, the table by hand, a tiny smoke run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from avemotion.stopping.aeon import aeon_available
from avemotion.store import FeatureStore

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"
needs_aeon = pytest.mark.skipif(
    not aeon_available(), reason="aeon is not installed (optional extra): the 8 sets ship inside it"
)


def load_benchmark():
    spec = importlib.util.spec_from_file_location(
        "etsc_benchmark", EXPERIMENTS / "etsc_benchmark.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row(hm: float) -> dict[str, float]:
    return {"harmonic_mean": hm}


def test_table_and_wins_by_hand() -> None:
    """Set A, 2 seeds: DQN 0.6 and 0.8 (mean 0.7, std 0.1) against aeon PT 0.5 / 0.7 and
    TEASER 0.65 / 0.65 (best: TEASER, 0.65): a win. Set B, 1 seed: DQN 0.4 < PT 0.9."""
    bench = load_benchmark()
    seeds_a = {
        "0": {
            "posterior": {"name": "p"},
            "rows": {
                "dqn": row(0.6),
                "threshold": row(0.5),
                "aeon_probability_threshold": row(0.5),
                "aeon_teaser": row(0.65),
            },
        },
        "1": {
            "posterior": {"name": "p"},
            "rows": {
                "dqn": row(0.8),
                "threshold": row(0.7),
                "aeon_probability_threshold": row(0.7),
                "aeon_teaser": row(0.65),
            },
        },
    }
    seeds_b = {
        "0": {
            "posterior": {"name": "q"},
            "rows": {"dqn": row(0.4), "aeon_probability_threshold": row(0.9)},
        }
    }
    summary = bench.summarise({"A": {"seeds": seeds_a}, "B": {"seeds": seeds_b}})
    assert (
        summary["A"]["best_aeon"] == "aeon_teaser"
        and summary["B"]["best_aeon"] == "aeon_probability_threshold"
    )
    assert summary["A"]["hm"]["dqn"]["mean"] == pytest.approx(0.7)
    assert summary["A"]["hm"]["dqn"]["std"] == pytest.approx(0.1)
    table = bench.markdown(summary, steps=123)
    lines = table.splitlines()
    assert lines[2] == "| A | p | 0.700 ± 0.100 | 0.600 ± 0.100 | – | – | 0.650 ± 0.000 (teaser) |"
    assert lines[3] == "| B | q | 0.400 | – | – | – | 0.900 (probability_threshold) |"
    # mean row: DQN (0.7 + 0.4) / 2, best aeon (0.65 + 0.9) / 2
    assert lines[4] == "| **mean** |  | **0.550** | **0.600** | – | – | **0.775** |"
    assert "our DQN 123 env steps. Our DQN beats the best aeon row on 1 of 2 sets." in table


def test_quick_fills_only_what_is_not_given() -> None:
    """--quick never overrides an explicit --sets, --seeds or --steps; it fills the rest
    and always leaves MiniRocket out. Without it the defaults are the full benchmark's."""
    from avemotion.training.train import DEFAULT_STEPS

    bench = load_benchmark()
    given = bench.parse(["--quick", "--sets", "ACSF1", "--seeds", "2", "--steps", "1000"])
    assert (given.sets, given.seeds, given.steps, given.minirocket) == (["ACSF1"], 2, 1000, False)
    quick = bench.parse(["--quick"])
    assert (quick.sets, quick.seeds, quick.steps, quick.minirocket) == (
        ["ItalyPowerDemand", "GunPoint"],
        1,
        300,
        False,
    )
    partly = bench.parse(["--quick", "--steps", "50"])
    assert (partly.sets, partly.seeds, partly.steps) == (["ItalyPowerDemand", "GunPoint"], 1, 50)
    full = bench.parse([])
    assert (full.sets, full.seeds, full.steps, full.minirocket) == (
        list(bench.SETS),
        3,
        DEFAULT_STEPS,
        True,
    )


@needs_aeon
def test_stores_keep_every_series_as_shipped(tmp_path) -> None:
    bench = load_benchmark()
    train, test = bench.build_stores("PickupGestureWiimoteZ", tmp_path)
    x, y = bench.load_split("PickupGestureWiimoteZ", "TEST")
    assert test.lengths.tolist() == [s.shape[0] for s in x]  # unequal lengths, true ones
    np.testing.assert_array_equal(test.clip(3).frames, x[3])
    assert test.class_names == [str(c) for c in range(1, 11)]  # numeric order, not "1", "10"
    assert [test.class_names[k] for k in test.labels] == y.tolist()
    assert train.clip_ids[:2] == ["train-0001", "train-0002"] and test.clip_ids[0] == "test-0001"
    assert train.speaker_set == ["train"] and test.speaker_set == ["test"]  # as a user would
    assert not set(train.clip_ids) & set(test.clip_ids)


@needs_aeon
def test_quick_run_then_resume(tmp_path, capsys) -> None:
    bench = load_benchmark()
    out, png = tmp_path / "out", tmp_path / "etsc.png"
    argv = ["--quick", "--sets", "ItalyPowerDemand", "--out", str(out), "--plot", str(png)]
    assert bench.main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    seed = results["results"]["ItalyPowerDemand"]["seeds"]["0"]
    assert seed["steps"] == 300 and seed["posterior"]["name"]
    assert {"dqn", "threshold", "fixed_fraction", "consecutive", "full_clip", "aeon_teaser"} <= set(
        seed["rows"]
    )
    assert seed["rows"]["dqn"]["n_clips"] == 1029  # the whole standard test split
    assert (
        png.stat().st_size > 0 and "| ItalyPowerDemand |" in (out / "etsc_benchmark.md").read_text()
    )
    capsys.readouterr()
    assert bench.main(argv) == 0
    assert "[ItalyPowerDemand seed 0] done before: skipped" in capsys.readouterr().out
    # a pair finished without MiniRocket gets only those rows added, once
    fitted = []

    def fake_minirocket(train, test, seed):
        fitted.append((train.n_clips, test.n_clips, seed))
        return {name: row(0.5) for name in bench.AEON[2:]}

    bench.minirocket_rows = fake_minirocket
    more = ["--steps", "300", "--seeds", "1", "--sets", "ItalyPowerDemand", "--out", str(out)]
    assert bench.main([*more, "--plot", ""]) == 0
    assert "adding aeon over MiniRocket" in capsys.readouterr().out
    assert fitted == [(67, 1029, 0)]
    rows = json.loads((out / "ItalyPowerDemand" / "seed0.json").read_text())["rows"]
    assert rows["aeon_teaser_minirocket"] == row(0.5) and rows["dqn"]["n_clips"] == 1029
    assert bench.main([*more, "--plot", ""]) == 0
    assert "done before: skipped" in capsys.readouterr().out and len(fitted) == 1
    # --report-only trains nothing: the unfinished pair is named and left out of the table
    only = ["--sets", "ItalyPowerDemand", "GunPoint", "--report-only", "--plot", ""]
    assert bench.main([*more, *only]) == 0
    printed = capsys.readouterr().out
    assert "[GunPoint seed 0] not finished: left out of the table" in printed
    assert "| ItalyPowerDemand |" in printed and "| GunPoint |" not in printed
    assert not (out / "GunPoint" / "seed0.json").exists()


def test_a_resumed_build_takes_the_classes_of_the_train_store(tmp_path, monkeypatch) -> None:
    """Killed between the splits: the train store exists, the test store does not. The test
    store must get the train split's classes, not those its own labels happen to hold."""
    import shutil

    bench = load_benchmark()
    splits = {"TRAIN": ["1", "2", "3", "10", "2"], "TEST": ["2", "10", "2"]}

    def fake_split(name: str, split: str):
        labels = splits[split]
        series = [np.full((3 + i, 2), i, dtype=np.float32) for i in range(len(labels))]
        return series, np.array(labels)

    monkeypatch.setattr(bench, "load_split", fake_split)
    train, test = bench.build_stores("Fake", tmp_path)
    assert train.class_names == test.class_names == ["1", "2", "3", "10"]
    shutil.rmtree(tmp_path / "Fake-test")  # the run was killed before writing it
    train, test = bench.build_stores("Fake", tmp_path)
    assert test.class_names == ["1", "2", "3", "10"]
    assert [test.class_names[k] for k in test.labels] == splits["TEST"]
    grouped = tmp_path / "grouped"  # a store of an older version, 2 round-robin speakers
    FeatureStore.create(grouped / "Fake-train", *fake_split("Fake", "TRAIN")[:1], [0, 1, 2, 3, 1],
                        ["train0", "train1"] * 2 + ["train0"], ["1", "2", "3", "10"])  # fmt: skip
    with pytest.raises(
        ValueError, match=r"Fake-train: speakers: \['train0', 'train1'\], expected \['train'\]"
    ):
        bench.build_stores("Fake", grouped)
    splits["TEST"] = ["4"]  # a class the train split does not hold is refused, not added
    shutil.rmtree(tmp_path / "Fake-test")
    with pytest.raises(ValueError, match="not in the train split"):
        bench.build_stores("Fake", tmp_path)
