"""StepAligner: steps are cut as extraction cuts them, whatever the chunking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avemotion.encoders.datasets import Item
from avemotion.encoders.media import load_audio, load_video
from avemotion.encoders.steps import StepConfig, clip_steps
from avemotion.online.alignment import StepAligner, StreamError


def _feed_chunked(
    aligner: StepAligner,
    audio: np.ndarray | None,
    frames: np.ndarray | None,
    times: np.ndarray | None,
    rng: np.random.Generator | None,
    fps: float = 25.0,
) -> list:
    """Feed media in random-size chunks (interleaved at random) or whole, then end."""
    steps = []
    a = v = 0
    while (audio is not None and a < len(audio)) or (frames is not None and v < len(frames)):
        take_audio = (
            frames is None
            or v >= len(frames)
            or (audio is not None and a < len(audio) and (rng is None or rng.random() < 0.5))
        )
        if take_audio:
            n = len(audio) if rng is None else int(rng.integers(1, 4000))
            aligner.add_audio(audio[a : a + n])
            a += n
        else:
            n = len(frames) if rng is None else int(rng.integers(1, 6))
            aligner.add_video(frames[v : v + n], times[v : v + n], fps)
            v += n
        steps += list(aligner.steps())
    aligner.end()
    return steps + list(aligner.steps())


@pytest.mark.parametrize("modality", ["audio-visual", "audio", "visual"])
def test_random_chunks_give_extraction_steps(av_clips: list[Path], modality: str) -> None:
    clip = av_clips[2]
    need_audio, need_video = modality != "visual", modality != "audio"
    extracted = clip_steps(
        Item(clip, "sad", "s0", "c"), need_audio, need_video, StepConfig(10.0, 32)
    )
    audio = load_audio(clip) if need_audio else None
    video = load_video(clip) if need_video else None
    frames, times = (video.frames, video.times) if video is not None else (None, None)
    whole = _feed_chunked(StepAligner(need_audio, need_video), audio, frames, times, None)
    assert len(whole) == extracted.n_steps
    for seed in range(3):
        chunked = _feed_chunked(
            StepAligner(need_audio, need_video), audio, frames, times, np.random.default_rng(seed)
        )
        assert [s.index for s in chunked] == list(range(extracted.n_steps))
        for a, b in zip(whole, chunked):
            assert a.time_s == b.time_s
            if need_audio:
                np.testing.assert_array_equal(a.window, b.window)
            if need_video:
                assert [f for f, _ in a.frames] == [f for f, _ in b.frames]


def test_pooled_frames_wait_for_the_whole_pool(av_clips: list[Path]) -> None:
    video = load_video(av_clips[0])
    whole = _feed_chunked(
        StepAligner(False, True, frame_pool=11), None, video.frames, video.times, None
    )
    chunked = _feed_chunked(
        StepAligner(False, True, frame_pool=11),
        None,
        video.frames,
        video.times,
        np.random.default_rng(0),
    )
    assert [[f for f, _ in s.frames] for s in whole] == [[f for f, _ in s.frames] for s in chunked]
    assert all(len(s.frames) == 11 for s in whole)


def test_bad_input_is_refused_and_leaves_the_stream_intact() -> None:
    aligner = StepAligner(True, True)
    frame = np.zeros((8, 8, 3), np.uint8)
    aligner.add_video([frame, frame], [0.0, 0.04])
    with pytest.raises(StreamError, match="frame times must increase"):
        aligner.add_video([frame], [0.02])
    with pytest.raises(StreamError, match="uint8 RGB"):
        aligner.add_video([np.zeros((8, 8), np.uint8)], [0.08])
    with pytest.raises(StreamError, match="NaN or inf"):
        aligner.add_audio(np.array([0.0, np.nan], np.float32))
    with pytest.raises(StreamError, match="1-D float"):
        aligner.add_audio(np.zeros((2, 100), np.float32))
    assert aligner.video_frames == 2 and aligner.audio_seconds == 0.0
    visual_only = StepAligner(False, True)
    with pytest.raises(StreamError, match="no audio part"):
        visual_only.add_audio(np.zeros(100, np.float32))
