"""The default Whisper audio stream's real-time factor (``whisper_real_time_factor`` of
``avemotion bench pipeline``).

An audio-only encoder with the Whisper base branch on its default schedule
(:mod:`avemotion.encoders.whisper_schedule`) and the default LSTM (untrained: speed does not
depend on the head's weights) encodes a clip step by step, as ``avemotion stream`` does
(:class:`~avemotion.online.step_encoder.StepEncoder`: log-mel statistics, the schedule's
re-encodings, the head, the LSTM), with the torch threads the caller set. The figure is
wall time over the audio's duration, the median of ``repeats`` passes after a warm-up, for
fp32 and for the int8 encoder (dynamic int8 linear layers); ``precision`` names the path
the branch uses by default. ``cpu_time_factor`` (process CPU seconds over the duration) is
less sensitive to other processes sharing the machine.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from avemotion.encoders.frontend import WINDOW_SAMPLES, n_steps, step_hop
from avemotion.encoders.whisper_branch import DEFAULT_PRECISION, PRECISIONS, whisper_section

TARGET_WHISPER_REAL_TIME_FACTOR = 0.25
"""Issue 25's target for the default Whisper stream, one torch thread on 2 cores."""


def _stream_encoder(precision: str) -> Any:
    from avemotion.encoders.bundle import Encoder, build_nets
    from avemotion.online.step_encoder import StepEncoder

    section = {**whisper_section("whisper-base"), "precision": precision}
    config = {
        "class_names": [f"class{k}" for k in range(8)],
        "steps_per_second": 10.0,
        "audio": section,
        "temporal": {"hidden": 128, "in_dim": 128, "input": "embedding"},
    }
    return StepEncoder(Encoder(config, build_nets(config)), "temporal", None)


def _pass(step_encoder: Any, audio: np.ndarray) -> tuple[float, float]:
    from avemotion.online.alignment import StepMedia
    from avemotion.online.records import StageTimes

    hop, times = step_hop(10.0), StageTimes()
    step_encoder.reset()
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(n_steps(len(audio))):
        window = audio[i * hop : i * hop + WINDOW_SAMPLES]
        step_encoder.encode(
            StepMedia(i, (i * hop + WINDOW_SAMPLES / 2) / 16000, window, None), times
        )
    return time.perf_counter() - started, time.process_time() - cpu


def whisper_stream_figures(audio: np.ndarray, repeats: int = 3) -> dict[str, Any]:
    """Real-time factors of the default Whisper stream on ``audio`` (16 kHz) per precision;
    ``whisper_real_time_factor`` is the default precision's."""
    duration = len(audio) / 16000.0
    encoders = {p: _stream_encoder(p) for p in PRECISIONS}
    for encoder in encoders.values():
        _pass(encoder, audio)  # warm-up: loads the weights, picks kernels
    runs: dict[str, list[tuple[float, float]]] = {p: [] for p in PRECISIONS}
    for _ in range(max(1, repeats)):  # interleaved: both paths see the same machine load
        for precision, encoder in encoders.items():
            wall, cpu = _pass(encoder, audio)
            runs[precision].append((wall / duration, cpu / duration))
    figures = {
        p: {
            "real_time_factor": round(float(np.median([w for w, _ in r])), 4),
            "real_time_factor_runs": [round(w, 4) for w, _ in r],
            "cpu_time_factor": round(float(np.median([c for _, c in r])), 4),
            "encodings_per_pass": encoders[p].whisper.features.encoder_runs // (repeats + 1),
        }
        for p, r in runs.items()
    }
    default = figures[DEFAULT_PRECISION]["real_time_factor"]
    return {
        "whisper_real_time_factor": default,
        "whisper_precision": DEFAULT_PRECISION,
        "target_whisper_real_time_factor": TARGET_WHISPER_REAL_TIME_FACTOR,
        "meets_whisper_target": bool(default <= TARGET_WHISPER_REAL_TIME_FACTOR),
        "whisper": {"duration_s": round(duration, 3), "schedule": _schedule(), **figures},
    }


def clip_figures(clip: Path, repeats: int = 3) -> dict[str, Any]:
    """:func:`whisper_stream_figures` on a media file's audio; without the Whisper weights,
    ``None`` and the one-line reason."""
    from avemotion.encoders.media import load_audio

    try:
        return whisper_stream_figures(load_audio(clip), repeats)
    except ValueError as error:  # the whisper extra is not installed: say so
        return {"whisper_real_time_factor": None, "whisper": {"skipped": str(error)}}


def _schedule() -> dict[str, float]:
    section = whisper_section("whisper-base")
    return {k: section[k] for k in ("hop", "window", "pool")}
