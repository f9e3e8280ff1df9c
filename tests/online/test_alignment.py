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


def test_video_alone_releases_steps_by_hand() -> None:
    """10 steps/s: hop 1600 samples, window 15600 (0.975 s); step i's centre is
    (1600 i + 7800) / 16000 = 0.4875 + 0.1 i s. Frames at 4 fps from t = 10 s (relative
    times 0, 0.25, ..., 1.25). Step i exists once int((last + 1/4) * 16000) >= 1600 i + 15600."""
    aligner = StepAligner(False, True)
    frame = np.zeros((2, 2, 3), np.uint8)
    released = []
    for k in range(6):
        aligner.add_video([frame + k], [10.0 + 0.25 * k], fps=4.0)
        released.append([(s.index, [f for f, _ in s.frames]) for s in aligner.steps()])
    aligner.end()
    assert list(aligner.steps()) == []  # step 6 would need 25200 samples, the video 24000
    # frames 0-2: 0.25 + 0.25 s = 8000 .. 12000 samples < 15600, no step yet
    # frame 3 (0.75 s): 16000 >= 15600: step 0 (centre 0.4875, nearest 0.5 = frame 2)
    # frame 4 (1.0 s): 20000 >= 1600 i + 15600 for i <= 2: step 1 (0.5875: 0.5 is 0.0875
    #   away, 0.75 is 0.1625: frame 2), step 2 (0.6875: frame 3, 0.0625 away)
    # frame 5 (1.25 s): 24000: i <= 5: steps 3 (0.7875: frame 3), 4 (0.8875: 1.0 is 0.1125
    #   away, 0.75 is 0.1375: frame 4), 5 (0.9875: frame 4)
    assert released == [
        [],
        [],
        [],
        [(0, [2])],
        [(1, [2]), (2, [3])],
        [(3, [3]), (4, [4]), (5, [4])],
    ]


def test_audio_visual_step_waits_for_a_frame_past_its_centre_by_hand() -> None:
    """Audio for steps 0 and 1 (15600 + 1600 = 17200 samples), then frames at 0, 0.25, 0.5 s:
    step 0 (centre 0.4875 s) has a frame after its centre (0.5) and goes; step 1 (centre
    0.5875 s) waits, since a nearer frame may still come, until the frame at 0.75 s shows
    that the nearest is still the one at 0.5 s (0.0875 s away, against 0.1625 s)."""
    aligner = StepAligner(True, True)
    audio = np.arange(17200, dtype=np.float32) / 17200
    frames = [np.full((2, 2, 3), k, np.uint8) for k in range(4)]
    aligner.add_audio(audio)
    assert list(aligner.steps()) == []  # no video yet
    aligner.add_video(frames[:3], [0.0, 0.25, 0.5])
    (step0,) = aligner.steps()
    assert step0.index == 0 and step0.time_s == pytest.approx(0.4875)
    assert [f for f, _ in step0.frames] == [2] and step0.frames[0][1][0, 0, 0] == 2
    np.testing.assert_array_equal(step0.window, audio[:15600])
    aligner.add_video(frames[3:], [0.75])
    (step1,) = aligner.steps()
    assert step1.index == 1 and step1.time_s == pytest.approx(0.5875)
    assert [f for f, _ in step1.frames] == [2]
    np.testing.assert_array_equal(step1.window, audio[1600:17200])
    aligner.end()
    assert list(aligner.steps()) == []  # step 2 needs 18800 samples


def test_steps_past_a_shorter_video_are_cut_by_hand() -> None:
    """2.5 s of audio (40000 samples: (40000 - 15600) // 1600 + 1 = 16 windows) beside 1.0 s
    of video (frames at 0, 0.25, 0.5, 0.75 s at 4 fps: shown until 1.0 s). Step i's centre
    is 0.4875 + 0.1 i s, so steps 0-5 (up to 0.9875 s) are kept and the 10 from 1.0875 s are
    cut, as extraction cuts them (tests/encoders/test_steps.py), never given frame 3 again."""
    aligner = StepAligner(True, True)
    frames = [np.full((2, 2, 3), k, np.uint8) for k in range(4)]
    aligner.add_video(frames, [0.0, 0.25, 0.5, 0.75], fps=4.0)
    aligner.add_audio(np.zeros(40000, np.float32))
    before = list(aligner.steps())
    assert [s.index for s in before] == [
        0,
        1,
        2,
    ]  # step 3 (0.7875 s) waits: a nearer frame may come
    aligner.end()
    with pytest.warns(UserWarning, match=r"video: ends at 1\.00 s.*last 10 step\(s\) \(1\.00 s\)"):
        after = list(aligner.steps())
    assert [s.index for s in after] == [3, 4, 5]  # on screen: frame 3 (0.75 to 1.0 s)
    assert [[f for f, _ in s.frames] for s in after] == [[3], [3], [3]]
    assert aligner.cut_steps == 10 and aligner.next_step == 6
    assert list(aligner.steps()) == []  # the cut is said once


def test_equal_lengths_cut_nothing() -> None:
    aligner = StepAligner(True, True)
    aligner.add_video([np.zeros((2, 2, 3), np.uint8)] * 5, [0.0, 0.25, 0.5, 0.75, 1.0], fps=4.0)
    aligner.add_audio(np.zeros(20000, np.float32))  # 1.25 s: 3 windows, centres up to 0.6875
    aligner.end()
    assert [s.index for s in aligner.steps()] == [0, 1, 2] and aligner.cut_steps == 0
