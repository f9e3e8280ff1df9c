"""A container's tracks for a turn stream, with its damaged stretches named and skipped.

Streaming one clip (:func:`~avemotion.online.sources.file_chunks`) stops at a container's
first decoding error. A turn stream goes on: :func:`container_stretches` leaves out what
fails and yields a :class:`~avemotion.online.turns.Skipped` naming each stretch lost, in
stream time (the audio's sample clock, from 0):

- audio packets that fail to decode (the audio decoders run with ``err_detect=crccheck+
  explode``, so FLAC frames with a bad checksum fail instead of being played as noise):
  from the end of the last good audio to the next good frame's timestamp;
- audio timestamps that jump more than :data:`GAP_S` past the sample clock (packets the
  demuxer dropped without an error: an Ogg page with a bad checksum, a Matroska cluster
  it resynchronised past): that stretch; the clock moves on by it, so later turns keep
  their true times. Frames without a timestamp continue from the sample clock;
- video packets that fail to decode (``track="video"``): the frames are left out and the
  steps of the stretch take the nearest frame decoded; video timestamps are not checked
  for jumps (a variable frame rate has legitimate ones);
- a track that ends before its declared duration: its missing end.

Damage that FFmpeg conceals without an error or a timestamp jump cannot be seen, and is
played as decoded: corrupt Opus or MP3 payloads (no checksums), corrupt PCM samples. A
container whose demuxer itself fails ends the stream with :class:`MediaError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from avemotion.encoders.media import (
    AUDIO_RATE,
    TRUNCATION_TOLERANCE_S,
    MediaError,
    declared_seconds,
    one_line,
    rgb_reformatter,
)
from avemotion.online.chunks import MediaChunk, Skipped
from avemotion.online.sources import open_container, open_tracks

GAP_S = 0.1
"""An audio timestamp this far (one step) or more past the sample clock marks a lost stretch."""
ERROR_DETECTION = {"err_detect": "crccheck+explode"}
"""Audio decoder options: check checksums, and fail a frame instead of concealing it."""


def _time(frame: Any, packet: Any) -> float | None:
    """A frame's container time in seconds (its packet's when it has none), or ``None``."""
    if frame.time is not None:
        return float(frame.time)
    if packet.pts is not None and packet.time_base is not None:
        return float(packet.pts * packet.time_base)
    return None


class AudioClock:
    """The audio of one track as 16 kHz chunks on a sample clock, with a :class:`Skipped`
    for each stretch that failed to decode or that its timestamps jump over."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seconds = 0.0
        """Stream time reached by the audio decoded (skipped stretches included)."""
        self.origin: float | None = None  # the container time of stream time 0
        self.broken: tuple[float, str] | None = None  # (start, reason) of a failing stretch
        self._resampler = self._new_resampler()

    @staticmethod
    def _new_resampler() -> Any:
        import av

        return av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)

    def failed(self, error: BaseException) -> None:
        """A packet did not decode: a stretch is lost from the last good audio on."""
        if self.broken is None:
            self.broken = (self.seconds, one_line(error))

    def frame(self, frame: Any, at: float | None) -> Iterator[MediaChunk | Skipped]:
        """The chunk of a decoded ``frame`` at container time ``at``, after a
        :class:`Skipped` for the stretch lost before it, if any."""
        if at is not None:
            if self.origin is None:
                self.origin = at - self.seconds
            at -= self.origin
        if self.broken is not None:
            start, reason = self.broken
            yield from self._gap(start, max(start, at if at is not None else start), reason)
        elif at is not None and at - self.seconds >= GAP_S:
            reason = f"timestamps jump from {self.seconds:.2f} to {at:.2f} s, audio missing"
            yield from self._gap(self.seconds, at, reason)
        self.seconds += frame.samples / frame.sample_rate
        yield from self._chunk(self._resampler.resample(frame))

    def end(self, declared: float | None) -> Iterator[MediaChunk | Skipped]:
        """The last samples, and the end of the track that failed or is missing."""
        yield from self._chunk(self._resampler.resample(None))
        if self.broken is not None:
            start, reason = self.broken
            yield Skipped(
                start, max(start, declared or start), f"{self.path}: corrupt audio ({reason})"
            )
        elif declared is not None and self.seconds < declared - TRUNCATION_TOLERANCE_S:
            reason = f"audio track truncated: it stops at {self.seconds:.2f} s of {declared:.2f} s"
            yield Skipped(self.seconds, declared, f"{self.path}: {reason}")

    def _gap(self, start: float, end: float, reason: str) -> Iterator[MediaChunk | Skipped]:
        """The samples held before the gap, the gap, and a fresh resampler after it."""
        yield from self._chunk(self._resampler.resample(None))
        self._resampler = self._new_resampler()
        self.broken = None
        self.seconds = end
        yield Skipped(start, end, f"{self.path}: corrupt audio ({reason})")

    def _chunk(self, frames: list[Any]) -> Iterator[MediaChunk]:
        if frames:
            samples = np.concatenate([out.to_ndarray().reshape(-1) for out in frames])
            if len(samples):
                yield MediaChunk(self.seconds, audio=samples.astype(np.float32, copy=False))


class VideoClock:
    """The frames of one video track, shrunk as extraction shrinks them, with a
    :class:`Skipped` (``track="video"``) for each stretch of frames that failed to decode."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        self.path, self.fps, self.size = path, fps, size
        self.frames, self.reached = 0, 0.0
        self.broken: tuple[float, str] | None = None
        self._reformat = rgb_reformatter()

    def failed(self, error: BaseException) -> None:
        if self.broken is None:
            self.broken = (self.reached, one_line(error))

    def frame(self, frame: Any) -> Iterator[MediaChunk | Skipped]:
        at = float(frame.time) if frame.time is not None else self.frames / self.fps
        if self.broken is not None:
            start, reason = self.broken
            self.broken = None
            yield Skipped(start, max(start, at), f"{self.path}: corrupt video ({reason})", "video")
        self.frames += 1
        self.reached = at + 1.0 / self.fps
        image = self._reformat(frame, self.size)
        yield MediaChunk(self.reached, frames=[image], times=[at], fps=self.fps)

    def end(self, declared: float | None) -> Iterator[Skipped]:
        if self.broken is not None:
            start, reason = self.broken
            end = max(start, declared or start)
            yield Skipped(start, end, f"{self.path}: corrupt video ({reason})", "video")
        elif declared is not None and self.reached < declared - TRUNCATION_TOLERANCE_S:
            reason = f"video track truncated: it stops at {self.reached:.2f} s of {declared:.2f} s"
            yield Skipped(self.reached, declared, f"{self.path}: {reason}", "video")


def container_stretches(
    path: Path, want_video: bool, want_audio: bool
) -> Iterator[MediaChunk | Skipped]:
    """The video and/or audio track of one container in file order, damaged stretches
    named and left out (see the module docstring for what is detected)."""
    import av

    container = open_container(path)
    with container:
        tracks = open_tracks(container, path, want_video, want_audio)
        clocks: dict[Any, AudioClock | VideoClock] = {}
        if tracks.video is not None:
            clocks[tracks.video] = VideoClock(path, tracks.fps, tracks.size)
        if tracks.audio is not None:
            tracks.audio.codec_context.options = dict(ERROR_DETECTION)
            clocks[tracks.audio] = AudioClock(path)
        packets = container.demux(list(clocks))
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except (av.error.FFmpegError, ValueError) as error:
                raise MediaError(f"{path}: cannot read on ({one_line(error)})") from None
            clock = clocks[packet.stream]
            try:
                frames = packet.decode()
            except (av.error.FFmpegError, ValueError) as error:
                clock.failed(error)
                continue
            for frame in frames:
                if isinstance(clock, AudioClock):
                    yield from clock.frame(frame, _time(frame, packet))
                else:
                    yield from clock.frame(frame)
        for stream, clock in clocks.items():
            yield from clock.end(declared_seconds(container, stream))
