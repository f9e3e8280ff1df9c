"""What a source yields: :class:`MediaChunk` (audio samples or video frames) and
:class:`Skipped` (a stretch it could not deliver)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class MediaChunk:
    """A piece of a stream: either audio samples or video frames, ending at ``end_s``."""

    end_s: float
    """Stream time reached by this chunk, in seconds (used for real-time pacing)."""
    audio: np.ndarray | None = None
    frames: list[np.ndarray] | None = None
    times: list[float] | None = None
    fps: float | None = None


@dataclass
class Skipped:
    """A stretch of the stream left out (corrupt media, or a turn too short for one step)."""

    start_s: float
    end_s: float
    reason: str
    track: str = "audio"
    """The track the stretch is missing from: ``"audio"`` (the clock moves past it) or
    ``"video"`` (frames left out: the stretch's steps take the nearest frame decoded)."""
