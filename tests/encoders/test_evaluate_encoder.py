"""evaluate-encoder: classes matched by name, unnamed classes apart, the JSON last line; the
mini-Xception variant through train-encoder on synthetic media and, when present, on MEAD."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from avemotion.cli import main
from avemotion.encoders import mini_xception
from avemotion.encoders.evaluate import Evaluation

LABELS = ("happy", "sad", "contempt")


@pytest.fixture(scope="module")
def synthetic_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six generated face clips (two speakers × happy, sad, contempt) listed in a CSV."""
    from avemotion.benchmarks.av_fixture import synthetic_av_clip

    root = tmp_path_factory.mktemp("faces")
    rows = []
    for i in range(6):
        name = f"clip{i}.mkv"
        synthetic_av_clip(root / name, seconds=1.2, size=128, seed=i)
        rows.append(f"{name},{LABELS[i % 3]},S{i // 3}")
    (root / "data.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def stand_in_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised mini-Xception in the Keras file layout."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "emotion_model.hdf5"
    return mini_xception.write_keras_weights(mini_xception.MiniXception().eval(), path)


def _last_json(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_evaluation_counts_by_hand() -> None:
    """Rows: corpus classes; columns: the encoder's named classes (matched by name)."""
    result = Evaluation(
        ["happy", "disgust", "surprised"],
        ["disgust", "happy", "surprise"],
        np.array([[1, 2, 0], [3, 1, 0], [0, 0, 2]]),
        unmatched={"contempt": 3},
    )
    # correct: happy -> column 1 (2), disgust -> column 0 (3), surprised -> column 2 (2)
    assert (result.correct, result.n_clips) == (7, 9)
    assert result.per_class_recall() == {"happy": 0.6667, "disgust": 0.75, "surprised": 1.0}
    summary = result.summary()
    assert summary["accuracy"] == round(7 / 9, 4)
    assert summary["unmatched_clips"] == {"contempt": 3}


def test_mini_xception_train_and_evaluate_on_synthetic_media(
    synthetic_corpus: Path, stand_in_weights: Path, tmp_path: Path, capsys
) -> None:
    """Zero-shot: contempt has no FER2013 name, so its 2 clips are counted apart and the 4
    others scored; after one epoch of the head, contempt is a class like the others."""
    common = ["--dataset", "csv", "--root", str(synthetic_corpus), "--modality", "visual"]
    common += ["--visual-variant", "mini-xception", "--init", str(stand_in_weights)]
    zero = tmp_path / "zero"
    assert main(["train-encoder", *common, "--epochs", "0", "--out", str(zero), "--json"]) == 0
    capsys.readouterr()
    config = json.loads((zero / "config.json").read_text())
    assert config["visual"]["unnamed_classes"] == ["contempt"]
    assert config["visual"]["fine_tune"] is False
    evaluate = ["evaluate-encoder", "--dataset", "csv", "--root", str(synthetic_corpus)]
    assert main([*evaluate, "--encoder", str(zero), "--json", "--device", "cpu"]) == 0
    summary = _last_json(capsys)
    assert summary["n_clips"] == 4 and summary["unmatched_clips"] == {"contempt": 2}
    assert summary["confusion"]["columns"] == ["happy", "sad"]
    trained = tmp_path / "trained"
    head = ["--epochs", "1", "--batch-size", "8", "--heldout", "S1", "--out", str(trained)]
    assert main(["train-encoder", *common, *head, "--json"]) == 0
    capsys.readouterr()
    assert main([*evaluate, "--encoder", str(trained), "--speakers", "S1"]) == 0
    summary = _last_json(capsys)
    assert summary["n_clips"] == 3 and summary["unmatched_clips"] == {}
    backbone = mini_xception.load_mini_xception(stand_in_weights).state_dict()
    saved = torch.load(trained / "visual.pt", weights_only=True)
    torch.testing.assert_close(saved["backbone.conv1.weight"], backbone["conv1.weight"])


def test_missing_weights_is_one_cli_line(synthetic_corpus: Path, tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nowhere" / "emotion_model.hdf5"
    argv = ["train-encoder", "--dataset", "csv", "--root", str(synthetic_corpus)]
    argv += ["--modality", "visual", "--visual-variant", "mini-xception"]
    argv += ["--init", str(missing), "--epochs", "0", "--out", str(tmp_path / "enc")]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error
    assert f"{missing}: no such weights file" in error


def test_zero_shot_mead_accuracy(mead_root: Path, tmp_path: Path, capsys) -> None:
    """The shipped network on real faces: the JSON names 21 matched clips, contempt apart,
    and scores well above chance (3 of 21)."""
    weights = mini_xception.default_weights_path()
    if not weights.is_file():
        pytest.skip(f"{weights} is absent (set AVEMOTION_SHARED_MODELS)")
    enc = tmp_path / "zero"
    argv = ["train-encoder", "--dataset", "mead", "--root", str(mead_root)]
    argv += ["--modality", "visual", "--visual-variant", "mini-xception"]
    assert main([*argv, "--init", str(weights), "--epochs", "0", "--out", str(enc)]) == 0
    capsys.readouterr()
    assert (
        main(
            ["evaluate-encoder", "--encoder", str(enc), "--dataset", "mead"]
            + ["--root", str(mead_root), "--json"]
        )
        == 0
    )
    summary = _last_json(capsys)
    assert summary["n_clips"] == 21 and summary["unmatched_clips"] == {"contempt": 3}
    assert summary["accuracy"] >= 0.6


def _blank_video(path: Path, seconds: float = 1.2, size: int = 96) -> Path:
    import av

    with av.open(str(path), "w", format="matroska") as output:
        stream = output.add_stream("libx264", rate=25)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for _ in range(int(seconds * 25)):
            frame = np.full((size, size, 3), 90, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return path


def test_video_with_no_face_is_one_line(
    synthetic_corpus: Path, stand_in_weights: Path, tmp_path: Path, capsys
) -> None:
    """A corpus whose only clip shows no face: training and evaluation each stop with one
    line naming the file."""
    root = tmp_path / "noface"
    root.mkdir()
    clip = _blank_video(root / "blank.mkv")
    (root / "data.csv").write_text("blank.mkv,happy,S0\n")
    argv = ["train-encoder", "--dataset", "csv", "--root", str(root), "--modality", "visual"]
    argv += ["--visual-variant", "mini-xception", "--init", str(stand_in_weights)]
    assert main([*argv, "--epochs", "0", "--out", str(tmp_path / "enc")]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and f"{clip}: no face found in any of its" in error
    faces = ["--dataset", "csv", "--root", str(synthetic_corpus), "--visual-variant"]
    zero = ["train-encoder", *faces, "mini-xception", "--modality", "visual", "--epochs", "0"]
    assert main([*zero, "--init", str(stand_in_weights), "--out", str(tmp_path / "z")]) == 0
    capsys.readouterr()
    evaluate = ["evaluate-encoder", "--encoder", str(tmp_path / "z"), "--dataset", "csv"]
    assert main([*evaluate, "--root", str(root)]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and f"{clip}: no face found in any of its" in error


def test_fine_tune_trains_the_backbone(
    synthetic_corpus: Path, stand_in_weights: Path, tmp_path: Path, capsys
) -> None:
    argv = ["train-encoder", "--dataset", "csv", "--root", str(synthetic_corpus)]
    argv += ["--modality", "visual", "--visual-variant", "mini-xception"]
    argv += ["--init", str(stand_in_weights), "--fine-tune", "--epochs", "1"]
    assert main([*argv, "--batch-size", "8", "--out", str(tmp_path / "tuned")]) == 0
    capsys.readouterr()
    config = json.loads((tmp_path / "tuned" / "config.json").read_text())
    assert config["visual"]["fine_tune"] is True
    saved = torch.load(tmp_path / "tuned" / "visual.pt", weights_only=True)
    start = mini_xception.load_mini_xception(stand_in_weights).state_dict()
    assert not torch.equal(saved["backbone.conv1.weight"], start["conv1.weight"])


def test_fusion_and_temporal_stages_over_the_mini_xception(
    synthetic_corpus: Path, stand_in_weights: Path, tmp_path: Path, capsys
) -> None:
    """The cascade as today with the 135-d visual branch: audio, zero-shot visual, fusion
    (263-d input), LSTM; the fused encoder is then scored clip by clip."""
    corpus = ["--dataset", "csv", "--root", str(synthetic_corpus), "--batch-size", "8"]
    audio, visual, fusion, temporal = (tmp_path / n for n in ("a", "v", "f", "t"))
    stages = [
        ["--modality", "audio", "--epochs", "1", "--out", str(audio)],
        ["--modality", "visual", "--visual-variant", "mini-xception"]
        + ["--init", str(stand_in_weights), "--epochs", "0", "--out", str(visual)],
        ["--modality", "fusion", "--init", str(audio), "--init", str(visual)]
        + ["--epochs", "1", "--out", str(fusion)],
        ["--modality", "temporal", "--init", str(fusion), "--epochs", "1", "--out", str(temporal)],
    ]
    for stage in stages:
        assert main(["train-encoder", *corpus, *stage, "--json"]) == 0, stage
    capsys.readouterr()
    config = json.loads((temporal / "config.json").read_text())
    assert config["visual"]["variant"] == "mini-xception"
    fused = torch.load(fusion / "fusion.pt", weights_only=True)
    assert fused["input_norm.weight"].shape == (135 + 128,)
    evaluate = ["evaluate-encoder", "--encoder", str(temporal), "--dataset", "csv"]
    assert main([*evaluate, "--root", str(synthetic_corpus), "--json"]) == 0
    summary = _last_json(capsys)
    assert summary["n_clips"] == 6 and summary["unmatched_clips"] == {}


def test_every_file_not_scored_is_listed_with_its_reason(
    synthetic_corpus: Path, stand_in_weights: Path, tmp_path: Path, capsys
) -> None:
    """As extract does: a summary line and a line per skipped file (a file the listing
    rejects, an undecodable clip, a class the encoder cannot name), all of them in the
    JSON's ``skipped`` with the counts in ``files``; a progress bar on stderr."""
    zero = tmp_path / "zero"
    argv = ["train-encoder", "--dataset", "csv", "--root", str(synthetic_corpus)]
    argv += ["--modality", "visual", "--visual-variant", "mini-xception"]
    assert main([*argv, "--init", str(stand_in_weights), "--epochs", "0", "--out", str(zero)]) == 0
    root = tmp_path / "corpus"
    root.mkdir()
    for i in range(3):  # happy, sad, contempt
        (root / f"clip{i}.mkv").symlink_to(synthetic_corpus / f"clip{i}.mkv")
    (root / "broken.mkv").write_text("not a video\n")
    (root / "notes.txt").write_text("recorded on a Tuesday\n")
    rows = [f"clip{i}.mkv,{LABELS[i]},S0" for i in range(3)] + ["broken.mkv,happy,S0"]
    (root / "data.csv").write_text("\n".join(rows) + "\n")
    capsys.readouterr()
    evaluate = ["evaluate-encoder", "--encoder", str(zero), "--dataset", "csv"]
    assert main([*evaluate, "--root", str(root), "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["n_clips"] == 2 and summary["unmatched_clips"] == {"contempt": 1}
    # 6 files: clip0, clip1 scored; clip2 (contempt), broken, notes, data.csv not
    assert summary["files"] == {"seen": 6, "kept": 2, "skipped": 4}
    assert summary["n_skipped"] == 4 and len(summary["skipped"]) == 4
    reasons = dict(zip(["broken.mkv", "clip2.mkv", "data.csv", "notes.txt"], summary["skipped"]))
    for name, reason in reasons.items():
        assert reason.startswith(str(root / name)) and "\n" not in reason
    assert "cannot open the file" in reasons["broken.mkv"]
    assert "cannot name this class" in reasons["clip2.mkv"]
    assert f"{root}: 6 file(s) seen = 2 kept + 4 skipped" in captured.out
    for name in ("broken.mkv", "data.csv", "notes.txt"):
        assert f"  skipped {reasons[name]}" in captured.out
    assert "1 clip(s) of contempt: the encoder cannot name" in captured.out
    assert "evaluate csv" in captured.err  # the progress bar
    assert main([*evaluate, "--root", str(root), "--no-progress", "--json"]) == 0
    captured = capsys.readouterr()
    assert "evaluate csv" not in captured.err and len(captured.out.strip().splitlines()) == 1
