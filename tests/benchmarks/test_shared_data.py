"""One shared data root for every benchmark (``AVEMOTION_SHARED_DATA``), and a synthetic
stand-in clip that always says why it stands in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from avemotion.benchmarks import av_fixture, pipeline, pipeline_parts
from avemotion.benchmarks.av_fixture import fixture_clip, synthetic_av_clip
from avemotion.cli import main


def test_bench_faces_looks_in_the_shared_data_not_the_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The MEAD folder comes from AVEMOTION_SHARED_DATA even when the models live elsewhere."""
    from avemotion.benchmarks import faces

    seen: dict[str, str] = {}

    def fake(root: str, weights: str) -> dict[str, Any]:
        seen.update(root=root, weights=weights)
        return {"root": root, "files": {"seen": 0, "kept": 0, "skipped": 0}, "skipped": []}

    monkeypatch.setattr(faces, "run_faces_benchmark", fake)
    monkeypatch.setenv("AVEMOTION_SHARED_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("AVEMOTION_SHARED_MODELS", str(tmp_path / "elsewhere" / "models"))
    assert main(["bench", "faces"]) == 0
    assert seen["root"] == str(tmp_path / "data" / "mead-video")


def test_fixture_clip_says_why_it_is_synthetic(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    clip = fixture_clip(tmp_path / "a", empty)
    assert clip.kind == "synthetic" and clip.path.is_file()
    assert clip.fallback is not None and str(empty / "mead-video") in clip.fallback
    assert fixture_clip(tmp_path / "b").fallback == "no data root given"


def test_pipeline_json_carries_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The benchmark's default root is the shared one; without its data the result's
    ``clip.fallback`` says what was missing (the measurements are faked: speed is not the
    point here)."""
    missing = tmp_path / "no-data"
    monkeypatch.setenv("AVEMOTION_SHARED_DATA", str(missing))
    monkeypatch.setattr(av_fixture, "synthetic_av_clip", _short_clip)
    figures = {
        "real_time_factor": 0.1,
        "fp32": {"real_time_factor": 0.2, "stage_ms_per_step": {}},
        "sequential": {"cpu_time_factor": 0.1},
        "stage_ms_per_step": {},
        "p95_step_latency_ms": 1.0,
    }
    monkeypatch.setattr(pipeline, "_measure", lambda *args: figures)
    monkeypatch.setattr(pipeline, "_whisper", lambda *args: {"whisper_real_time_factor": 0.2})
    result = pipeline.run_pipeline_benchmark(sizes=("cpu",), quick=True, accuracy=False)
    assert result["clip"]["kind"] == "synthetic"
    assert result["whisper_real_time_factor"] == 0.2
    assert str(missing / "mead-video") in result["clip"]["fallback"]


def test_pipeline_parts_json_carries_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "no-data"
    monkeypatch.setenv("AVEMOTION_SHARED_DATA", str(missing))
    monkeypatch.setattr(av_fixture, "synthetic_av_clip", _short_clip)
    for name in ("log_mel_speed", "decode_speed", "branch_speed"):
        monkeypatch.setattr(pipeline_parts, name, lambda *args: {})
    result = pipeline_parts.run_parts(quick=True)
    assert result["fallback"].startswith("no such file: ")
    assert str(missing / "ravdess-speech-16k") in result["fallback"]
    assert str(missing / "mead-video") in result["fallback"]


def _short_clip(out: Path, seconds: float = 4.0, *args: Any, **kwargs: Any) -> Path:
    """The synthetic clip, shorter and smaller (the fallback is tested, not the clip)."""
    return synthetic_av_clip(out, 1.2, 25, 64)
