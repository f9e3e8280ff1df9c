"""A smoke run of the pipeline benchmark on a short synthetic clip: it runs and reports
every figure (speed is not asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pipeline_result import fabricated_pipeline_result

from avemotion.benchmarks.av_fixture import synthetic_av_clip
from avemotion.benchmarks.pipeline import main, run_pipeline_benchmark
from avemotion.benchmarks.pipeline_plot import _bars, plot_stages
from avemotion.online.records import STAGES


@pytest.mark.slow
def test_pipeline_benchmark_reports_every_figure(tmp_path: Path) -> None:
    clip = synthetic_av_clip(tmp_path / "clip.mkv", seconds=1.6, size=128)
    result = run_pipeline_benchmark(clip=clip, quick=True, accuracy=False)
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
    assert result["fp32_real_time_factor"] == cpu["fp32"]["real_time_factor"]
    assert set(result["fp32_stages"]) == set(STAGES)
    assert result["meets_paper_target"] is None  # no paper-sized row in a quick run
    # the Whisper stream: both precisions on the same 7 steps, re-encoding at steps 0 and 5
    default = result["whisper"][result["whisper_precision"]]
    assert result["whisper_real_time_factor"] == default["real_time_factor"]
    assert result["whisper"]["int8"]["real_time_factor"] > 0
    assert result["whisper"]["fp32"]["encodings_per_pass"] == 2
    if cpu["inference"] == "fast":  # onnxruntime installed: both paths on the same stream
        assert set(cpu["backends"].values()) == {"onnxruntime"} and len(cpu["backends"]) == 4
        assert set(cpu["fp32"]["backends"].values()) == {"torch"}
        assert cpu["posterior_max_abs_diff"] < 1e-5 and cpu["step_argmax_agreement"] == 1.0
        assert cpu["speedup_vs_fp32"] == pytest.approx(
            cpu["fp32"]["real_time_factor"] / cpu["real_time_factor"], rel=1e-2
        )
    assert (
        result["mini_xception_real_time_factor"]
        == result["encoders"]["mini-xception"]["real_time_factor"]
    )
    assert all(v > 0 for v in cpu["stage_cpu_ms_per_step"].values())
    out = plot_stages(result, tmp_path / "stages.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bars = [label for label, *_ in _bars(result)]
    # fp32 and the fastest path of each of the three quick sizes
    assert len(bars) == (6 if cpu["inference"] == "fast" else 3)


def test_plot_command_reads_a_result_and_refuses_a_bad_one(tmp_path: Path) -> None:
    result = fabricated_pipeline_result()
    source = tmp_path / "result.json"
    source.write_text(json.dumps(result))
    assert main(["--from", str(source), "--plot", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 1000
    assert [label.split("\n")[0] for label, *_ in _bars(result)] == [
        "cpu, fp32",
        "cpu, fast",
        "paper, fp32",
        "paper, int8",
    ]
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(SystemExit):
        main(["--from", str(tmp_path / "bad.json")])


def test_bench_cli_draws_the_chart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``avemotion bench pipeline --plot PNG`` prints the JSON and draws the same chart."""
    import avemotion.benchmarks.pipeline as pipeline
    from avemotion.cli import main as cli

    monkeypatch.setattr(
        pipeline, "run_pipeline_benchmark", lambda quick: fabricated_pipeline_result()
    )
    assert cli(["bench", "pipeline", "--quick", "--plot", str(tmp_path / "c.png")]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == fabricated_pipeline_result()
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


PROG = "python -m avemotion.benchmarks.pipeline"


@pytest.mark.parametrize(
    "flags", [["--quick"], ["--sizes", "cpu"], ["--no-accuracy"], ["--out", "copy.json"]]
)
def test_from_refuses_the_options_of_a_run(
    flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--from draws a saved result: a run's options (and --out, which writes a run's
    result) used to be read only when running, so they were ignored without a word."""
    source = tmp_path / "result.json"
    source.write_text(json.dumps(fabricated_pipeline_result()))
    with pytest.raises(SystemExit) as exited:
        main(["--from", str(source), *flags])
    captured = capsys.readouterr()
    assert exited.value.code == 2 and captured.out == ""
    assert captured.err.splitlines()[-1] == (
        f"{PROG}: error: {flags[0]}: not read with --from (it draws a saved result; no run)"
    )
    assert not (tmp_path / "copy.json").exists()


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--plot", "stages.xyz", "--plot {}: matplotlib cannot write .xyz files; expected one of"),
        ("--out", "missing/result.json", "--out {}: no such folder {}/missing"),
    ],
)
def test_what_would_fail_after_the_run_is_refused_before_it(
    flag: str,
    value: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import avemotion.benchmarks.pipeline as pipeline

    runs: list[dict] = []
    monkeypatch.setattr(pipeline, "run_pipeline_benchmark", lambda **kw: runs.append(kw))
    target = tmp_path / value
    with pytest.raises(SystemExit) as exited:
        main(["--quick", flag, str(target)])
    captured = capsys.readouterr()
    assert exited.value.code == 2 and captured.out == "" and runs == []
    line = captured.err.splitlines()[-1]
    assert line.startswith(f"{PROG}: error: " + message.format(target, tmp_path))
    assert not target.exists()


def test_result_is_printed_and_written_before_the_chart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A chart that fails to draw no longer loses the printed result (--out was written)."""
    import avemotion.benchmarks.pipeline as pipeline
    import avemotion.benchmarks.pipeline_plot as pipeline_plot

    def fail(result: dict, out: str) -> None:
        raise RuntimeError("cannot draw")

    monkeypatch.setattr(
        pipeline, "run_pipeline_benchmark", lambda **kw: fabricated_pipeline_result()
    )
    monkeypatch.setattr(pipeline_plot, "plot_stages", fail)
    out = tmp_path / "result.json"
    with pytest.raises(RuntimeError, match="cannot draw"):
        main(["--quick", "--out", str(out), "--plot", str(tmp_path / "s.png")])
    printed = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in printed] == [fabricated_pipeline_result()]
    assert json.loads(out.read_text()) == fabricated_pipeline_result()
