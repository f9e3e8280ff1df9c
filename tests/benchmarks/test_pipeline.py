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
    cpu = result["encoders"]["cpu"]
    # the stages are disjoint parts of one stream: together they fit in the fastest
    # sequential pass the stage times were read from (rounding: 1 µs a stage)
    best_wall_ms = min(cpu["sequential"]["real_time_factor_runs"]) * 1.6 * 1e3
    spent_ms = sum(result["stages"].values()) * cpu["steps"]
    assert spent_ms <= best_wall_ms * 1.001 + len(STAGES) * 1e-3 * cpu["steps"]
    # every stage of this audio-visual pipeline ran on every step (a timer that never
    # started would read 0)
    assert all(result["stages"][stage] > 0 for stage in STAGES), result["stages"]
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
