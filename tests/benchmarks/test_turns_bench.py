"""``avemotion bench turns`` at a tiny length: its figures are consistent and it refuses
options it does not read."""

from __future__ import annotations

import json

import pytest

from avemotion.cli import main


def test_bench_turns_reports_memory_and_real_time_factor(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["bench", "turns", "--seconds", "30"]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert result["audio_seconds"] == 30 and result["turns"] >= 5
    assert result["memory_growth_mb"] == pytest.approx(
        result["resident_mb_end"] - result["resident_mb_start"], abs=0.11
    )
    assert result["real_time_factor"] == pytest.approx(result["wall_seconds"] / 30, abs=1e-3)
    assert result["steps_encoded"] > 0 and result["targets"]["memory_growth_mb"] == 50.0


def test_bench_turns_refuses_what_it_does_not_read(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "turns", "--weights", "x.h5"]) == 2
    assert "--weights: bench turns does not read it" in capsys.readouterr().err
    assert main(["bench", "turns", "--seconds", "0"]) == 2
    assert "--seconds: expected > 0" in capsys.readouterr().err
