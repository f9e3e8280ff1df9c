"""StepEncoder: each video frame embedded once across pooled steps, the sliding log-mel
and the faster inference paths, all against the windowed (extraction) computation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from optional_extras import require_extra

from avemotion.encoders.bundle import load_encoder
from avemotion.encoders.datasets import Item
from avemotion.encoders.extract import encode_clip
from avemotion.encoders.frontend import step_patches
from avemotion.encoders.media import load_audio, load_video
from avemotion.encoders.steps import StepConfig
from avemotion.online import OnlineRecognizer

CLASSES = ["neutral", "happy", "sad", "angry"]


def stream(recognizer: OnlineRecognizer, clip: Any, rng: np.random.Generator | None) -> dict:
    """Feed a clip's video, then its audio, whole (``rng=None``) or in random-size chunks."""
    recognizer.reset()
    if recognizer.need_video:
        video = load_video(clip)
        recognizer.feed_video(video.frames, video.times, video.fps)
    if recognizer.need_audio:
        audio, start = load_audio(clip), 0
        while start < len(audio):
            size = len(audio) if rng is None else int(rng.integers(1, 5000))
            recognizer.feed_audio(audio[start : start + size])
            start += size
    return recognizer.finish()


def _posteriors(recognizer: OnlineRecognizer) -> np.ndarray:
    return np.stack([s.posteriors for s in recognizer.steps])


def test_pooled_frames_are_embedded_once_and_equal_extraction(av_run: Any) -> None:
    # the paper's 11 frames at stride 2 around each step: consecutive pools share frames
    recognizer = OnlineRecognizer.from_run(av_run.run_dir, stop_on_decision=False, frame_pool=11)
    clip = av_run.clips[0]  # 1.5 s at 25 fps: 6 steps
    summary = stream(recognizer, clip, None)
    rows, _ = encode_clip(
        load_encoder(av_run.encoder_dir),
        Item(clip, "angry", "s1", "c"),
        "temporal",
        StepConfig(10.0, 112, frame_pool=11),
    )
    assert summary["steps_encoded"] == len(rows) == 6
    np.testing.assert_allclose(_posteriors(recognizer), rows[:, -len(CLASSES) :], atol=1e-5)
    # hand count: step centres 0.4875 + 0.1 i s are nearest frames 12, 15, 17, 20, 22, 25;
    # their pools (offsets -10..10 by 2) hold the even frames 2..32 and the odd 5..35:
    # 16 + 16 = 32 distinct frames embedded, where the windowed computation embeds 6 x 11
    assert recognizer.step_encoder.frames_embedded == 32
    recognizer.close()


def test_stream_uses_the_sliding_log_mel(audio_run: Any) -> None:
    recognizer = OnlineRecognizer.from_run(audio_run.run_dir, stop_on_decision=False)
    summary = stream(recognizer, audio_run.clips[2], np.random.default_rng(0))
    steps = summary["steps_encoded"]
    assert steps == len(step_patches(load_audio(audio_run.clips[2])))
    # one whole window, then 10 new frames per 0.1 s step
    assert recognizer.step_encoder.mel.frames_computed == 96 + 10 * (steps - 1)
    recognizer.close()


def _fast_recognizer(run: Any, inference: str, **kwargs: Any) -> OnlineRecognizer:
    return OnlineRecognizer.from_run(
        run.run_dir, stop_on_decision=False, inference=inference, **kwargs
    )


@pytest.mark.parametrize("which", ["av_run", "audio_ensemble_run"])
def test_fast_path_equals_fp32(which: str, request: pytest.FixtureRequest) -> None:
    require_extra("onnxruntime", "onnx")
    run = request.getfixturevalue(which)
    fp32 = _fast_recognizer(run, "fp32")
    fast = _fast_recognizer(run, "fast")
    assert set(fast.step_encoder.backends.values()) == {"onnxruntime"}
    # the branches, and the fusion DNN and LSTM step the encoder has
    assert set(fast.step_encoder.backends) == set(fp32.step_encoder.backends)
    assert "temporal" in fast.step_encoder.backends
    assert set(fp32.step_encoder.backends.values()) == {"torch"}
    for clip in run.clips[:2]:
        assert stream(fp32, clip, None)["decision"] == stream(fast, clip, None)["decision"]
        np.testing.assert_allclose(_posteriors(fast), _posteriors(fp32), atol=1e-5)
    fp32.close()
    fast.close()
