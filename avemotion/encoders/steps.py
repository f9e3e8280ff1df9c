"""Aligning one clip's media to the step time base.

Step ``i`` is centred at ``step_times(T)[i]``; it pairs the audio window centred there
(a 96 × 64 log-mel patch) with the face crop(s) of the video frame(s) nearest that time.
:func:`clip_steps` decodes a clip and returns both, or raises :class:`MediaError` with the
one-line reason the clip cannot be used.

With both modalities a step needs a video frame on screen at its centre time: when the
video track ends before the audio does (a separate, shorter video file), the steps past its
end are cut, not given the last frame again; :attr:`ClipSteps.cut_steps` and a warning
naming the file say how many. A video track cut short of its own declared duration is
refused (:func:`~avemotion.encoders.media.load_video`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avemotion.encoders.datasets import Item
from avemotion.encoders.face import FaceConfig, FaceTracker, load_cascade, nearest_frames
from avemotion.encoders.frontend import (
    WINDOW_SAMPLES,
    n_steps,
    step_hop,
    step_patches,
    step_times,
    voiced_mask,
)
from avemotion.encoders.media import (
    AUDIO_RATE,
    MediaError,
    Video,
    check_not_silent,
    load_audio,
    load_video,
)
from avemotion.encoders.whisper_branch import WhisperFeatures, WhisperSteps
from avemotion.store import STEPS_PER_SECOND


@dataclass
class ClipSteps:
    """A clip on the step time base: ``patches`` ``[T, 96, 64]`` (audio), ``crops``
    ``[T, S, S, 3]`` or ``[T, P, S, S, 3]`` uint8 (visual), face detections, and which
    steps carry speech (``voiced``; all true without audio)."""

    item: Item
    n_steps: int
    patches: torch.Tensor | None
    crops: np.ndarray | None
    faces_detected: int
    voiced: np.ndarray
    cut_steps: int = 0
    """Steps the audio holds but the video does not reach, left out (see the module doc)."""
    cut_seconds: float = 0.0
    """The audio those steps would have covered past the last kept step, in seconds."""
    whisper: WhisperSteps | None = None
    """The Whisper branch's per-step input, when the encoder's audio part is Whisper."""

    def audio_rows(self, steps: Any = slice(None)) -> torch.Tensor:
        """What the audio branch reads at ``steps``: the Whisper statistics when it is
        Whisper, else the log-mel patches."""
        if self.whisper is not None:
            return self.whisper.rows(steps)
        assert self.patches is not None
        return self.patches[steps]


@dataclass
class StepConfig:
    """How a clip is cut into steps."""

    steps_per_second: float = STEPS_PER_SECOND
    """Steps per second of the time base (the paper uses 10)."""
    face_size: int = 112
    """Side of the face crop, from the visual variant (112 small, 224 MobileNetV2)."""
    frame_pool: int = 1
    """Frames per step: 1 for the nearest frame, 11 for the paper's pooled frames."""
    frame_stride: int = 2
    """Stride between pooled frames."""


def _audio_steps(
    path: Path, config: StepConfig, whisper: WhisperFeatures | None = None
) -> tuple[torch.Tensor, np.ndarray, WhisperSteps | None]:
    audio = load_audio(path)
    check_not_silent(path, audio)
    if n_steps(len(audio), config.steps_per_second) == 0:
        raise MediaError(
            f"{path}: shorter than one step window ({len(audio) / AUDIO_RATE:.2f} s < {WINDOW_SAMPLES / AUDIO_RATE:.3f} s)"
        )
    patches = step_patches(audio, config.steps_per_second)
    features = whisper.clip(audio, len(patches)) if whisper is not None else None
    return patches, voiced_mask(patches), features


def _video_steps(path: Path, video: Video, count: int | None, config: StepConfig) -> int:
    """How many steps the video allows: with audio (``count`` steps), those whose centre
    the video reaches; alone, the full step windows within its duration."""
    duration = float(video.times[-1]) + 1.0 / video.fps
    if count is None:
        count = n_steps(int(duration * AUDIO_RATE), config.steps_per_second)
        if count == 0:
            raise MediaError(
                f"{path}: shorter than one step window ({duration:.2f} s < {WINDOW_SAMPLES / AUDIO_RATE:.3f} s)"
            )
        return count
    # Past its last frame's display time the video has no frame for a step: keeping such a
    # step would pair its audio with the last frame again.
    covered = int(np.searchsorted(step_times(count, config.steps_per_second), duration))
    if covered == 0:
        raise MediaError(
            f"{path}: video track ends at {duration:.2f} s, before the first step's centre "
            f"({float(step_times(1, config.steps_per_second)[0]):.3f} s)"
        )
    return covered


def _visual_steps(
    path: Path, count: int | None, config: StepConfig, face: FaceConfig, cascade: object
) -> tuple[np.ndarray, int]:
    video = load_video(path)
    count = _video_steps(path, video, count, config)
    times = step_times(count, config.steps_per_second)
    index = nearest_frames(video.times, times, config.frame_pool, config.frame_stride)
    tracker = FaceTracker(config.face_size, face, cascade)  # type: ignore[arg-type]
    crops: dict[int, np.ndarray] = {}
    detected_steps = 0
    for row in index:
        for frame in row:
            if int(frame) not in crops:
                crop, found = tracker(video.frames[int(frame)])
                crops[int(frame)] = crop
                if found and frame == row[len(row) // 2]:
                    detected_steps += 1
    if tracker.detections == 0:
        # Steps without a face fall back to a centre crop, but a clip with no face at all
        # would be encoded from background only: skip it with its reason.
        raise MediaError(f"{path}: no face found in any of its {len(crops)} frames checked")
    stacked = np.stack([np.stack([crops[int(f)] for f in row]) for row in index])
    return (stacked[:, 0] if config.frame_pool == 1 else stacked), detected_steps


def clip_steps(
    item: Item,
    need_audio: bool,
    need_visual: bool,
    config: StepConfig | None = None,
    face: FaceConfig | None = None,
    cascade: object | None = None,
    whisper: WhisperFeatures | None = None,
) -> ClipSteps:
    """Decode ``item`` and align its media to the step time base.

    With both modalities the clip has as many steps as the shorter stream allows: the
    audio's full windows, cut to those whose centre the video reaches (``cut_steps``, with
    a warning naming the file). Raises :class:`MediaError` (no audio track, corrupt or
    truncated, too short, silent, unknown container). With ``whisper``, the audio steps
    also carry the Whisper branch's input (:class:`WhisperSteps`).
    """
    config = config or StepConfig()
    face = face or FaceConfig()
    patches, voiced, features = None, None, None
    if need_audio:
        patches, voiced, features = _audio_steps(item.audio_path or item.path, config, whisper)
    crops, detected, cut = None, 0, 0
    if need_visual:
        count = len(patches) if patches is not None else None
        crops, detected = _visual_steps(
            item.path, count, config, face, cascade if cascade is not None else load_cascade()
        )
        if patches is not None and voiced is not None and len(crops) < len(patches):
            cut = len(patches) - len(crops)
            patches, voiced = patches[: len(crops)], voiced[: len(crops)]
            if features is not None:
                features.index = features.index[: len(crops)]
    count = len(patches) if patches is not None else len(crops)  # type: ignore[arg-type]
    cut_seconds = cut * step_hop(config.steps_per_second) / AUDIO_RATE
    if cut:
        audio = f" ({item.audio_path})" if item.audio_path is not None else ""
        warnings.warn(
            f"{item.path}: the video track ends before the audio{audio}: "
            f"its last {cut} step(s) ({cut_seconds:.2f} s) are left out",
            stacklevel=2,
        )
    return ClipSteps(
        item,
        count,
        patches,
        crops,
        detected,
        voiced if voiced is not None else np.ones(count, dtype=bool),
        cut,
        cut_seconds,
        features,
    )
