"""Live media sources: files decoded incrementally, and capture devices.

A source is an iterator of :class:`MediaChunk` in stream-time order. Files are decoded as
extraction decodes them (:mod:`avemotion.encoders.media`): video frames as RGB shrunk so no
side exceeds 320 px, audio as 16 kHz mono float (sound files with soundfile and
extraction's resampling, :mod:`avemotion.online.sound_files`; other containers with PyAV's
resampler), but chunk by chunk, so a recognizer can answer before the file has been read
to its end. A file that breaks or stops short of its declared duration raises
:class:`~avemotion.encoders.media.MediaError` when the break is reached, after the chunks
before it were delivered (by :func:`~avemotion.encoders.media.check_complete`, the rule
extraction refuses such a file by).
"""

from __future__ import annotations

import heapq
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avemotion.encoders.media import (
    AUDIO_RATE,
    FALLBACK_FPS,
    MediaError,
    check_complete,
    declared_seconds,
    frame_rate,
    has_audio_track,
    one_line,
    rgb_reformatter,
)
from avemotion.online.chunks import MediaChunk
from avemotion.online.sound_files import sound_file_chunks

MAX_SIDE = 320
"""Video frames are shrunk so that no side exceeds this, as extraction does."""


def open_container(path: Path) -> Any:
    """``path`` opened with PyAV, or :class:`MediaError` naming it."""
    import av

    if not path.is_file():
        raise MediaError(f"{path}: no such file")
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as error:
        raise MediaError(
            f"{path}: cannot open the file as audio or video ({one_line(error)})"
        ) from None


@dataclass
class Tracks:
    """The tracks of a container a stream decodes (``None`` when not wanted), the video's
    frame rate and the size its frames are shrunk to."""

    video: Any
    audio: Any
    fps: float
    size: tuple[int, int]


def open_tracks(container: Any, path: Path, want_video: bool, want_audio: bool) -> Tracks:
    """The first video and/or audio track of ``container``; :class:`MediaError` naming
    ``path`` when a wanted one is missing."""
    video = container.streams.video[0] if want_video and container.streams.video else None
    audio = container.streams.audio[0] if want_audio and container.streams.audio else None
    if want_video and video is None:
        raise MediaError(f"{path}: no video track")
    if want_audio and audio is None:
        raise MediaError(f"{path}: no audio track")
    fps, size = FALLBACK_FPS, (0, 0)  # fps is unused without a video track
    if video is not None:
        fps = frame_rate(video.average_rate or video.guessed_rate, path)
        width, height = video.codec_context.width, video.codec_context.height
        scale = min(1.0, MAX_SIDE / max(width, height, 1))
        size = (max(2, round(width * scale)), max(2, round(height * scale)))
    return Tracks(video, audio, fps, size)


def _container_chunks(path: Path, want_video: bool, want_audio: bool) -> Iterator[MediaChunk]:
    """Decode the video and/or audio track of one container, in file order."""
    import av

    container = open_container(path)
    with container:
        tracks = open_tracks(container, path, want_video, want_audio)
        video, audio, fps, size = tracks.video, tracks.audio, tracks.fps, tracks.size
        reformatter = rgb_reformatter()
        resampler = (
            av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
            if audio is not None
            else None
        )
        n_frames, n_samples, last_time = 0, 0, 0.0
        streams = [s for s in (video, audio) if s is not None]
        try:
            for packet in container.demux(streams):
                for frame in packet.decode():
                    if isinstance(frame, av.VideoFrame):
                        last_time = float(frame.time) if frame.time is not None else n_frames / fps
                        n_frames += 1
                        yield MediaChunk(
                            last_time + 1.0 / fps,
                            frames=[reformatter(frame, size)],
                            times=[last_time],
                            fps=fps,
                        )
                    else:
                        samples = np.concatenate(
                            [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
                            or [np.zeros(0, np.float32)]
                        )  # type: ignore[union-attr]
                        n_samples += len(samples)
                        if len(samples):
                            yield MediaChunk(
                                n_samples / AUDIO_RATE, audio=samples.astype(np.float32, copy=False)
                            )
            if resampler is not None:
                tail = [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
                if tail:
                    samples = np.concatenate(tail).astype(np.float32)
                    n_samples += len(samples)
                    yield MediaChunk(n_samples / AUDIO_RATE, audio=samples)
        except (av.error.FFmpegError, ValueError) as error:
            at = max(n_samples / AUDIO_RATE, last_time)
            raise MediaError(f"{path}: corrupt media at {at:.2f} s ({one_line(error)})") from None
        if video is not None:
            check_complete(
                path,
                "video",
                last_time + 1.0 / fps if n_frames else 0.0,
                declared_seconds(container, video),
            )
        if audio is not None:
            check_complete(
                path, "audio", n_samples / AUDIO_RATE, declared_seconds(container, audio)
            )


def stream_files(
    video: str | os.PathLike[str] | None,
    audio: str | os.PathLike[str] | None,
    need_video: bool,
    need_audio: bool,
) -> tuple[Path | None, Path | None]:
    """The file to read the video from and the one to read the audio from (``None`` when
    the run does not need it): the video's own audio track when no ``audio`` is given.
    Raises :class:`MediaError` for a missing file or one the run would not use."""
    video_path = Path(video) if video is not None else None
    audio_path = Path(audio) if audio is not None else None
    if need_video and video_path is None:
        raise MediaError(
            "--video: the run's encoder has a visual part: give a video (or a capture device)"
        )
    if need_audio and audio_path is None:
        if video_path is None:
            raise MediaError(
                "--audio: the run's encoder has an audio part: give audio or a video with an audio track"
            )
        audio_path = video_path
    if not need_audio and audio_path is not None and audio_path != video_path:
        raise MediaError(f"{audio_path}: the run's encoder has no audio part (visual only)")
    return (video_path if need_video else None), (audio_path if need_audio else None)


def file_chunks(
    video: str | os.PathLike[str] | None,
    audio: str | os.PathLike[str] | None,
    need_video: bool,
    need_audio: bool,
) -> Iterator[MediaChunk]:
    """The chunks of a file-based stream, merged in stream-time order.

    ``video`` supplies frames (and the audio too when ``audio`` is not given and the
    encoder needs it); ``audio`` supplies the audio. Raises :class:`MediaError` for a
    missing track or a bad file, naming the file.
    """
    video_path, audio_path = stream_files(video, audio, need_video, need_audio)
    if video_path is not None and audio_path == video_path:
        return _container_chunks(video_path, True, True)
    sources: list[Iterator[MediaChunk]] = []
    if video_path is not None:
        sources.append(_container_chunks(video_path, True, False))
    if audio_path is not None:
        sources.append(sound_file_chunks(audio_path) or _container_chunks(audio_path, False, True))
    return sources[0] if len(sources) == 1 else heapq.merge(*sources, key=lambda chunk: chunk.end_s)


def describe_inputs(
    video: str | os.PathLike[str] | None,
    audio: str | os.PathLike[str] | None,
    need_video: bool,
    need_audio: bool,
) -> list[str]:
    """One line per input file of :func:`file_chunks`: which of its tracks the stream uses,
    and which it leaves unused and why, so no track is dropped without a word."""
    lines = []
    if video is not None:
        used = [kind for kind, needed in (("video", need_video), ("audio", need_audio)) if needed]
        if audio is not None and Path(audio) != Path(video) and "audio" in used:
            used.remove("audio")
            why_audio = "--audio supplies the audio"
        else:
            why_audio = "the run's encoder has no audio part"
        unused = []
        if not need_video:
            unused.append("its video track is not (the run's encoder has no visual part)")
        if "audio" not in used and has_audio_track(video):
            unused.append(f"its audio track is not ({why_audio})")
        what = " and ".join(used) + " used" if used else "not used"
        lines.append("; ".join([f"{video}: {what}", *unused]))
    if audio is not None and (video is None or Path(audio) != Path(video)):
        lines.append(f"{audio}: audio used")
    return lines


def check_devices(
    camera: int | None, audio_device: str | None, need_video: bool, need_audio: bool
) -> None:
    """Refuse, in one line, capture devices that do not fit the run: one it would never
    read (the camera of an audio-only run, the microphone of a visual-only one: the number
    or name would be ignored) or one it needs and was not given."""
    if not (need_video or need_audio):
        raise ValueError("device: the run's encoder needs neither audio nor video")
    if audio_device is not None and not need_audio:
        raise ValueError(
            f"--audio-device {audio_device}: the run's encoder has no audio part (visual "
            "only): no audio would be captured"
        )
    if camera is not None and not need_video:
        raise ValueError(
            f"--camera {camera}: the run's encoder has no visual part (audio only): no camera "
            "would be read; give --audio-device alone for live audio"
        )
    if need_audio and audio_device is None:
        raise ValueError(
            "--audio-device: the run's encoder has an audio part: name an ALSA capture device (e.g. default)"
        )
    if need_video and camera is None:
        raise ValueError(
            "--camera: the run's encoder has a visual part: name the camera (--camera N)"
        )


def device_chunks(
    device: int | None, need_video: bool, need_audio: bool, audio_device: str | None = None
) -> Iterator[MediaChunk]:
    """Chunks from capture devices: camera ``device`` (OpenCV; ``None`` for an audio-only
    run) and, for audio, the ALSA device ``audio_device`` (PyAV). Devices that do not fit
    the run raise ``ValueError`` here, before any is opened (:func:`check_devices`); a
    device that is missing raises :class:`MediaError` when the stream is read."""
    check_devices(device, audio_device, need_video, need_audio)
    if need_audio:
        assert audio_device is not None
        return _alsa_with_camera(device, audio_device)
    assert device is not None
    return _camera_chunks(device)


def _camera_chunks(device: int) -> Iterator[MediaChunk]:
    import cv2

    capture = cv2.VideoCapture(int(device))
    if not capture.isOpened():
        raise MediaError(
            f"capture device {device}: not available (no camera /dev/video{device} on this machine)"
        )
    start = time.monotonic()
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                raise MediaError(f"capture device {device}: stopped delivering frames")
            now = time.monotonic() - start
            yield MediaChunk(
                now, frames=[_shrink(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))], times=[now]
            )
    finally:
        capture.release()


def _shrink(rgb: np.ndarray) -> np.ndarray:
    import cv2

    height, width = rgb.shape[:2]
    scale = min(1.0, MAX_SIDE / max(width, height, 1))
    if scale == 1.0:
        return rgb
    return cv2.resize(
        rgb,
        (max(2, round(width * scale)), max(2, round(height * scale))),
        interpolation=cv2.INTER_AREA,
    )


def _alsa_with_camera(device: int | None, audio_device: str) -> Iterator[MediaChunk]:
    """The microphone's audio, with camera ``device``'s frames between its blocks (none for
    an audio-only run: ``device`` is ``None``)."""
    import av
    import cv2

    try:
        microphone = av.open(audio_device, format="alsa")
    except (av.error.FFmpegError, ValueError) as error:
        raise MediaError(
            f"audio capture device {audio_device!r}: not available ({one_line(error)})"
        ) from None
    capture = cv2.VideoCapture(int(device)) if device is not None else None
    if capture is not None and not capture.isOpened():
        microphone.close()
        raise MediaError(
            f"capture device {device}: not available (no camera /dev/video{device} on this machine)"
        )
    resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
    start, samples_done = time.monotonic(), 0
    try:
        for frame in microphone.decode(audio=0):
            samples = np.concatenate(
                [o.to_ndarray().reshape(-1) for o in resampler.resample(frame)]
                or [np.zeros(0, np.float32)]
            )
            samples_done += len(samples)
            yield MediaChunk(samples_done / AUDIO_RATE, audio=samples.astype(np.float32))
            if capture is not None and capture.grab():
                ok, bgr = capture.retrieve()
                if ok:
                    now = time.monotonic() - start
                    yield MediaChunk(
                        now, frames=[_shrink(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))], times=[now]
                    )
    finally:
        microphone.close()
        if capture is not None:
            capture.release()
