"""Aligning one clip's media to the step time base.

Step ``i`` is centred at ``step_times(T)[i]``; it pairs the audio window centred there
(a 96 × 64 log-mel patch) with the face crop(s) of the video frame(s) nearest that time.
:func:`clip_steps` decodes a clip and returns both, or raises :class:`MediaError` with the
one-line reason the clip cannot be used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from avemotion.encoders.datasets import Item
from avemotion.encoders.face import FaceConfig, FaceTracker, load_cascade, nearest_frames
from avemotion.encoders.frontend import (
    WINDOW_SAMPLES,
    n_steps,
    step_patches,
    step_times,
    voiced_mask,
)
from avemotion.encoders.media import (
    AUDIO_RATE,
    MediaError,
    check_not_silent,
    load_audio,
    load_video,
)


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


@dataclass
class StepConfig:
    """How a clip is cut into steps."""

    steps_per_second: float = 10.0
    """Steps per second of the time base (the paper uses 10)."""
    face_size: int = 112
    """Side of the face crop, from the visual variant (112 small, 224 MobileNetV2)."""
    frame_pool: int = 1
    """Frames per step: 1 for the nearest frame, 11 for the paper's pooled frames."""
    frame_stride: int = 2
    """Stride between pooled frames."""


def _audio_steps(path: Path, config: StepConfig) -> tuple[torch.Tensor, np.ndarray]:
    audio = load_audio(path)
    check_not_silent(path, audio)
    if n_steps(len(audio), config.steps_per_second) == 0:
        raise MediaError(
            f"{path}: shorter than one step window ({len(audio) / AUDIO_RATE:.2f} s < {WINDOW_SAMPLES / AUDIO_RATE:.3f} s)"
        )
    patches = step_patches(audio, config.steps_per_second)
    return patches, voiced_mask(patches)


def _visual_steps(
    path: Path, count: int | None, config: StepConfig, face: FaceConfig, cascade: object
) -> tuple[np.ndarray, int]:
    video = load_video(path)
    if count is None:
        duration = float(video.times[-1]) + 1.0 / video.fps
        count = n_steps(int(duration * AUDIO_RATE), config.steps_per_second)
        if count == 0:
            raise MediaError(
                f"{path}: shorter than one step window ({duration:.2f} s < {WINDOW_SAMPLES / AUDIO_RATE:.3f} s)"
            )
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
) -> ClipSteps:
    """Decode ``item`` and align its media to the step time base.

    With both modalities the clip has as many steps as the shorter stream allows. Raises
    :class:`MediaError` (no audio track, corrupt, too short, silent, unknown container).
    """
    config = config or StepConfig()
    face = face or FaceConfig()
    patches, voiced = None, None
    if need_audio:
        patches, voiced = _audio_steps(item.audio_path or item.path, config)
    crops, detected = None, 0
    if need_visual:
        count = len(patches) if patches is not None else None
        crops, detected = _visual_steps(
            item.path, count, config, face, cascade if cascade is not None else load_cascade()
        )
    count = len(patches) if patches is not None else len(crops)  # type: ignore[arg-type]
    return ClipSteps(
        item,
        count,
        patches,
        crops,
        detected,
        voiced if voiced is not None else np.ones(count, dtype=bool),
    )
