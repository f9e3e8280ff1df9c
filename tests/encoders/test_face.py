"""Face detection, smoothing, cropping and the centre-crop fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avemotion.encoders.datasets import list_dataset
from avemotion.encoders.face import FaceConfig, FaceTracker, centre_box, crop_square, nearest_frames
from avemotion.encoders.steps import StepConfig, clip_steps


def test_faces_found_in_most_steps_of_mead_clips(mead_root: Path) -> None:
    items, _ = list_dataset("mead", mead_root)
    one_per_speaker = {item.speaker: item for item in items if item.label == "happy"}
    assert len(one_per_speaker) == 3
    for item in one_per_speaker.values():
        clip = clip_steps(
            item, need_audio=False, need_visual=True, config=StepConfig(face_size=112)
        )
        assert clip.crops is not None and clip.crops.shape == (clip.n_steps, 112, 112, 3)
        assert clip.n_steps >= 20
        assert clip.faces_detected / clip.n_steps >= 0.8, (
            f"{item.clip_id}: face in {clip.faces_detected}/{clip.n_steps} steps"
        )


def test_crop_of_detected_face_is_not_the_centre_crop(mead_root: Path) -> None:
    items, _ = list_dataset("mead", mead_root)
    clip = clip_steps(items[0], need_audio=False, need_visual=True, config=StepConfig(face_size=64))
    from avemotion.encoders.media import load_video

    frame = load_video(items[0].path).frames[0]
    centre = crop_square(frame, centre_box(frame.shape), 64)
    assert np.abs(clip.crops[0].astype(int) - centre.astype(int)).mean() > 5


def test_blank_frames_fall_back_to_the_centre_crop() -> None:
    tracker = FaceTracker(32, FaceConfig(hold=0))
    frame = np.zeros((120, 160, 3), dtype=np.uint8)
    frame[:, 20:140] = 200  # a bright centred square, no face
    crop, detected = tracker(frame)
    assert not detected and crop.shape == (32, 32, 3)
    assert crop.min() == 200  # exactly the centred 120×120 square
    assert tracker.detected_fraction == 0.0


def test_crop_pads_past_the_frame_edges() -> None:
    frame = np.full((50, 50, 3), 7, dtype=np.uint8)
    crop = crop_square(frame, np.array([-10.0, -10.0, 30.0, 30.0]), 16, margin=0.5)
    assert crop.shape == (16, 16, 3) and (crop == 7).all()


def test_nearest_frames_and_pooling() -> None:
    frame_times = np.arange(100) / 25.0
    index = nearest_frames(frame_times, np.array([0.0, 0.49, 1.0, 3.99]))
    assert index[:, 0].tolist() == [0, 12, 25, 99]
    pooled = nearest_frames(frame_times, np.array([1.0]), pool=11, stride=2)
    assert pooled[0].tolist() == list(range(15, 36, 2))
    assert nearest_frames(frame_times, np.array([0.0]), pool=11)[0].min() == 0


def test_unknown_detector_is_rejected() -> None:
    import pytest

    with pytest.raises(ValueError, match="face detector: expected one of"):
        FaceConfig(detector="dlib")


def test_mtcnn_is_refused_in_one_line_saying_why() -> None:
    import pytest

    with pytest.raises(ValueError, match="'mtcnn' is not supported .*docs/visual.md"):
        FaceConfig(detector="mtcnn")
