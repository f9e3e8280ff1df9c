"""The face-search benchmark: box jitter by hand, and a run on generated MEAD-named clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from avemotion.benchmarks.faces import _jitter, run_faces_benchmark
from avemotion.encoders import mini_xception
from avemotion.encoders.media import MediaError


def test_jitter_by_hand() -> None:
    boxes = [
        np.array([0.0, 0.0, 10.0, 10.0]),
        np.array([1.0, 0.0, 10.0, 10.0]),  # centre moves 1 px on a 10 px box: 0.1
        None,  # no face: neither pair around it counts
        np.array([5.0, 5.0, 10.0, 10.0]),
        np.array([8.0, 9.0, 10.0, 10.0]),  # moves (3, 4): 5 px on 10 px: 0.5
    ]
    assert _jitter(boxes) == [0.1, 0.5]


def _weights(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return mini_xception.write_keras_weights(
        mini_xception.MiniXception().eval(), tmp_path / "emotion_model.hdf5"
    )


def test_faces_benchmark_on_generated_clips(tmp_path: Path) -> None:
    """Two good clips measured; a clip that cannot be decoded and one shorter than a step
    window are skipped with their reasons (each used to abort the whole benchmark), and a
    stray file is accounted too: 5 files seen = 2 kept + 3 skipped."""
    from avemotion.benchmarks.av_fixture import synthetic_av_clip

    root = tmp_path / "mead"
    for i, emotion in enumerate(("happy", "contempt")):
        synthetic_av_clip(root / f"M001_front_{emotion}_level3_001.mp4", 1.2, size=128, seed=i)
    # 0.5 s at 25 fps: 12 frames, the last at 0.44 s, so 0.48 s of video
    short = synthetic_av_clip(root / "M001_front_sad_level3_001.mp4", 0.5, size=128, seed=2)
    broken = root / "M001_front_angry_level3_001.mp4"
    broken.write_bytes(b"not a video at all")
    notes = root / "notes.txt"
    notes.write_text("recorded in 2020")
    result = run_faces_benchmark(str(root), str(_weights(tmp_path)))
    haar = result["haar"]
    assert result["clips"] == 2 and haar["frames"] == 2 * 3  # (1.2 - 0.975) / 0.1 + 1 steps
    assert haar["face_fraction"] == 1.0 and haar["zero_shot_clips"] == 1  # contempt unscored
    assert haar["ms_per_frame"] > 0 and haar["jitter"] >= 0
    assert "mtcnn" not in result
    assert result["root"] == str(root)
    assert result["files"] == {"seen": 5, "kept": 2, "skipped": 3}
    first, second, third = result["skipped"]  # sorted by path
    assert first.startswith(f"{broken}: cannot open the file as video (")
    assert second == f"{short}: shorter than one step window (0.48 s < 0.975 s)"
    assert third.startswith(f"{notes}: unsupported extension .txt")


def test_no_decodable_clip_is_one_line_naming_the_root(tmp_path: Path) -> None:
    root = tmp_path / "mead"
    root.mkdir()
    broken = root / "M001_front_happy_level3_001.mp4"
    broken.write_bytes(b"not a video at all")
    with pytest.raises(MediaError) as caught:
        run_faces_benchmark(str(root), str(_weights(tmp_path)))
    assert str(caught.value).startswith(
        f"{root}: no clip could be decoded ({broken}: cannot open the file as video ("
    )


def test_bad_weights_are_refused_before_any_clip_is_decoded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The weights used to be read only after every clip had been decoded."""
    from avemotion.benchmarks import faces
    from avemotion.cli import main

    root = tmp_path / "mead"
    root.mkdir()
    (root / "M001_front_happy_level3_001.mp4").write_bytes(b"never decoded")
    decoded: list[Path] = []
    monkeypatch.setattr(faces, "_clip_frames", decoded.append)
    weights = tmp_path / "emotion_model.hdf5"
    weights.write_text("not HDF5")
    assert main(["bench", "faces", "--root", str(root), "--weights", str(weights)]) == 2
    captured = capsys.readouterr()
    assert decoded == [] and captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith(f"avemotion bench: error: {weights}: not an HDF5 file (")
