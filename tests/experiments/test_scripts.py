"""Smoke runs of every experiments/ script at a tiny budget."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from avemotion.agents.baselines_aeon import aeon_available

TESTS = Path(__file__).resolve().parents[1]
EXPERIMENTS = TESTS.parent / "experiments"


def load_script(name: str, folder: Path = EXPERIMENTS):
    spec = importlib.util.spec_from_file_location(f"experiments_{name}", folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    from tiny_store import make_tiny_store

    return make_tiny_store(tmp_path_factory.mktemp("exp") / "tiny")


def test_loso_then_compare(store, tmp_path) -> None:
    out = tmp_path / "loso"
    dqn = ["num_envs=4", "learning_starts=20", "batch_size=16", "hidden=[8]", "log_every=50"]
    argv = [
        "--features",
        str(store.path),
        "--out",
        str(out),
        "--agents",
        "dqn",
        "sb3-a2c",
        "--steps",
        "120",
        "--folds",
        "P2",
        "P3",
        "--seeds",
        "0",
        "1",
        "--wait-costs",
        "0.05",
        "--earliness-weights",
        "0.5",
        "--no-aeon",
        "--set",
        *dqn,
    ]
    assert load_script("loso").main(argv) == 0
    for fold in ("P2", "P3"):
        for seed in (0, 1):
            seed_dir = out / fold / f"seed{seed}"
            for name in ("dqn", "sb3-a2c", "dqn-wait0.05", "dqn-ew0.5"):
                result = json.loads((seed_dir / name / "eval.json").read_text())
                assert result["n_clips"] == store.subset(speakers=[fold]).n_clips
                config = json.loads((seed_dir / name / "config.json").read_text())
                assert config["seed"] == seed and config["train_speakers"] == sorted(
                    set(store.speaker_set) - {fold}
                )
            sweep = json.loads((seed_dir / "dqn" / "eval.json").read_text())["bias_sweep"]
            assert len(sweep) == 41 and all(0 < p["earliness"] <= 1 for p in sweep)
            assert sweep[0]["earliness"] >= sweep[-1]["earliness"]  # larger bias: earlier
            curve_run = json.loads((seed_dir / "dqn-ew0.5" / "config.json").read_text())
            assert curve_run["agent_config"]["earliness_weight"] == 0.5
            assert curve_run["agent_config"]["tune_wait_bias"] is False
            env_run = json.loads((seed_dir / "dqn-wait0.05" / "config.json").read_text())
            assert env_run["reward"]["name"] == "signed" and env_run["reward"]["wait_cost"] == 0.05
            # every other run trains on the same env reward
            assert (
                json.loads((seed_dir / "sb3-a2c" / "config.json").read_text())["reward"]
                == (json.loads((seed_dir / "dqn" / "config.json").read_text())["reward"])
            )
            assert (seed_dir / "baselines.json").is_file()
    stamp = (out / "P2" / "seed0" / "dqn" / "eval.json").stat().st_mtime_ns
    assert load_script("loso").main(argv) == 0  # resumable: finished folds are skipped
    assert (out / "P2" / "seed0" / "dqn" / "eval.json").stat().st_mtime_ns == stamp
    compare = load_script("compare")
    assert compare.main([str(out)]) == 0
    table = (out / "comparison.md").read_text()
    for method in ("dqn", "sb3-a2c", "threshold", "full_clip", "fixed_fraction", "consecutive"):
        assert f"| {method} |" in table
    for png in ("confusion_matrices.png", "accuracy_vs_earliness.png", "training_curves.png"):
        assert (out / png).stat().st_size > 1000
    rows = (out / "comparison.csv").read_text().splitlines()
    assert rows[0].startswith("method,") and len(rows) == 1 + 8
    # the spread: HM mean ± std over the two seeds of each seed's pooled HM, by hand
    methods = compare.collect(out)
    per_seed = [compare.pool([r for r in methods["dqn"] if r["seed"] == s])[2] for s in (0, 1)]
    mean, std = compare.aggregate(methods["dqn"])["harmonic_mean"]
    assert mean == pytest.approx(np.mean(per_seed)) and std == pytest.approx(np.std(per_seed))
    wins = json.loads((out / "wins.json").read_text())
    assert wins["folds"] == ["P2", "P3"] and wins["wins"] + wins["ties"] + wins["losses"] == 2
    assert wins["best_other"] in ("threshold", "fixed_fraction", "consecutive")
    one = tmp_path / "only-p2"
    assert compare.main([str(out), "--folds", "P2", "--out", str(one)]) == 0
    assert "| dqn | same posterior | 1 | 2 |" in (one / "comparison.md").read_text()


def test_compare_pool_by_hand() -> None:
    compare = load_script("compare")
    reports = [
        {"n_clips": 1, "accuracy": 1.0, "earliness": 0.5},
        {"n_clips": 3, "accuracy": 0.0, "earliness": 0.1},
    ]
    accuracy, earliness, hm = compare.pool(reports)
    # accuracy (1 + 0) / 4, earliness (0.5 + 0.3) / 4; HM 2 a (1 - e) / (a + 1 - e)
    assert accuracy == 0.25 and earliness == pytest.approx(0.2)
    assert hm == pytest.approx(2 * 0.25 * 0.8 / 1.05)


def test_bench_agents_reports_a_ratio(store) -> None:
    from avemotion.agents.bench import bench_agents

    result = bench_agents(
        store, steps=150, num_envs=4, learning_starts=20, batch_size=16, hidden=[8]
    )
    assert set(result["agents"]) == {"dqn", "sb3-dqn"}
    assert result["speedup_vs_sb3_dqn"] > 0 and result["wall_speedup_vs_sb3_dqn"] > 0
    assert result["agents"]["dqn"]["setup_seconds"] > 0


@pytest.mark.skipif(
    not aeon_available(),
    reason="aeon is not installed (optional extra): JapaneseVowels ships inside it",
)
def test_japanese_vowels(tmp_path) -> None:
    assert (
        load_script("japanese_vowels").main(
            [
                "--out",
                str(tmp_path),
                "--steps",
                "200",
                "--set",
                "num_envs=4",
                "learning_starts=20",
                "batch_size=16",
            ]
        )
        == 0
    )
    results = json.loads((tmp_path / "results.json").read_text())
    assert {"dqn", "aeon_probability_threshold", "aeon_teaser"} <= set(results)
