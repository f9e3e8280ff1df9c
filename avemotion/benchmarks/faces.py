"""Face detectors compared on real clips: OpenCV's Haar cascade against MTCNN.

For every clip of a corpus (MEAD by default) and every step's nearest frame (10 steps/s),
each detector answers on the same frame. Reported per detector:

- ``face_fraction``: frames where it found a face;
- ``jitter``: frame-to-frame movement of the raw box centre, as a fraction of the box side
  (mean over consecutive frames that both had a face; lower is steadier);
- ``zero_shot_accuracy``: whole-clip accuracy of the FER2013 mini-Xception on its crops (the
  tracker's smoothing and margin of the mini-xception variant, mean posterior per clip,
  classes matched by name, contempt not scored);
- ``ms_per_frame``: wall time of one detection, one torch/OpenCV thread (``load_average``
  says how busy the machine was).

The frames are those the encoders see: each step's nearest frame, as in extraction.

MTCNN comes from facenet-pytorch, an optional package (``pip install --no-deps
facenet-pytorch``); without it only Haar is measured and the result says why.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from typing import Any

import cv2
import numpy as np
import torch

from avemotion.encoders.datasets import list_dataset
from avemotion.encoders.face import (
    FaceConfig,
    FaceTracker,
    largest_face,
    load_detector,
    nearest_frames,
)
from avemotion.encoders.frontend import n_steps, step_times
from avemotion.encoders.media import AUDIO_RATE, load_video
from avemotion.encoders.mini_xception import FER_CLASSES, canonical_emotion
from avemotion.encoders.models import VISUAL_FACE_SEARCH, mini_xception_branch
from avemotion.store import STEPS_PER_SECOND


def _clip_frames(
    path: os.PathLike[str], steps_per_second: float = STEPS_PER_SECOND
) -> list[np.ndarray]:
    video = load_video(path)
    duration = float(video.times[-1]) + 1.0 / video.fps
    times = step_times(n_steps(int(duration * AUDIO_RATE), steps_per_second), steps_per_second)
    return [video.frames[int(i)] for i in nearest_frames(video.times, times)[:, 0]]


def _jitter(boxes: list[np.ndarray | None]) -> list[float]:
    moves = []
    for a, b in zip(boxes, boxes[1:]):
        if a is not None and b is not None:
            centre_a, centre_b = a[:2] + a[2:] / 2, b[:2] + b[2:] / 2
            moves.append(float(np.linalg.norm(centre_b - centre_a) / max(a[2], a[3])))
    return moves


def _detector_stats(
    config: FaceConfig, clips: list[list[np.ndarray]], labels: list[str], net: torch.nn.Module
) -> dict[str, Any]:
    detector = load_detector(config)
    seconds, found, frames, moves, correct, scored = 0.0, 0, 0, [], 0, 0
    for frames_of_clip, label in zip(clips, labels):
        boxes = []
        for frame in frames_of_clip:
            start = time.perf_counter()
            boxes.append(largest_face(detector, frame, config))  # type: ignore[arg-type]
            seconds += time.perf_counter() - start
        frames += len(boxes)
        found += sum(b is not None for b in boxes)
        moves += _jitter(boxes)
        if canonical_emotion(label) not in FER_CLASSES:
            continue
        tracker = FaceTracker(net.input_size, config, detector)  # type: ignore[arg-type]
        crops = np.stack([tracker(frame)[0] for frame in frames_of_clip])
        with torch.no_grad():
            posterior = torch.softmax(net(torch.as_tensor(crops)), -1).mean(0)
        correct += net.class_names[int(posterior.argmax())] == label
        scored += 1
    return {
        "frames": frames,
        "face_fraction": round(found / frames, 4),
        "jitter": round(float(np.mean(moves)), 4) if moves else None,
        "zero_shot_accuracy": round(correct / scored, 4) if scored else None,
        "zero_shot_clips": scored,
        "ms_per_frame": round(1000 * seconds / frames, 2),
    }


def run_faces_benchmark(root: str, weights: str, dataset: str = "mead") -> dict[str, Any]:
    """Haar and (when installed) MTCNN on every clip of ``dataset`` under ``root``."""
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    items, classes = list_dataset(dataset, root, "visual")
    clips = [_clip_frames(item.path) for item in items]
    labels = [item.label for item in items]
    net, _ = mini_xception_branch(weights, classes)
    net.eval()
    net.class_names = list(classes)  # type: ignore[assignment]
    haar = FaceConfig(**VISUAL_FACE_SEARCH["mini-xception"])
    result: dict[str, Any] = {"dataset": dataset, "clips": len(items), "threads": 1}
    result["haar"] = _detector_stats(haar, clips, labels, net)
    try:
        result["mtcnn"] = _detector_stats(replace(haar, detector="mtcnn"), clips, labels, net)
    except ValueError as error:  # facenet-pytorch absent: say so, measure Haar only
        result["mtcnn"] = {"error": str(error)}
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return result
