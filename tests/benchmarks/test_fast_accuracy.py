"""The fast path's accuracy check accounts for every file of the corpus it scores: a clip
FER2013 has no class for, or one that cannot be decoded, is listed with why (it used to be
dropped without a word, or to abort the whole check)."""

from __future__ import annotations

from pathlib import Path

import torch
from optional_extras import require_extra

from avemotion.benchmarks.av_fixture import synthetic_av_clip
from avemotion.benchmarks.fast_accuracy import file_account, mini_xception_accuracy
from avemotion.encoders import mini_xception
from avemotion.encoders.datasets import list_corpus


def _weights(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return mini_xception.write_keras_weights(
        mini_xception.MiniXception().eval(), tmp_path / "emotion_model.hdf5"
    )


def _mead(data: Path, emotions: tuple[str, ...]) -> tuple[Path, Path, list[Path]]:
    """MEAD-named clips under ``data/mead-video``, plus a broken one; the contempt clip
    (no FER2013 class), the broken one and the others."""
    root = data / "mead-video"
    root.mkdir(parents=True)
    clips = [
        synthetic_av_clip(root / f"M001_front_{e}_level3_001.mp4", 1.2, size=128, seed=i)
        for i, e in enumerate(emotions)
    ]
    broken = root / "M001_front_angry_level3_001.mp4"
    broken.write_bytes(b"not a video at all")
    contempt = synthetic_av_clip(root / "M001_front_contempt_level3_001.mp4", 1.2, size=128)
    return contempt, broken, clips


def test_mini_xception_check_lists_the_clips_it_does_not_score(tmp_path: Path) -> None:
    require_extra("onnxruntime", "onnx")
    contempt, broken, _ = _mead(tmp_path / "data", ("happy",))
    result = mini_xception_accuracy(tmp_path / "data", _weights(tmp_path))
    assert result["clips"] == 1 and result["files"] == {"seen": 3, "kept": 1, "skipped": 2}
    first, second = result["skipped"]  # sorted by path: angry, then contempt
    assert first.startswith(f"{broken}: ")
    assert second == f"{contempt}: class contempt: FER2013 does not name it"
    assert 0.0 <= result["fp32"]["clip_accuracy"] <= 1.0


def test_no_clip_scored_is_said_not_raised(tmp_path: Path) -> None:
    """The check runs after the pipeline's timings: it must not lose them by raising."""
    require_extra("onnxruntime", "onnx")
    _mead(tmp_path / "data", ())
    result = mini_xception_accuracy(tmp_path / "data", _weights(tmp_path))
    assert (
        result["clips"] == 0 and result["not_measured"] == "no clip could be scored (see skipped)"
    )
    assert result["files"] == {"seen": 2, "kept": 0, "skipped": 2} and len(result["skipped"]) == 2


def test_file_account_folds_the_speakers_not_selected(tmp_path: Path) -> None:
    """Held-out actors only: the other speakers' files are one counted line, every other
    reason is listed file by file."""
    root = tmp_path / "mead"
    for name in (
        "M001_front_happy_level3_001",
        "W002_front_sad_level3_001",
        "W002_front_happy_level3_001",
    ):
        (root / f"{name}.mp4").parent.mkdir(parents=True, exist_ok=True)
        (root / f"{name}.mp4").write_bytes(b"listed, never decoded")
    (root / "notes.txt").write_text("x")
    corpus = list_corpus("mead", root, "visual")
    corpus.select(["M001"], None, "held-out actors")
    account = file_account(corpus)
    assert account["files"] == {"seen": 4, "kept": 1, "skipped": 3}
    notes, folded = account["skipped"]
    assert notes.startswith(f"{root / 'notes.txt'}: unsupported extension .txt")
    assert folded == "2 file(s) of speakers not selected"


def test_int8_accuracy_of_an_audio_encoder_is_scored_against_fp32(
    shared_data: Path, tmp_path: Path, monkeypatch
) -> None:
    """``audio_accuracy`` on the int8 path: its own key, deltas from fp32, and the VGGish
    check says why it did not measure (no encoder; an encoder of another variant)."""
    require_extra("onnxruntime", "onnx")
    from avemotion.benchmarks.fast_accuracy import audio_accuracy, vggish_int8_accuracy
    from avemotion.encoders.fast import Calibration
    from avemotion.encoders.frontend import step_patches
    from avemotion.encoders.media import load_audio
    from avemotion.encoders.train import TrainConfig, train_encoder

    enc = tmp_path / "enc"
    budget = {"num_epochs": 1, "window_fraction": 0.05, "batch_size": 64, "threads": 1}
    root = shared_data / "ravdess-speech-16k"
    config = TrainConfig(
        dataset="ravdess", root=str(root), modality="audio", out=str(enc), **budget
    )
    config.speaker, config.train_speakers = ["Actor_02"], ["Actor_01"]
    train_encoder(config)
    calibration = Calibration(patches=step_patches(load_audio(sorted(root.glob("Actor_01/*"))[0])))
    result = audio_accuracy(shared_data, enc, "int8", calibration)
    assert result["clips"] == 60 and result["speakers"] == ["Actor_02"]
    for level in ("clip", "step"):
        fp32, int8 = result["fp32"][f"{level}_accuracy"], result["int8"][f"{level}_accuracy"]
        assert result[f"{level}_delta_points"] == round(100.0 * (int8 - fp32), 2)
    assert "fast" not in result and result["posterior_max_abs_diff"] < 1e-3
    missing = tmp_path / "no-vggish"
    monkeypatch.setenv("AVEMOTION_VGGISH_ENCODER", str(missing))
    assert vggish_int8_accuracy(shared_data, calibration)["not_measured"].startswith(
        f"{missing}: no trained VGGish (avemotion train-encoder"
    )
    monkeypatch.setenv("AVEMOTION_VGGISH_ENCODER", str(enc))
    assert vggish_int8_accuracy(shared_data, calibration) == {
        "not_measured": f"{enc}: audio variant 'small', not 'vggish'"
    }


def test_paper_accuracy_target_reads_both_deltas() -> None:
    """Within 0.5 points at clip and step level, by hand; None when not measured."""
    from avemotion.benchmarks.pipeline import _targets

    def within(clip: float | None, step: float | None):
        vggish = {"clip_delta_points": clip, "step_delta_points": step}
        checked = {"paper_int8": {"vggish_accuracy": vggish}}
        return _targets({}, checked)["paper_int8_accuracy_within_tolerance"]

    assert within(0.42, -0.5) is True
    assert within(0.0, 0.51) is False
    assert within(-0.6, 0.0) is False
    assert within(None, None) is None
    assert _targets({}, {})["paper_int8_accuracy_within_tolerance"] is None
    assert _targets({}, None)["paper_int8_accuracy_within_tolerance"] is None  # no check ran


def test_int8_calibration_spreads_over_training_actors(shared_data: Path, tmp_path: Path) -> None:
    """4 clips of each of actors 02-14 (spread over their files), 4 patches each: 13 x 4 x 4
    = 208 patches, none of the streamed actor 01 or the held-out 15-18; 32 face crops."""
    from avemotion.benchmarks.pipeline_setup import CALIBRATION_ACTORS, calibration_inputs

    assert CALIBRATION_ACTORS[0] == "Actor_02" and CALIBRATION_ACTORS[-1] == "Actor_14"
    calibration = calibration_inputs(tmp_path, shared_data, 112, {})
    assert calibration.patches.shape == (208, 96, 64)
    assert calibration.crops.shape == (32, 112, 112, 3)
    synthetic = calibration_inputs(tmp_path, None, 112, {})  # no real data: one synthetic clip
    assert 0 < len(synthetic.patches) <= 32 and len(synthetic.crops) == 32
