"""``avemotion bench`` refuses an option the chosen benchmark would not read."""

from __future__ import annotations

import json

import pytest
from pipeline_result import fabricated_pipeline_result

from avemotion.cli import main


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["bench", "env", "--steps", "10"], "--steps"),
        (["bench", "env", "--seed", "3"], "--seed"),
        (["bench", "fuzz", "--quick"], "--quick"),
        (["bench", "agents", "--plot", "x.png"], "--plot"),
        (["bench", "pipeline", "--features", "STORE"], "--features"),
        (["bench", "faces", "--steps", "5"], "--steps"),
    ],
)
def test_an_option_the_benchmark_ignores_is_refused(argv: list[str], flag: str, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"avemotion bench: error: {flag}: bench {argv[1]}")


def test_json_is_accepted_by_every_benchmark(capsys) -> None:
    assert main(["bench", "fuzz", "--steps", "200", "--json"]) == 0
    assert '"violations": 0' in capsys.readouterr().out.splitlines()[-1]


def test_pipeline_plot_suffix_is_refused_before_the_benchmark(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """``--plot X.xyz`` failed only after the minutes-long run, in savefig's words (not
    naming --plot), and the result was lost: now one line before anything runs."""
    import avemotion.benchmarks.pipeline as pipeline

    runs: list[bool] = []
    monkeypatch.setattr(pipeline, "run_pipeline_benchmark", lambda quick: runs.append(quick))
    plot = tmp_path / "stages.xyz"
    assert main(["bench", "pipeline", "--plot", str(plot)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and runs == [] and not plot.exists()
    (line,) = captured.err.splitlines()
    head, writable = line.split("; expected one of ")
    assert head == f"avemotion bench: error: --plot {plot}: matplotlib cannot write .xyz files"
    assert {".png", ".pdf", ".svg"} <= set(writable.split(", "))


def test_pipeline_result_is_printed_before_the_chart_is_drawn(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A chart that fails to draw no longer takes the benchmark's JSON with it."""
    import avemotion.benchmarks.pipeline as pipeline
    import avemotion.benchmarks.pipeline_plot as pipeline_plot

    def fail(result: dict, out: str) -> None:
        raise ValueError(f"{out}: cannot draw")

    monkeypatch.setattr(
        pipeline, "run_pipeline_benchmark", lambda quick: fabricated_pipeline_result()
    )
    monkeypatch.setattr(pipeline_plot, "plot_stages", fail)
    plot = tmp_path / "stages.png"
    assert main(["bench", "pipeline", "--plot", str(plot)]) == 2
    captured = capsys.readouterr()
    assert [json.loads(line) for line in captured.out.splitlines()] == [
        fabricated_pipeline_result()
    ]
    assert captured.err.splitlines() == [f"avemotion bench: error: {plot}: cannot draw"]


def test_faces_prints_the_file_account_beside_the_json(
    monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """stdout: the JSON only; stderr: files seen = kept + skipped, then each skipped file."""
    from avemotion.benchmarks import faces

    result = {
        "root": "/data/mead",
        "clips": 1,
        "files": {"seen": 3, "kept": 1, "skipped": 2},
        "skipped": ["/data/mead/a.mp4: no video track", "/data/mead/notes.txt: other"],
    }
    monkeypatch.setattr(faces, "run_faces_benchmark", lambda root, weights: result)
    assert main(["bench", "faces", "--root", "/data/mead", "--weights", "w.hdf5"]) == 0
    captured = capsys.readouterr()
    assert [json.loads(line) for line in captured.out.splitlines()] == [result]
    assert captured.err.splitlines() == [
        "/data/mead: 3 file(s) seen = 1 kept + 2 skipped",
        "  skipped /data/mead/a.mp4: no video track",
        "  skipped /data/mead/notes.txt: other",
    ]
