"""Face detection and cropping with OpenCV's Haar cascade, as the authors' preprocessing.

:class:`FaceTracker` takes one RGB frame at a time: it detects faces with the frontal-face
cascade from ``cv2.data.haarcascades``, keeps the largest, smooths the box across frames
(exponential moving average), crops it with a margin into a square and resizes it to the
model's input size. With no face it holds the last box for a few frames, then falls back to
a centre crop; ``detected`` says whether this frame had a face of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

CASCADE = "haarcascade_frontalface_default.xml"


@dataclass
class FaceConfig:
    """Face detection and cropping settings."""

    scale_factor: float = 1.1
    """Haar cascade image-pyramid step."""
    min_neighbors: int = 5
    """Haar cascade detections needed to keep a face."""
    min_size_fraction: float = 0.2
    """Smallest face side as a fraction of the frame's shorter side."""
    smoothing: float = 0.5
    """Weight of the new detection in the moving average of the box (1 = no smoothing)."""
    margin: float = 0.2
    """Extra border around the detected box, as a fraction of its side."""
    hold: int = 5
    """Frames a lost face's last box is kept before falling back to a centre crop."""
    detector: str = "haar"
    """The face detector: ``haar`` (OpenCV's cascade) only. MTCNN was measured less steady,
    less accurate and 9× slower on MEAD (docs/visual.md), so it is not supported."""

    def __post_init__(self) -> None:
        if self.detector == "mtcnn":
            raise ValueError(
                "face detector: 'mtcnn' is not supported (Haar was steadier, more accurate "
                "and 9x faster on MEAD: docs/visual.md); use 'haar'"
            )
        if self.detector not in DETECTORS:
            raise ValueError(
                f"face detector: expected one of {list(DETECTORS)}, got {self.detector!r}"
            )


DETECTORS = ("haar",)


def load_detector(config: FaceConfig, cascade: object | None = None) -> object:
    """The face detector ``config`` names: the given Haar cascade, or a new one."""
    return load_cascade() if cascade is None else cascade


def load_cascade() -> cv2.CascadeClassifier:
    """OpenCV's bundled frontal-face Haar cascade."""
    path = Path(cv2.data.haarcascades) / CASCADE
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise RuntimeError(f"{path}: OpenCV could not load the Haar cascade")
    return cascade


def largest_face(
    cascade: cv2.CascadeClassifier, rgb: np.ndarray, config: FaceConfig
) -> np.ndarray | None:
    """The largest detected face ``[x, y, w, h]`` in an RGB frame, or ``None`` (the cascade
    searches the equalised grey frame)."""
    side = max(16, int(min(rgb.shape[:2]) * config.min_size_fraction))
    gray = cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    faces = cascade.detectMultiScale(
        gray,
        scaleFactor=config.scale_factor,
        minNeighbors=config.min_neighbors,
        minSize=(side, side),
    )
    if len(faces) == 0:
        return None
    faces = np.asarray(faces, dtype=np.float64)
    return faces[np.argmax(faces[:, 2] * faces[:, 3])]


def centre_box(shape: tuple[int, ...]) -> np.ndarray:
    """The largest centred square of a frame, as ``[x, y, w, h]``."""
    height, width = shape[:2]
    side = min(height, width)
    return np.array([(width - side) / 2, (height - side) / 2, side, side], dtype=np.float64)


def crop_square(rgb: np.ndarray, box: np.ndarray, size: int, margin: float = 0.0) -> np.ndarray:
    """Crop the square around ``box`` grown by ``margin``, padding past the frame's edges
    by replication, and resize to ``size × size`` (uint8 RGB)."""
    x, y, w, h = box
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    x1, y1 = x0 + max(1, int(round(side))), y0 + max(1, int(round(side)))
    height, width = rgb.shape[:2]
    pad = max(0, -x0, -y0, x1 - width, y1 - height)
    if pad:
        rgb = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    patch = rgb[y0:y1, x0:x1]
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)


class FaceTracker:
    """Stateful per-frame face cropper; create one per clip (or per stream)."""

    def __init__(
        self,
        size: int,
        config: FaceConfig | None = None,
        cascade: cv2.CascadeClassifier | None = None,
    ) -> None:
        self.size = size
        self.config = config or FaceConfig()
        self.cascade = load_detector(self.config, cascade)
        self.box: np.ndarray | None = None
        self.missed = 0
        self.frames = 0
        self.detections = 0

    @property
    def detected_fraction(self) -> float:
        """Fraction of the frames seen so far that had a face of their own."""
        return self.detections / self.frames if self.frames else 0.0

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, bool]:
        """Crop the face of one RGB frame: ``(crop [S, S, 3] uint8, detected)``."""
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"frame: expected an RGB [H, W, 3] array, got shape {rgb.shape}")
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        face = largest_face(self.cascade, rgb, self.config)
        self.frames += 1
        if face is not None:
            self.detections += 1
            self.missed = 0
            alpha = self.config.smoothing
            self.box = face if self.box is None else alpha * face + (1.0 - alpha) * self.box
            return crop_square(rgb, self.box, self.size, self.config.margin), True
        self.missed += 1
        if self.box is not None and self.missed <= self.config.hold:
            return crop_square(rgb, self.box, self.size, self.config.margin), False
        self.box = None
        return crop_square(rgb, centre_box(rgb.shape), self.size), False


def nearest_frames(
    frame_times: np.ndarray, step_times: np.ndarray, pool: int = 1, stride: int = 2
) -> np.ndarray:
    """Indices ``[T, pool]`` of the video frames around each step time: the nearest frame,
    or with ``pool = 11, stride = 2`` the paper's 11 frames at stride 2 centred on it
    (clamped to the clip). A step time past the last frame would get the last frame again:
    callers keep step times within the video (:func:`~avemotion.encoders.steps.clip_steps`
    cuts the steps the video does not reach)."""
    nearest = np.searchsorted(frame_times, step_times)
    nearest = np.clip(nearest, 0, len(frame_times) - 1)
    before = np.clip(nearest - 1, 0, len(frame_times) - 1)
    closer = np.abs(frame_times[before] - step_times) <= np.abs(frame_times[nearest] - step_times)
    nearest = np.where(closer, before, nearest)
    offsets = (np.arange(pool) - pool // 2) * stride
    return np.clip(nearest[:, None] + offsets[None, :], 0, len(frame_times) - 1)
