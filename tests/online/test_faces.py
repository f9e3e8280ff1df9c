"""Face crops of a stream's steps (:mod:`avemotion.online.faces`).

:class:`FaceCropper` with a fake cascade that finds the one bright square of a tiny frame,
so every box and crop is exact: crops follow the tracker in request order, each frame is
tracked once, looking ahead replays the same crops as sequential tracking, and ``cancel``
and ``reset`` drop what they should.

Frames are 24 × 24 and black but for an 8 × 8 square; the tracker smooths its box with
weight 0.5, crops with no margin and resizes 8 × 8 to 8 × 8 (unchanged), so a crop is the
frame cut at the smoothed box.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from avemotion.encoders.face import FaceConfig
from avemotion.online import faces
from avemotion.online.faces import FaceCropper

CONFIG = FaceConfig(smoothing=0.5, margin=0.0)


class BrightSquare:
    """A cascade stand-in: the bounding box ``[x, y, w, h]`` of the brightest pixels of the
    (equalised grey) frame, or no face when the frame is uniform. Calls go to ``log``."""

    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name

    def detectMultiScale(self, gray: np.ndarray, **kwargs: Any) -> Any:  # noqa: N802 - OpenCV's name
        self.log.append(self.name)
        if gray.min() == gray.max():
            return ()
        ys, xs = np.nonzero(gray == gray.max())
        x, y = int(xs.min()), int(ys.min())
        return np.array([[x, y, int(xs.max()) - x + 1, int(ys.max()) - y + 1]])


def frame(x: int, y: int, value: int) -> np.ndarray:
    """A 24 × 24 black frame with an 8 × 8 square of ``value`` at ``(x, y)``."""
    rgb = np.zeros((24, 24, 3), dtype=np.uint8)
    rgb[y : y + 8, x : x + 8] = value
    return rgb


def crop(value: int, rows: slice, cols: slice) -> np.ndarray:
    """An 8 × 8 black crop with ``value`` over ``rows × cols``."""
    out = np.zeros((8, 8, 3), dtype=np.uint8)
    out[rows, cols] = value
    return out


A, B, C, D = frame(0, 0, 100), frame(8, 8, 110), frame(16, 16, 120), frame(8, 0, 130)
# Tracked in the order A, B, C (box_t = 0.5 · face_t + 0.5 · box_{t-1}):
# A: face [0, 0, 8, 8]                                     -> crop A[0:8, 0:8]: all 100
# B: face [8, 8, 8, 8],   box 0.5 [8, 8] + 0.5 [0, 0] = [4, 4]    -> crop B[4:12, 4:12]:
#    the square's rows and columns 8..11 fall on the crop's 4..7
# C: face [16, 16, 8, 8], box 0.5 [16, 16] + 0.5 [4, 4] = [10, 10] -> crop C[10:18, 10:18]:
#    the square's 16..17 fall on the crop's 6..7
CROP_A = crop(100, slice(0, 8), slice(0, 8))
CROP_B = crop(110, slice(4, 8), slice(4, 8))
CROP_C = crop(120, slice(6, 8), slice(6, 8))


@pytest.fixture
def log(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Who searched: ``main`` (the cascade passed in) or ``worker`` (a look-ahead thread's
    own detector, which ``load_detector`` makes when given none)."""
    calls: list[str] = []

    def load_detector(config: FaceConfig, cascade: object | None = None) -> object:
        return cascade if cascade is not None else BrightSquare(calls, "worker")

    monkeypatch.setattr(faces, "load_detector", load_detector)
    return calls


@pytest.fixture
def cropper(log: list[str]) -> Iterator[Callable[..., FaceCropper]]:
    """``cropper(lookahead, workers=2)``: a FaceCropper on the fake cascade, closed after."""
    made: list[FaceCropper] = []

    def make(lookahead: bool, workers: int = 2) -> FaceCropper:
        made.append(FaceCropper(8, CONFIG, BrightSquare(log, "main"), lookahead, workers))
        return made[-1]

    yield make
    for one in made:
        one.close()


@pytest.mark.parametrize("lookahead", [False, True])
def test_crops_follow_the_smoothed_box_by_hand(
    cropper: Callable[..., FaceCropper], log: list[str], lookahead: bool
) -> None:
    """One frame per step, A then B then C: the crops and the final box [10, 10, 8, 8] of
    the module's header comment; looking ahead, the workers search and the main cascade
    is never called (the tracker replays the workers' answers)."""
    faces_ = cropper(lookahead)
    for index, (rgb, want) in enumerate([(A, CROP_A), (B, CROP_B), (C, CROP_C)]):
        got = faces_.crops([(index, rgb)])
        assert got.shape == (1, 8, 8, 3)
        np.testing.assert_array_equal(got[0], want)
    np.testing.assert_array_equal(faces_.tracker.box, [10, 10, 8, 8])
    assert faces_.tracker.frames == 3 and faces_.tracker.detections == 3
    assert log == ["worker" if lookahead else "main"] * 3


@pytest.mark.parametrize("lookahead", [False, True])
def test_a_frame_shared_by_two_steps_is_tracked_once(
    cropper: Callable[..., FaceCropper], log: list[str], lookahead: bool
) -> None:
    """Steps pooling frames (0, 1) and (1, 2): frame 1 is tracked once, so the box goes
    A, B, C as with one frame a step (tracking B twice would move it to
    0.5 [8, 8] + 0.5 [4, 4] = [6, 6] before C), and both steps get B's one crop."""
    faces_ = cropper(lookahead)
    first = faces_.crops([(0, A), (1, B)])
    second = faces_.crops([(1, B), (2, C)])
    np.testing.assert_array_equal(first, [CROP_A, CROP_B])
    np.testing.assert_array_equal(second, [CROP_B, CROP_C])
    assert faces_.tracker.frames == 3 and len(log) == 3


def test_frames_are_tracked_in_request_order_not_crop_order(
    cropper: Callable[..., FaceCropper],
) -> None:
    """Steps 0, 1, 2 requested, then step 2's crop asked first: A and B are tracked before
    C (crop C[10:18, 10:18], not C alone's C[16:24, 16:24] = all 120), and step 0's crop
    is then served from what was tracked."""
    faces_ = cropper(False)
    for index, rgb in enumerate([A, B, C]):
        faces_.request([(index, rgb)])
    assert faces_.tracker.frames == 0  # requesting tracks nothing yet
    np.testing.assert_array_equal(faces_.crops([(2, C)])[0], CROP_C)
    np.testing.assert_array_equal(faces_.crops([(0, A)])[0], CROP_A)
    assert faces_.tracker.frames == 3


def test_lookahead_replays_the_crops_of_sequential_tracking(
    cropper: Callable[..., FaceCropper], log: list[str]
) -> None:
    """Twenty random frames (squares anywhere, a third of the frames blank: the tracker
    holds its box, then falls back to the centre crop), steps pooling 3 frames at stride 2
    and requested 3 steps ahead: every crop and the tracker's counts are the same with
    and without looking ahead, and each frame is searched exactly once either way."""
    rng = np.random.default_rng(7)
    frames = []
    for _ in range(20):
        if rng.random() < 1 / 3:
            frames.append(np.full((24, 24, 3), 50, dtype=np.uint8))
        else:
            x, y = (int(v) for v in rng.integers(0, 17, size=2))
            frames.append(frame(x, y, int(rng.integers(60, 255))))
    steps = [[(i, frames[i]) for i in range(s, s + 3)] for s in range(0, 18, 2)]
    results = {}
    for lookahead in (False, True):
        faces_ = cropper(lookahead)
        crops = []
        for s, step in enumerate(steps):
            for ahead in steps[s + 1 : s + 4]:
                faces_.request(ahead)
            crops.append(faces_.crops(step))
        tracker = faces_.tracker
        results[lookahead] = (np.stack(crops), tracker.frames, tracker.detections)
    assert results[False][1:] == results[True][1:] == (19, results[False][2])
    assert 0 < results[False][2] < 19  # both paths of the tracker were taken
    np.testing.assert_array_equal(results[True][0], results[False][0])
    assert log.count("main") == 19 and log.count("worker") == 19


@pytest.mark.parametrize("lookahead", [False, True])
def test_cancel_drops_queued_frames_but_keeps_the_tracker(
    cropper: Callable[..., FaceCropper], lookahead: bool
) -> None:
    """After A, steps B and C are requested, then cancelled (the agent answered): the next
    crop, D, follows A's box: 0.5 [8, 0] + 0.5 [0, 0] = [4, 0] -> D[0:8, 4:12], whose
    columns 8..11 are the square (B and C tracked first would give box [9, 5]).
    A cancelled frame asked for again is tracked then: B after D's box [4, 0] has box
    0.5 [8, 8] + 0.5 [4, 0] = [6, 4] -> B[4:12, 6:14], the square on rows 4..7, cols 2..7."""
    faces_ = cropper(lookahead)
    faces_.crops([(0, A)])
    faces_.request([(1, B)])
    faces_.request([(2, C)])
    faces_.cancel()
    np.testing.assert_array_equal(faces_.crops([(3, D)])[0], crop(130, slice(0, 8), slice(4, 8)))
    assert faces_.tracker.frames == 2
    np.testing.assert_array_equal(faces_.crops([(1, B)])[0], crop(110, slice(4, 8), slice(2, 8)))
    assert faces_.tracker.frames == 3


def test_cancel_cancels_queued_searches_and_waits_for_the_running_one(
    cropper: Callable[..., FaceCropper], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One worker, three frames looked ahead, the first search held running: ``cancel``
    cancels the two queued searches at once, then waits until the running one ends."""
    running, release = threading.Event(), threading.Event()
    searched: list[int] = []

    class Held:
        def detectMultiScale(self, gray: np.ndarray, **kwargs: Any) -> Any:  # noqa: N802
            searched.append(1)
            running.set()
            assert release.wait(60), "the test never released the search"
            return ()

    monkeypatch.setattr(faces, "load_detector", lambda config, cascade=None: cascade or Held())
    faces_ = cropper(True, workers=1)
    faces_.request([(0, A), (1, B), (2, C)])
    searches = list(faces_._searches.values())
    assert running.wait(60)
    cancelling = threading.Thread(target=faces_.cancel)
    cancelling.start()
    try:
        for queued in searches[1:]:
            for _ in range(600):  # cancelled as soon as cancel() runs
                if queued.cancelled():
                    break
                threading.Event().wait(0.05)
            assert queued.cancelled()
        cancelling.join(0.3)
        assert cancelling.is_alive()  # still waiting for the search held running
        assert not searches[0].done()
    finally:
        release.set()
        cancelling.join(60)
    assert not cancelling.is_alive() and searches[0].done() and not searches[0].cancelled()
    faces_.close()
    assert len(searched) == 1  # the queued searches never ran


def test_reset_starts_a_new_stream(cropper: Callable[..., FaceCropper]) -> None:
    """After A and B, a reset: a new tracker (no box, no frames) and no crop kept, so a
    new stream's frame 0, B, is tracked afresh: box [8, 8, 8, 8], crop B[8:16, 8:16],
    all 110 (not A's crop kept under index 0, nor B smoothed towards A's box)."""
    faces_ = cropper(False)
    faces_.crops([(0, A)])
    faces_.crops([(1, B)])
    faces_.reset()
    assert faces_.tracker.box is None and faces_.tracker.frames == 0
    np.testing.assert_array_equal(faces_.crops([(0, B)])[0], np.full((8, 8, 3), 110))
    assert faces_.tracker.frames == 1


def test_frames_more_than_64_before_the_oldest_needed_are_forgotten(
    cropper: Callable[..., FaceCropper],
) -> None:
    """A step needing frame 64 keeps frames from 64 - 64 = 0 on: frame 0 is served again
    without tracking; one needing frame 65 keeps from 1 on, so frame 0 is tracked anew."""
    faces_ = cropper(False)
    faces_.crops([(0, A)])
    faces_.crops([(64, B)])
    np.testing.assert_array_equal(faces_.crops([(0, A)])[0], CROP_A)
    assert faces_.tracker.frames == 2
    faces_.crops([(65, C)])
    faces_.crops([(0, A)])
    assert faces_.tracker.frames == 4


@pytest.mark.parametrize("lookahead", [False, True])
def test_a_frame_that_is_not_rgb_is_refused(
    cropper: Callable[..., FaceCropper], lookahead: bool
) -> None:
    """With or without look-ahead, one ValueError naming the frame, before any search."""
    faces_ = cropper(lookahead)
    with pytest.raises(ValueError, match=r"frame 0: expected an RGB \[H, W, 3\] array"):
        faces_.crops([(0, np.zeros((24, 24), dtype=np.uint8))])
    assert faces_.tracker.frames == 0 and not faces_._searches
