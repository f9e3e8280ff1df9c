"""The face-detector comparison: box jitter by hand, and a run on generated MEAD-named clips
(MTCNN reported as unavailable when facenet-pytorch is not installed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

from avemotion.benchmarks.faces import _jitter, run_faces_benchmark
from avemotion.encoders import mini_xception


def test_jitter_by_hand() -> None:
    boxes = [
        np.array([0.0, 0.0, 10.0, 10.0]),
        np.array([1.0, 0.0, 10.0, 10.0]),  # centre moves 1 px on a 10 px box: 0.1
        None,  # no face: neither pair around it counts
        np.array([5.0, 5.0, 10.0, 10.0]),
        np.array([8.0, 9.0, 10.0, 10.0]),  # moves (3, 4): 5 px on 10 px: 0.5
    ]
    assert _jitter(boxes) == [0.1, 0.5]


def test_faces_benchmark_on_generated_clips(tmp_path: Path) -> None:
    from avemotion.benchmarks.av_fixture import synthetic_av_clip

    root = tmp_path / "mead"
    for i, emotion in enumerate(("happy", "contempt")):
        synthetic_av_clip(root / f"M001_front_{emotion}_level3_001.mp4", 1.2, size=128, seed=i)
    torch.manual_seed(0)
    weights = mini_xception.write_keras_weights(
        mini_xception.MiniXception().eval(), tmp_path / "emotion_model.hdf5"
    )
    result = run_faces_benchmark(str(root), str(weights))
    haar = result["haar"]
    assert result["clips"] == 2 and haar["frames"] == 2 * 3  # (1.2 - 0.975) / 0.1 + 1 steps
    assert haar["face_fraction"] == 1.0 and haar["zero_shot_clips"] == 1  # contempt unscored
    assert haar["ms_per_frame"] > 0 and haar["jitter"] >= 0
    if importlib.util.find_spec("facenet_pytorch") is None:
        assert "facenet-pytorch is not installed" in result["mtcnn"]["error"]
    else:
        assert result["mtcnn"]["frames"] == 6
