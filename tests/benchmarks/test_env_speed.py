"""A smoke run of ``avemotion bench env``: it runs and reports every figure (speed is not asserted)."""

from __future__ import annotations

import json

import pytest

from avemotion.cli import main


def test_bench_env_quick_reports_all_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "env", "--quick"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result["single_env_steps_per_s"]) == {"AVEmotion-v0", "CartPole-v1"}
    assert all(v > 0 for v in result["single_env_steps_per_s"].values())
    keys = result["vector_env_steps_per_s"]
    for dim in (128, 1408):
        for n in (1, 64, 1024):
            assert keys[f"dim={dim},num_envs={n},obs_mode=frame"] > 0
