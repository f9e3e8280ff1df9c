"""The face search on real clips: OpenCV's Haar cascade as the encoders use it.

For every clip of a corpus (MEAD by default) and every step's nearest frame (10 steps/s),
the detector answers on the frame. Reported under ``haar``:

- ``face_fraction``: frames where it found a face;
- ``jitter``: frame-to-frame movement of the raw box centre, as a fraction of the box side
  (mean over consecutive frames that both had a face; lower is steadier);
- ``zero_shot_accuracy``: whole-clip accuracy of the FER2013 mini-Xception on its crops (the
  tracker's smoothing and margin of the mini-xception variant, mean posterior per clip,
  classes matched by name, contempt not scored);
- ``ms_per_frame``: wall time of one detection, one torch/OpenCV thread (``load_average``
  says how busy the machine was).

The frames are those the encoders see: each step's nearest frame, as in extraction.
"""

from __future__ import annotations

import os
import time
from typing import Any

import cv2
import numpy as np
import torch

from avemotion.encoders.datasets import Corpus, list_corpus
from avemotion.encoders.face import (
    FaceConfig,
    FaceTracker,
    largest_face,
    load_detector,
    nearest_frames,
)
from avemotion.encoders.frontend import WINDOW_SAMPLES, n_steps, step_times
from avemotion.encoders.media import AUDIO_RATE, MediaError, load_video
from avemotion.encoders.mini_xception import FER_CLASSES, canonical_emotion
from avemotion.encoders.models import VISUAL_FACE_SEARCH, mini_xception_branch
from avemotion.store import STEPS_PER_SECOND


def _clip_frames(
    path: os.PathLike[str], steps_per_second: float = STEPS_PER_SECOND
) -> list[np.ndarray]:
    video = load_video(path)
    duration = float(video.times[-1]) + 1.0 / video.fps
    count = n_steps(int(duration * AUDIO_RATE), steps_per_second)
    if count == 0:  # no step, no frame: it would be measured as nothing (as extraction says)
        raise MediaError(
            f"{path}: shorter than one step window ({duration:.2f} s < {WINDOW_SAMPLES / AUDIO_RATE:.3f} s)"
        )
    times = step_times(count, steps_per_second)
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
    """The Haar face search on every clip of ``dataset`` under ``root``.

    The weights are loaded before any clip is decoded (a bad file fails at once); a clip
    that cannot be decoded is skipped with its reason. ``files`` counts the files under
    ``root`` (seen = kept + skipped), ``skipped`` lists each one not measured, with why.
    """
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    corpus = video_corpus(dataset, root)
    net, _ = mini_xception_branch(weights, corpus.classes)
    net.eval()
    net.class_names = list(corpus.classes)  # type: ignore[assignment]
    clips = _decoded_clips(corpus)
    labels = [item.label for item in corpus.items]
    haar = FaceConfig(**VISUAL_FACE_SEARCH["mini-xception"])
    result: dict[str, Any] = {"dataset": dataset, "root": root, "clips": len(clips), "threads": 1}
    result["haar"] = _detector_stats(haar, clips, labels, net)
    result["files"], result["skipped"] = corpus.account.counts(), corpus.account.lines()
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return result


def video_corpus(dataset: str, root: str | os.PathLike[str]) -> Corpus:
    """The corpus's clips and file account, for a benchmark that reads their video only:
    separate audio files (MEAD's original layout) are accounted as skipped, not kept."""
    corpus = list_corpus(dataset, root, "visual")
    for item in corpus.items:
        if item.audio_path is not None:
            corpus.account.skip(
                item.audio_path, f"{item.audio_path}: audio not read (a video-only benchmark)"
            )
    return corpus


def _decoded_clips(corpus: Corpus) -> list[list[np.ndarray]]:
    """Each clip's step frames; a clip that cannot be decoded is dropped from ``corpus``
    with its one-line reason, the rest go on. Raises :class:`MediaError` when none is left."""
    clips, failures = [], []
    for item in list(corpus.items):  # corpus.drop edits corpus.items
        try:
            clips.append(_clip_frames(item.path))
        except MediaError as error:
            failures.append(str(error))
            corpus.drop(item, str(error))
    if not clips:
        raise MediaError(f"{corpus.account.root}: no clip could be decoded ({failures[0]})")
    return clips
