"""Decoding media: audio with soundfile (wav, flac, ...) or PyAV (audio inside video), video
frames with PyAV, and resampling to 16 kHz mono with torchaudio.

Every failure raises :class:`MediaError` with a one-line reason naming the file, so that
extraction can skip the file and list the reason.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

AUDIO_RATE = 16_000
"""Sample rate of every audio signal past this module, in Hz."""
SILENCE_DBFS = -60.0
"""A signal whose peak level is below this (dB relative to full scale) counts as silent."""
FALLBACK_FPS = 25.0
"""Frame rate assumed for a video whose stream declares none (or an absurd one): the PAL
rate most corpora were filmed at. It only spaces frames without timestamps and sets the
last frame's duration; :func:`frame_rate` warns, naming the file, whenever it is used."""
MAX_PLAUSIBLE_FPS = 240.0
"""A declared rate at or above this is a time base taken for a frame rate (flv's 1000)."""
TRUNCATION_TOLERANCE_S = 0.15
"""A track ending this much before its declared duration counts as truncated."""


class MediaError(ValueError):
    """A media file cannot be used; ``str(error)`` is one line naming the file and the reason."""


@dataclass
class Video:
    """Decoded video frames: ``frames`` uint8 ``[N, H, W, 3]`` RGB and their times in seconds."""

    frames: np.ndarray
    times: np.ndarray
    fps: float


def one_line(error: BaseException) -> str:
    """The first line of an error's message (its type when it has none)."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def frame_rate(rate: object, path: str | os.PathLike[str]) -> float:
    """``rate`` (a stream's declared frame rate) as a float, or :data:`FALLBACK_FPS` with a
    warning naming ``path`` when it is missing, not finite or outside (0, 240) fps."""
    try:
        fps = float(rate) if rate else 0.0  # type: ignore[arg-type]
    except (TypeError, ValueError, ZeroDivisionError):
        fps = 0.0
    if math.isfinite(fps) and 0.0 < fps < MAX_PLAUSIBLE_FPS:
        return fps
    # The message names the file, so the default filter shows it once per file.
    warnings.warn(
        f"{path}: no usable video frame rate ({rate}): assuming {FALLBACK_FPS:g} fps",
        stacklevel=1,
    )
    return FALLBACK_FPS


def declared_seconds(container: Any, stream: Any) -> float | None:
    """A PyAV stream's declared duration in seconds (else the container's), if any."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    duration = container.duration
    return float(duration) / 1e6 if duration else None


def check_complete(
    path: str | os.PathLike[str], kind: str, reached: float, declared: float | None
) -> None:
    """Raise :class:`MediaError` when a ``kind`` track stops more than
    :data:`TRUNCATION_TOLERANCE_S` before its ``declared`` duration (a cut-off file)."""
    if declared is not None and reached < declared - TRUNCATION_TOLERANCE_S:
        raise MediaError(
            f"{path}: {kind} track truncated or corrupt: it stops at {reached:.2f} s of {declared:.2f} s"
        )


def resample(audio: np.ndarray, rate: int, target: int = AUDIO_RATE) -> np.ndarray:
    """Resample a mono float signal from ``rate`` to ``target`` Hz with torchaudio."""
    if rate == target:
        return np.ascontiguousarray(audio, dtype=np.float32)
    import torch
    import torchaudio.functional as F

    tensor = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    return F.resample(tensor, int(rate), int(target)).numpy()


def _audio_with_soundfile(path: Path) -> tuple[np.ndarray, int] | None:
    import soundfile

    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        return None  # not a format libsndfile knows: let PyAV try
    return data.mean(axis=1), int(rate)


def _audio_with_pyav(path: Path) -> tuple[np.ndarray, int]:
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as error:
        raise MediaError(
            f"{path}: cannot open the file as audio or video ({one_line(error)})"
        ) from None
    with container:
        if not container.streams.audio:
            raise MediaError(f"{path}: no audio track")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
        chunks: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except (av.error.FFmpegError, ValueError) as error:
            raise MediaError(f"{path}: corrupt audio track ({one_line(error)})") from None
    if not chunks:
        raise MediaError(f"{path}: the audio track holds no samples")
    return np.concatenate(chunks).astype(np.float32), AUDIO_RATE


def load_audio(path: str | os.PathLike[str], rate: int = AUDIO_RATE) -> np.ndarray:
    """Decode ``path`` to a float32 mono signal at ``rate`` Hz.

    soundfile reads wav/flac/ogg whatever the extension; anything else goes through PyAV
    (the audio track of mp4/avi/flv/mkv, mp3, ...). Raises :class:`MediaError`.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: no such file")
    decoded = _audio_with_soundfile(path)
    if decoded is None:
        decoded = _audio_with_pyav(path)
    audio, source_rate = decoded
    if audio.size == 0:
        raise MediaError(f"{path}: the audio holds no samples")
    if not np.isfinite(audio).all():
        raise MediaError(f"{path}: the audio holds NaN or inf samples")
    return resample(audio, source_rate, rate)


def check_not_silent(path: str | os.PathLike[str], audio: np.ndarray) -> None:
    """Raise :class:`MediaError` when ``audio`` is silent (peak below :data:`SILENCE_DBFS`)."""
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    level = 20.0 * np.log10(max(peak, 1e-12))
    if level < SILENCE_DBFS:
        raise MediaError(f"{path}: silent audio (peak {level:.0f} dBFS < {SILENCE_DBFS:.0f} dBFS)")


def rgb_reformatter() -> Callable[[Any, tuple[int, int]], np.ndarray]:
    """A converter of decoded PyAV frames to uint8 RGB ``[H, W, 3]`` at a given
    ``(width, height)``, for one stream.

    Why not ``frame.to_ndarray(format="rgb24", width=..., height=...)``: that builds a new
    scaler per frame, on as many threads as the machine has cores, which cost 0.6–2.6 ms a
    256 px frame (more when other processes hold the cores, as threads wait to be
    scheduled); one single-threaded scaler reused across the stream gives the same pixels
    (the scaler's result does not depend on its thread count) for about 0.24 ms a frame
    with the decoding.
    """
    from av.video.reformatter import VideoReformatter

    reformatter = VideoReformatter()

    def convert(frame: Any, size: tuple[int, int]) -> np.ndarray:
        return reformatter.reformat(
            frame, width=size[0], height=size[1], format="rgb24", threads=1
        ).to_ndarray()

    return convert


def _reached(times: list[float], fps: float) -> float:
    """Stream time at the end of the last decoded frame (by count when timestamps are broken)."""
    return max(times[-1], (len(times) - 1) / fps) + 1.0 / fps


def load_video(path: str | os.PathLike[str], max_side: int = 320) -> Video:
    """Decode every frame of the first video stream as RGB, shrunk so no side exceeds
    ``max_side`` pixels (the authors ran face detection on 320×240 frames).

    Raises :class:`MediaError` for a missing, corrupt or video-less file, and for a video
    track that breaks or stops short of its declared duration (a truncated file), as
    :mod:`avemotion.online.sources` does: steps past the cut would repeat its last frame.
    """
    import av

    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: no such file")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as error:
        raise MediaError(f"{path}: cannot open the file as video ({one_line(error)})") from None
    frames: list[np.ndarray] = []
    times: list[float] = []
    with container:
        if not container.streams.video:
            raise MediaError(f"{path}: no video track")
        stream = container.streams.video[0]
        fps = frame_rate(stream.average_rate or stream.guessed_rate, path)
        width, height = stream.codec_context.width, stream.codec_context.height
        scale = min(1.0, max_side / max(width, height, 1))
        size = (max(2, round(width * scale)), max(2, round(height * scale)))
        convert = rgb_reformatter()
        try:
            for index, frame in enumerate(container.decode(stream)):
                frames.append(convert(frame, size))
                times.append(float(frame.time) if frame.time is not None else index / fps)
        except (av.error.FFmpegError, ValueError) as error:
            if not frames:
                raise MediaError(f"{path}: corrupt video track ({one_line(error)})") from None
            # Frames came out before the break: refuse the file as the stream does
            # (online.sources), rather than let later steps repeat the last good frame.
            declared = declared_seconds(container, stream)
            of = f" of {declared:.2f} s" if declared is not None else ""
            raise MediaError(
                f"{path}: video track truncated or corrupt: it stops at {_reached(times, fps):.2f} s{of} ({one_line(error)})"
            ) from None
        if frames:
            check_complete(path, "video", _reached(times, fps), declared_seconds(container, stream))
    if not frames:
        raise MediaError(f"{path}: the video track holds no frames")
    stamps = np.asarray(times, dtype=np.float64) - times[0]
    if len(stamps) > 1 and not np.all(np.diff(stamps) > 0):  # missing or broken timestamps
        fps = frame_rate(stream.guessed_rate or stream.base_rate, path)
        stamps = np.arange(len(frames)) / fps
    return Video(np.stack(frames), stamps, fps)


def has_audio_track(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a sound file or a container with an audio stream."""
    import av
    import soundfile

    try:
        soundfile.info(str(path))
        return True
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        pass
    try:
        with av.open(str(path)) as container:
            return bool(container.streams.audio)
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError):
        return False
