"""``avemotion bench extract``: the summary's arithmetic by hand, its refusals, and (slow)
one real run on generated media against a local Ray."""

from __future__ import annotations

import json

import pytest

from avemotion.benchmarks.extract_speed import _summary
from avemotion.cli import main


def _run(rate: float, with_startup: float, startup: float) -> dict:
    return {"clips_per_s": rate, "clips_per_s_first_to_last": rate, "clips_per_s_with_startup": with_startup, "startup_s": startup,
            "broadcast_s": 0.25, "actor_load_s": 0.5, "actor_start_s": 3.0, "identical": True}  # fmt: skip


def test_the_summary_by_hand() -> None:
    runs = {"1": _run(2.0, 1.0, 4.0), "2": _run(3.6, 1.5, 5.0)}
    result = _summary(runs, "ravdess", 200, "seeded", single_s=80.0, load=[0.5, 1.5])
    assert result["speedup"] == pytest.approx(1.8)  # 3.6 / 2.0
    assert result["speedup_with_startup"] == pytest.approx(1.5)  # 1.5 / 1.0
    assert result["startup_s"] == 5.0 and result["broadcast_s"] == 0.25  # the 2-worker run's
    assert result["single_process_clips_per_s"] == pytest.approx(2.5)  # 200 / 80
    projection = result["projection"]
    assert projection["label"].startswith("PROJECTION, not measured")
    assert projection["seconds_per_clip"] == pytest.approx(0.5)  # 1 / 2.0 clips/s on 1 worker
    # 100,000 clips x 0.5 s / n workers / 3600 s
    assert projection["hours"] == pytest.approx(
        {"1": 13.8889, "8": 1.73611, "64": 0.217014}, rel=1e-4
    )
    assert result["identical_to_single_process"] is True
    runs["2"]["identical"] = False
    assert (
        _summary(runs, "ravdess", 200, "seeded", 80.0, [0, 0])["identical_to_single_process"]
        is False
    )


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["bench", "env", "--workers", "2"], "--workers: bench env does not read it"),
        (["bench", "extract", "--steps", "5"], "--steps: bench extract does not read it"),
        (["bench", "extract", "--clips", "1"], "--clips: expected at least 2, got 1"),
        (["bench", "extract", "--workers", "0", "2"], "--workers: expected counts >= 1, got [0, 2]"),
    ],
)  # fmt: skip
def test_bad_options_are_refused_in_one_line(argv: list[str], line: str, capsys) -> None:
    assert main(argv) == 2
    (err,) = capsys.readouterr().err.strip().splitlines()
    assert err.startswith(f"avemotion bench: error: {line}")


@pytest.mark.slow
def test_a_run_on_generated_media(tmp_path, capsys) -> None:
    from optional_extras import require_extra

    require_extra("ray.data", "ray")
    argv = [
        "bench",
        "extract",
        "--workers",
        "1",
        "2",
        "--clips",
        "6",
        "--root",
        str(tmp_path / "none"),
        "--json",
    ]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["media"] == "synthetic" and result["clips"] == 6
    assert set(result["clips_per_s"]) == {"1", "2"} and result["identical_to_single_process"]
    assert all(result["runs"][w]["startup_s"] > 0 for w in ("1", "2"))
    assert set(result["projection"]["hours"]) == {"1", "8", "64"}
