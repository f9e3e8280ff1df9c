"""The muxed real fixture: a MEAD face video with a RAVDESS utterance of the same emotion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from avemotion.benchmarks.av_fixture import fixture_clip
from avemotion.encoders.bundle import load_encoder
from avemotion.encoders.datasets import Item
from avemotion.encoders.extract import encode_clip
from avemotion.encoders.media import load_audio
from avemotion.encoders.steps import StepConfig
from avemotion.online import OnlineRecognizer
from avemotion.online.sources import file_chunks
from avemotion.online.streaming import run_stream


@pytest.mark.real_data
def test_muxed_real_clip_streams_as_extracted(
    mead_root: Path, ravdess_root: Path, av_run: Any, tmp_path: Path
) -> None:
    clip = fixture_clip(tmp_path, mead_root.parent, emotion="happy")
    assert (
        clip.kind == "real"
        and "happy" in Path(clip.sources[0]).name
        and "-03-" in Path(clip.sources[1]).name
    )
    np.testing.assert_array_equal(
        load_audio(clip.path), load_audio(clip.sources[1])[: len(load_audio(clip.path))]
    )

    rows, detected = encode_clip(
        load_encoder(av_run.encoder_dir),
        Item(clip.path, "happy", "M030", "c"),
        "temporal",
        StepConfig(10.0, 112),
    )
    assert detected == len(rows)  # a real face in every step
    recognizer = OnlineRecognizer.from_run(av_run.run_dir, stop_on_decision=False)
    summary = run_stream(recognizer, file_chunks(clip.path, None, True, True))
    assert summary["steps_encoded"] == summary["total_steps"] == len(rows)
    posteriors = np.stack([s.posteriors for s in recognizer.steps])
    np.testing.assert_allclose(posteriors, rows[:, -4:], atol=1e-5)
    assert recognizer.faces.tracker.detected_fraction == 1.0
