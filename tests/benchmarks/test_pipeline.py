"""A smoke run of the pipeline benchmark on a short synthetic clip: it runs and reports
every figure (speed is not asserted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from avemotion.benchmarks.av_fixture import synthetic_av_clip
from avemotion.benchmarks.pipeline import run_pipeline_benchmark
from avemotion.online.records import STAGES


@pytest.mark.slow
def test_pipeline_benchmark_reports_every_figure(tmp_path: Path) -> None:
    clip = synthetic_av_clip(tmp_path / "clip.mkv", seconds=1.6, size=128)
    result = run_pipeline_benchmark(clip=clip, quick=True)
    assert result["clip"]["kind"] == "given"
    assert set(result["stages"]) == set(STAGES)
    assert all(v >= 0 for v in result["stages"].values())
    for size in ("cpu", "cpu-authors-face", "mini-xception"):
        figures = result["encoders"][size]
        assert figures["steps"] == 7  # (1.6 s - 0.975 s) / 0.1 s + 1
        assert figures["real_time_factor"] > 0 and figures["real_time_factor_mode"] in (
            "sequential",
            "lookahead",
        )
        assert figures["live"]["p95_step_latency_ms"] > 0
    assert result["real_time_factor"] == result["encoders"]["cpu"]["real_time_factor"]
    assert (
        result["mini_xception_real_time_factor"]
        == result["encoders"]["mini-xception"]["real_time_factor"]
    )
