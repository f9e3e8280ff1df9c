"""Cutting a live stream into steps, exactly as extraction cuts a whole clip.

Extraction (:func:`avemotion.encoders.steps.clip_steps`) gives step ``i`` the 16 kHz audio
window ``[i·hop, i·hop + WINDOW_SAMPLES)`` and the video frame(s) nearest its centre time
``step_times(...)[i]``. :class:`StepAligner` buffers media as it arrives and releases step
``i`` as soon as everything it needs has arrived, so that however the media is chunked the
steps come out the same:

- audio: the whole window has arrived (``WINDOW_SAMPLES``, the samples of one log-mel patch);
- video: a frame at or after the centre time has arrived (so the nearest frame is known;
  with pooled frames, the last frame of the pool too), or the video has ended;
- video alone: the step exists, i.e. the video has reached the end of the step's window
  (``int((last frame time + 1 / fps) · 16000) >= i·hop + WINDOW_SAMPLES``, as extraction
  counts the steps of a silent clip).

With audio the number of steps is set by the audio, except that when the stream ends with
the video shorter than the audio, the steps whose centre lies past the video's last frame
(its time plus one frame duration) are cut, as extraction cuts them
(:func:`~avemotion.encoders.steps.clip_steps`): they would only pair their audio with the
last frame again. :attr:`StepAligner.cut_steps` and a warning say how many. Video times
are taken relative to the first frame, as :func:`avemotion.encoders.media.load_video` does.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from avemotion.encoders.face import nearest_frames
from avemotion.encoders.frontend import (
    WINDOW_SAMPLES,
    n_steps,
    step_hop,
    step_times,
)
from avemotion.encoders.media import AUDIO_RATE, FALLBACK_FPS
from avemotion.store import STEPS_PER_SECOND


class StreamError(ValueError):
    """Bad or broken stream input; the message names the field (or file) and the reason."""


@dataclass
class StepMedia:
    """The media of one step: its index, centre time, audio window and pooled frames."""

    index: int
    time_s: float
    window: np.ndarray | None
    """``WINDOW_SAMPLES`` float32 samples at 16 kHz, or ``None`` without audio."""
    frames: list[tuple[int, np.ndarray]] | None
    """``(frame index, RGB frame)`` pairs of the step's pool, or ``None`` without video."""


class _Growing:
    """An append-only float64 array with amortised O(1) appends."""

    def __init__(self) -> None:
        self.data = np.zeros(256, dtype=np.float64)
        self.size = 0

    def extend(self, values: np.ndarray) -> None:
        need = self.size + len(values)
        if need > len(self.data):
            grown = np.zeros(max(need, 2 * len(self.data)), dtype=np.float64)
            grown[: self.size] = self.data[: self.size]
            self.data = grown
        self.data[self.size : need] = values
        self.size = need

    @property
    def view(self) -> np.ndarray:
        return self.data[: self.size]


class StepAligner:
    """Buffers audio samples and video frames and releases complete steps in order."""

    def __init__(
        self,
        need_audio: bool,
        need_video: bool,
        steps_per_second: float = STEPS_PER_SECOND,
        frame_pool: int = 1,
        frame_stride: int = 2,
    ) -> None:
        if not (need_audio or need_video):
            raise ValueError("modality: the stream needs audio, video or both")
        self.need_audio, self.need_video = need_audio, need_video
        self.steps_per_second = float(steps_per_second)
        self.hop = step_hop(steps_per_second)
        self.frame_pool, self.frame_stride = int(frame_pool), int(frame_stride)
        self.reset()

    def reset(self) -> None:
        """Forget all buffered media (start of a new stream)."""
        self._audio = np.zeros(0, dtype=np.float32)
        self._audio_origin = 0  # absolute index of self._audio[0]
        self._audio_total = 0
        self._times = _Growing()
        self._frames: dict[int, np.ndarray] = {}
        self._first_time: float | None = None
        self.fps: float | None = None
        self._fps_warned = False
        self.next_step = 0
        self.ended = False
        self.cut_steps = 0
        """Steps the audio holds past the video's end, left out when the stream ended."""

    # ------------------------------------------------------------------ input
    @property
    def audio_seconds(self) -> float:
        """Audio received so far, in seconds."""
        return self._audio_total / AUDIO_RATE

    @property
    def video_frames(self) -> int:
        """Video frames received so far."""
        return self._times.size

    def add_audio(self, samples: np.ndarray) -> None:
        """Append 16 kHz mono float samples (validated before anything is buffered)."""
        if not self.need_audio:
            raise StreamError("audio: this recognizer's encoder has no audio part")
        if self.ended:
            raise StreamError("audio: the stream has ended; call reset() to start a new one")
        samples = np.asarray(samples)
        if samples.ndim != 1 or not np.issubdtype(samples.dtype, np.floating):
            raise StreamError(
                f"audio: expected a 1-D float array of 16 kHz mono samples, got {samples.dtype} {samples.shape}"
            )
        if not np.isfinite(samples).all():
            raise StreamError(f"audio: NaN or inf samples after {self.audio_seconds:.3f} s")
        self._audio = np.concatenate([self._audio, samples.astype(np.float32, copy=False)])
        self._audio_total += len(samples)

    def add_video(
        self,
        frames: Sequence[np.ndarray] | np.ndarray,
        times: Sequence[float] | np.ndarray,
        fps: float | None = None,
    ) -> None:
        """Append RGB uint8 frames ``[H, W, 3]`` with their times in seconds (increasing)."""
        if not self.need_video:
            raise StreamError("video: this recognizer's encoder has no visual part")
        if self.ended:
            raise StreamError("video: the stream has ended; call reset() to start a new one")
        times = np.asarray(times, dtype=np.float64).reshape(-1)
        if len(frames) != len(times):
            raise StreamError(f"video: {len(frames)} frames but {len(times)} times")
        if not np.isfinite(times).all():
            raise StreamError("video: NaN or inf frame times")
        checked = []
        for k, frame in enumerate(frames):
            frame = np.asarray(frame)
            if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
                raise StreamError(
                    f"video: frame {self.video_frames + k}: expected uint8 RGB [H, W, 3], got {frame.dtype} {frame.shape}"
                )
            checked.append(frame)
        if fps is not None and not fps > 0:
            raise StreamError(f"video: fps: expected > 0, got {fps}")
        if len(times) == 0:
            return
        first = self._first_time if self._first_time is not None else float(times[0])
        relative = times - first
        previous = self._times.view[-1] if self._times.size else -np.inf
        if relative[0] <= previous or (np.diff(relative) <= 0).any():
            raise StreamError(
                f"video: frame times must increase (frame {self.video_frames} at {times[0]:.3f} s)"
            )
        self._first_time = first
        if fps is not None:
            self.fps = float(fps)
        start = self._times.size
        self._times.extend(relative)
        for k, frame in enumerate(checked):
            self._frames[start + k] = frame

    def end(self) -> None:
        """Mark the end of the stream: steps waiting for more video are released clamped."""
        self.ended = True

    # ------------------------------------------------------------------ output
    def _frame_duration(self) -> float:
        if self.fps is not None:
            return 1.0 / self.fps
        times = self._times.view
        if len(times) > 1:
            return float(np.median(np.diff(times)))
        if not self._fps_warned:  # asked at every step check: say it once per stream
            self._fps_warned = True
            warnings.warn(
                f"video: no frame rate given and a single frame: assuming {FALLBACK_FPS:g} fps",
                stacklevel=2,
            )
        return 1.0 / FALLBACK_FPS

    def _video_seconds(self) -> float:
        """Where the video's last frame stops showing, relative to its first frame."""
        return float(self._times.view[-1]) + self._frame_duration()

    def _step_exists(self, i: int) -> bool:
        window_end = i * self.hop + WINDOW_SAMPLES
        if self.need_audio:
            return self._audio_total >= window_end
        if not self._times.size:
            return False
        return int(self._video_seconds() * AUDIO_RATE) >= window_end

    def _past_the_video(self, i: int, time_s: float) -> bool:
        """Whether the ended stream's step ``i`` lies past a shorter video (and is cut)."""
        if not (self.ended and self.need_audio and self.need_video and self._times.size):
            return False
        video_seconds = self._video_seconds()
        if time_s < video_seconds:
            return False
        if not self.cut_steps:  # said once, when the first step is cut
            self.cut_steps = n_steps(self._audio_total, self.steps_per_second) - i
            seconds = self.cut_steps * self.hop / AUDIO_RATE
            warnings.warn(
                f"video: ends at {video_seconds:.2f} s, before the audio: the last "
                f"{self.cut_steps} step(s) ({seconds:.2f} s) are left out",
                stacklevel=3,
            )
        return True

    def _pool(self, time_s: float) -> np.ndarray | None:
        """Frame indices of the step at ``time_s``, or ``None`` while they are not known."""
        times = self._times.view
        if not len(times):
            if self.ended:
                raise StreamError("video: the stream ended without a single video frame")
            return None
        if not self.ended and times[-1] < time_s:
            return None  # the nearest frame may still be coming
        row = nearest_frames(times, np.array([time_s]), self.frame_pool, self.frame_stride)[0]
        centre = int(row[len(row) // 2])
        if not self.ended and centre + (self.frame_pool // 2) * self.frame_stride > len(times) - 1:
            return None  # the end of the pool has not arrived
        return row

    def upcoming_frames(
        self, start: int, limit: int = 32
    ) -> Iterator[tuple[int, list[tuple[int, np.ndarray]]]]:
        """``(step, frames)`` of steps from ``start`` whose frames are already known though
        the step may not be complete yet (its audio still arriving), in step order."""
        if not self.need_video:
            return
        for i in range(max(start, self.next_step), max(start, self.next_step) + limit):
            pool = self._pool(float(step_times(i + 1, self.steps_per_second)[i]))
            if pool is None:
                return
            yield i, [(int(f), self._frames[int(f)]) for f in pool]

    def steps(self) -> Iterator[StepMedia]:
        """Release every step whose media is complete, in order."""
        while self._step_exists(self.next_step):
            i = self.next_step
            time_s = float(step_times(i + 1, self.steps_per_second)[i])
            if self._past_the_video(i, time_s):
                return
            pool = self._pool(time_s) if self.need_video else None
            if self.need_video and pool is None:
                return
            window = None
            if self.need_audio:
                start = i * self.hop - self._audio_origin
                window = self._audio[start : start + WINDOW_SAMPLES].copy()
            frames = [(int(f), self._frames[int(f)]) for f in pool] if pool is not None else None
            self.next_step += 1
            self._forget(pool)
            yield StepMedia(i, time_s, window, frames)

    def _forget(self, pool: np.ndarray | None) -> None:
        """Drop media no later step can use."""
        if self.need_audio:
            keep_from = self.next_step * self.hop - self._audio_origin
            if keep_from > 0:
                self._audio = self._audio[keep_from:]
                self._audio_origin += keep_from
        if pool is not None:
            oldest = int(pool.min())
            for index in [k for k in self._frames if k < oldest]:
                del self._frames[index]
