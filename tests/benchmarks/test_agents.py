"""The agents benchmark: env-steps and wall-clock ratios, cold and warm posterior cache."""

from __future__ import annotations

import pytest

from avemotion.benchmarks.agents import bench_agents, ratios


def test_ratios_by_hand() -> None:
    """SB3: 500 env-steps/s, 200 s of wall, 180 s of CPU. Ours: 2500/s, cold 50 s wall and
    45 s CPU, warm 25 s and 20 s: env-steps 2500/500 = 5, wall 200/50 = 4 cold and
    200/25 = 8 warm, CPU 180/45 = 4 and 180/20 = 9."""
    ours = {
        "env_steps_per_s": 2500.0,
        "wall_seconds": 50.0,
        "cpu_seconds": 45.0,
        "warm": {"wall_seconds": 25.0, "cpu_seconds": 20.0},
    }
    theirs = {"env_steps_per_s": 500.0, "wall_seconds": 200.0, "cpu_seconds": 180.0}
    assert ratios({"dqn": ours, "sb3-dqn": theirs}) == {
        "speedup_vs_sb3_dqn": 5.0,
        "wall_speedup_vs_sb3_dqn": 4.0,
        "wall_speedup_vs_sb3_dqn_warm": 8.0,
        "cpu_speedup_vs_sb3_dqn": 4.0,
        "cpu_speedup_vs_sb3_dqn_warm": 9.0,
    }
    assert ratios({"dqn": ours}) == {}


def test_bench_times_cold_then_warm(tiny_store, tmp_path, monkeypatch) -> None:
    """Our DQN's first run fits the posterior (a miss), its rerun reads it (a hit) and
    saves the same network; SB3's run reads it too; the user's cache is never touched."""
    monkeypatch.setenv("AVEMOTION_CACHE", str(tmp_path / "user-cache"))
    result = bench_agents(
        tiny_store,
        steps=150,
        out=tmp_path / "runs",
        num_envs=4,
        learning_starts=20,
        batch_size=16,
        hidden=[8],
    )
    ours, theirs = result["agents"]["dqn"], result["agents"]["sb3-dqn"]
    assert ours["posterior_cache"] == "miss" and ours["warm"]["posterior_cache"] == "hit"
    assert theirs["posterior_cache"] == "hit" and ours["warm"]["same_model"] is True
    for summary in (ours, ours["warm"], theirs):
        assert summary["wall_seconds"] >= summary["posterior_seconds"] > 0
    assert ours["wall_seconds"] >= ours["train_seconds"] + ours["posterior_seconds"]
    assert result["wall_speedup_vs_sb3_dqn"] == pytest.approx(
        theirs["wall_seconds"] / ours["wall_seconds"]
    )
    assert not (tmp_path / "user-cache").exists()
