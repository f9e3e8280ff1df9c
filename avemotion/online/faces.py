"""Face crops of a stream's steps, optionally detected ahead on other cores.

Extraction tracks the face on each step's frame(s) in step order, each frame once
(:func:`avemotion.encoders.steps.clip_steps`); the tracker smooths its box across frames,
so the order matters. :class:`FaceCropper` keeps that order and the tracker's own code.

With ``lookahead`` the expensive part, the Haar cascade search of a frame (stateless), starts
on worker threads as soon as a coming step's frames are known, which in a live stream is
about half a second before the step's audio window is complete; OpenCV releases the GIL, so
searches run on other cores while earlier steps go through the CNNs. The tracker then runs
in order on the main thread, its cascade replaced by a stand-in that answers each search
with the result found ahead (:class:`_Replay`), so the crops are identical to sequential
tracking.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import cv2
import numpy as np

from avemotion.encoders.face import FaceConfig, FaceTracker, largest_face, load_detector


class _Record:
    """A cascade that searches with a real one and keeps the raw answer."""

    def __init__(self, cascade: cv2.CascadeClassifier) -> None:
        self.cascade, self.answer = cascade, None

    def detectMultiScale(self, gray: np.ndarray, **kwargs: Any) -> Any:  # noqa: N802 - OpenCV's name
        self.answer = self.cascade.detectMultiScale(gray, **kwargs)
        return self.answer


class _Replay:
    """A cascade stand-in that answers with the search made ahead for the current frame."""

    answer: Any = None

    def detectMultiScale(self, gray: np.ndarray, **kwargs: Any) -> Any:  # noqa: N802 - OpenCV's name
        return self.answer


class FaceCropper:
    """Crops of video frames in request order, each frame tracked once."""

    def __init__(
        self,
        size: int,
        config: FaceConfig,
        cascade: cv2.CascadeClassifier,
        lookahead: bool = True,
        workers: int = 2,
    ) -> None:
        self.size, self.config, self.lookahead = size, config, lookahead
        self.cascade = load_detector(config, cascade)
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="face")
        self._replay = _Replay()
        self.reset()

    def reset(self) -> None:
        """Drop pending work and start a new tracker (new stream)."""
        self.cancel()
        self.tracker = FaceTracker(self.size, self.config, self.cascade)
        self._searches: dict[int, Future[Any]] = {}
        self._order: deque[tuple[int, np.ndarray]] = deque()
        self._crops: dict[int, np.ndarray] = {}
        self._seen: set[int] = set()

    def request(self, frames: Sequence[tuple[int, np.ndarray]]) -> None:
        """Queue one step's ``(index, frame)`` pairs, in order (frames seen before are skipped)."""
        for index, frame in frames:
            if index in self._seen:
                continue
            if np.ndim(frame) != 3 or np.shape(frame)[2] != 3:  # before a worker searches it
                raise ValueError(
                    f"frame {index}: expected an RGB [H, W, 3] array, got shape {np.shape(frame)}"
                )
            self._seen.add(index)
            frame = np.ascontiguousarray(frame, dtype=np.uint8)
            self._order.append((index, frame))
            if self.lookahead:
                self._searches[index] = self._pool.submit(self._search, frame)

    def crops(self, frames: Sequence[tuple[int, np.ndarray]]) -> np.ndarray:
        """The ``[P, S, S, 3]`` crops of one step's frames (tracked now if not requested)."""
        self.request(frames)
        needed = {index for index, _ in frames}
        while not needed <= self._crops.keys():
            index, frame = self._order.popleft()
            search = self._searches.pop(index, None)
            if search is not None:  # searched ahead: the tracker replays that answer
                self._replay.answer = search.result()
                self.tracker.cascade = self._replay  # type: ignore[assignment]
            else:
                self.tracker.cascade = self.cascade
            self._crops[index], _ = self.tracker(frame)
        oldest = min(needed)
        self._crops = {k: v for k, v in self._crops.items() if k >= oldest - 64}
        self._seen = {k for k in self._seen if k >= oldest - 64}
        return np.stack([self._crops[index] for index, _ in frames])

    def cancel(self) -> None:
        """Cancel searches not started (the decision is made); wait for those running."""
        for search in getattr(self, "_searches", {}).values():
            search.cancel()
        for search in getattr(self, "_searches", {}).values():
            if not search.cancelled():
                search.exception()
        if hasattr(self, "_searches"):
            self._searches = {}
            self._order.clear()
            self._seen = set(self._crops)

    def close(self) -> None:
        self.cancel()
        self._pool.shutdown(wait=True)

    def _search(self, frame: np.ndarray) -> Any:
        """The raw detector answer for one frame, computed on a worker with its own detector."""
        cascade = getattr(self._local, "cascade", None)
        if cascade is None:
            cascade = self._local.cascade = load_detector(self.config)
        recorder = _Record(cascade)
        largest_face(recorder, frame, self.config)  # type: ignore[arg-type]
        return recorder.answer
