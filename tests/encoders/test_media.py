"""Decoding, resampling, and every bad-file case with its one-line message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from avemotion.encoders.datasets import Item
from avemotion.encoders.media import MediaError, load_audio, load_video
from avemotion.encoders.steps import clip_steps


def _tone(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_resamples_to_16k_mono(tmp_path: Path) -> None:
    stereo = np.stack([_tone(1.5, 44100), _tone(1.5, 44100)], axis=1)
    path = tmp_path / "tone.wav"
    soundfile.write(path, stereo, 44100)
    audio = load_audio(path)
    assert audio.dtype == np.float32
    assert abs(len(audio) - 24000) <= 1


def test_flac_under_a_wav_name_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "actually_flac.wav"
    soundfile.write(path, _tone(1.2, 16000), 16000, format="FLAC")
    assert len(load_audio(path)) == 19200


def _item(path: Path) -> Item:
    return Item(path, "happy", "S1", path.stem)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("corrupt", "cannot open the file"),
        ("wrong_container", "cannot open the file"),
        ("short", "shorter than one step window"),
        ("silent", "silent audio"),
        ("missing", "no such file"),
    ],
)
def test_bad_audio_files_get_their_message(tmp_path: Path, case: str, message: str) -> None:
    path = tmp_path / f"{case}.wav"
    if case == "corrupt":
        path.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(range(200)))
    elif case == "wrong_container":
        path = tmp_path / "notes.mp4"
        path.write_text("this is a text file, not a video\n")
    elif case == "short":
        soundfile.write(path, _tone(0.5, 16000), 16000)
    elif case == "silent":
        soundfile.write(path, np.zeros(32000, dtype=np.float32), 16000)
    with pytest.raises(MediaError, match=message) as caught:
        clip_steps(_item(path), need_audio=True, need_visual=False)
    text = str(caught.value)
    assert str(path) in text and "\n" not in text


def test_video_without_audio_track(mead_root: Path) -> None:
    clip = sorted(mead_root.glob("*.mp4"))[0]
    with pytest.raises(MediaError, match="no audio track"):
        clip_steps(_item(clip), need_audio=True, need_visual=False)


def test_audio_file_has_no_video(tmp_path: Path) -> None:
    path = tmp_path / "speech.flac"
    soundfile.write(path, _tone(2.0, 16000), 16000)
    with pytest.raises(MediaError, match="cannot open the file as video|no video track"):
        load_video(path)


def test_mead_video_decodes(mead_root: Path) -> None:
    video = load_video(sorted(mead_root.glob("*.mp4"))[0])
    assert video.frames.ndim == 4 and video.frames.shape[-1] == 3
    assert video.fps == pytest.approx(25.0)
    assert np.all(np.diff(video.times) > 0)


@pytest.mark.parametrize("size", [(128, 96), (64, 48)])
def test_reused_scaler_gives_the_per_frame_pixels(tmp_path: Path, size: tuple[int, int]) -> None:
    """One single-threaded scaler kept across a stream (the fast path of load_video and the
    online sources) converts and shrinks every frame exactly as a fresh per-frame one."""
    import av

    from avemotion.benchmarks.av_fixture import synthetic_av_clip
    from avemotion.encoders.media import rgb_reformatter

    clip = synthetic_av_clip(tmp_path / "clip.mkv", seconds=0.6, size=128)
    convert = rgb_reformatter()
    with av.open(str(clip)) as container:
        frames = list(container.decode(container.streams.video[0]))
    assert len(frames) >= 10
    for frame in frames:
        expected = frame.to_ndarray(format="rgb24", width=size[0], height=size[1])
        got = convert(frame, size)
        assert got.shape == (size[1], size[0], 3) and got.dtype == np.uint8
        np.testing.assert_array_equal(got, expected)


def test_missing_or_absurd_frame_rate_falls_back_with_a_warning() -> None:
    """One named fallback rate, used for a missing, non-finite or time-base-like rate, and
    a warning naming the file each time it is."""
    from fractions import Fraction

    from avemotion.encoders.media import FALLBACK_FPS, frame_rate

    assert frame_rate(Fraction(30000, 1001), "ok.mp4") == pytest.approx(29.97, abs=1e-3)
    for rate in (None, 0, Fraction(1000), float("nan"), -5.0):
        with pytest.warns(UserWarning, match=r"clip\.flv: no usable video frame rate"):
            assert frame_rate(rate, "clip.flv") == FALLBACK_FPS == 25.0


def test_stream_without_a_frame_rate_warns_once() -> None:
    """A visual-only stream of one frame with no fps: the step check assumes the fallback
    rate for the frame's duration, and says so once, however often it is asked."""
    import warnings

    from avemotion.online.alignment import StepAligner

    aligner = StepAligner(need_audio=False, need_video=True)
    aligner.add_video([np.zeros((8, 8, 3), np.uint8)], [0.0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            assert list(aligner.steps()) == []  # 0.04 s of video: no step window yet
    fallback = [w for w in caught if "assuming 25 fps" in str(w.message)]
    assert len(fallback) == 1 and str(fallback[0].message).startswith("video: ")
