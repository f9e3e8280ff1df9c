"""Face crops of a stream's steps, optionally tracked ahead on a second core.

Extraction tracks the face on each step's frame(s) in step order, each frame once
(:func:`avemotion.encoders.steps.clip_steps`); the tracker smooths its box across frames,
so the order matters. :class:`FaceCropper` keeps that order. With ``lookahead`` it starts
tracking a step's frames in a worker thread as soon as they are known, which in a live
stream is about half a second before the step's audio window is complete: OpenCV releases
the GIL, so face detection overlaps the CNNs of earlier steps on another core and the crop
is usually ready when the step is encoded. Results are identical either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import cv2
import numpy as np

from avemotion.encoders.face import FaceConfig, FaceTracker


class FaceCropper:
    """Crops of video frames in request order, each frame tracked once."""

    def __init__(
        self, size: int, config: FaceConfig, cascade: cv2.CascadeClassifier, lookahead: bool = True
    ) -> None:
        self.size, self.config, self.cascade, self.lookahead = size, config, cascade, lookahead
        self._pool = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="face") if lookahead else None
        )
        self.reset()

    def reset(self) -> None:
        """Drop pending work and start a new tracker (new stream)."""
        self.cancel()
        self.tracker = FaceTracker(self.size, self.config, self.cascade)
        self._crops: dict[int, Future[np.ndarray] | np.ndarray] = {}
        self._newest = -1

    def request(self, frames: Sequence[tuple[int, np.ndarray]]) -> None:
        """Queue one step's ``(index, frame)`` pairs, in order (frames seen before are skipped)."""
        for index, frame in frames:
            if index in self._crops:
                continue
            if self._pool is not None:
                self._crops[index] = self._pool.submit(self._track, frame)
            else:
                self._crops[index] = self._track(frame)
            self._newest = max(self._newest, index)

    def crops(self, frames: Sequence[tuple[int, np.ndarray]]) -> np.ndarray:
        """The ``[P, S, S, 3]`` crops of one step's frames (tracked now if not requested)."""
        self.request(frames)
        out = []
        for index, _ in frames:
            crop = self._crops[index]
            out.append(crop.result() if isinstance(crop, Future) else crop)
        oldest = min(index for index, _ in frames)
        self._crops = {k: v for k, v in self._crops.items() if k >= oldest - 64}
        return np.stack(out)

    def cancel(self) -> None:
        """Cancel queued tracking (the decision is made); wait for the frame in progress."""
        for crop in getattr(self, "_crops", {}).values():
            if isinstance(crop, Future):
                crop.cancel()
        for crop in getattr(self, "_crops", {}).values():
            if isinstance(crop, Future) and not crop.cancelled():
                crop.exception()  # wait; errors surface when the crop is used
        if hasattr(self, "_crops"):
            self._crops = {
                k: v
                for k, v in self._crops.items()
                if not (isinstance(v, Future) and v.cancelled())
            }

    def close(self) -> None:
        self.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def _track(self, frame: np.ndarray) -> np.ndarray:
        crop, _ = self.tracker(frame)
        return crop
