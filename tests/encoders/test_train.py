"""Training stages: the official params.json keys, fine-tuning chains, weights-file starts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from torchvision.models import mobilenet_v2

from avemotion.cli import main as cli_main
from avemotion.encoders.bundle import load_encoder
from avemotion.encoders.train import TrainConfig, train_encoder


def test_official_params_json_keys(tmp_path: Path) -> None:
    params = {
        "num_epochs": 3,
        "batch_size": 32,
        "learning_rate": 1e-5,
        "decay_step": 10,
        "decay_rate": 0.1,
        "modality": "visual",
        "speaker": "s3",
    }
    path = tmp_path / "params.json"
    path.write_text(json.dumps(params))
    config = TrainConfig.from_params_json(path, out="enc", num_epochs=None)
    assert (
        config.num_epochs,
        config.batch_size,
        config.learning_rate,
        config.decay_step,
        config.decay_rate,
    ) == (3, 32, 1e-5, 10, 0.1)
    assert config.modality == "visual" and config.speaker == ["s3"] and config.out == "enc"
    path.write_text(json.dumps({**params, "dropout": 0.5}))
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['dropout'\]"):
        TrainConfig.from_params_json(path)


def test_cli_requires_a_modality(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        cli_main(
            [
                "train-encoder",
                "--dataset",
                "ravdess",
                "--root",
                str(tmp_path),
                "--out",
                str(tmp_path / "e"),
            ]
        )
        == 2
    )
    assert "--modality: required" in capsys.readouterr().err


def test_fine_tuning_chain_to_another_class_set(
    ravdess_root: Path, tiny_audio_encoder: Path, tmp_path: Path
) -> None:
    """Start from an encoder trained on RAVDESS (8 classes), fine-tune on a 2-class corpus."""
    rows = []
    for path in sorted(ravdess_root.glob("Actor_0[34]/03-01-0[34]-01-01-*")):
        os.symlink(path, tmp_path / path.name)
        rows.append(
            f"{path.name},{'happy' if path.name[6:8] == '03' else 'sad'},{path.parent.name}"
        )
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "tuned"
    code = cli_main(
        [
            "train-encoder",
            "--dataset",
            "csv",
            "--root",
            str(tmp_path),
            "--modality",
            "audio",
            "--init",
            str(tiny_audio_encoder),
            "--heldout",
            "Actor_04",
            "--epochs",
            "1",
            "--threads",
            "1",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    encoder = load_encoder(out)
    assert encoder.class_names == ["happy", "sad"] and encoder.audio.head.out_features == 2
    history = encoder.config["history"]
    assert [(h["stage"], h["dataset"]) for h in history] == [("audio", "ravdess"), ("audio", "csv")]
    assert (
        history[-1]["heldout_speakers"] == ["Actor_04"] and "whole_clip" in history[-1]["metrics"]
    )


def test_visual_branch_from_a_local_torchvision_file(mead_root: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    weights = tmp_path / "mobilenet_v2_035.pth"
    torch.save(mobilenet_v2(weights=None, width_mult=0.35).state_dict(), weights)
    clips = [
        p
        for p in sorted(mead_root.glob("*_happy_*.mp4")) + sorted(mead_root.glob("*_sad_*.mp4"))
        if p.name[:4] in ("M030", "W009")
    ]
    for clip in clips:
        os.symlink(clip, tmp_path / clip.name)
    (tmp_path / "data.csv").write_text(
        "\n".join(f"{c.name},{c.name.split('_')[2]},{c.name[:4]}" for c in clips) + "\n"
    )
    entry = train_encoder(
        TrainConfig(
            dataset="csv",
            root=str(tmp_path),
            modality="visual",
            init=[str(weights)],
            out=str(tmp_path / "enc"),
            speaker=["W009"],
            num_epochs=1,
            batch_size=16,
            window_fraction=0.2,
            threads=1,
        )
    )
    encoder = load_encoder(tmp_path / "enc")
    assert encoder.config["visual"] == {
        "variant": "small",
        "weights": str(weights),
        "face": {"scale_factor": 1.2, "min_size_fraction": 0.35},  # the variant's face search
    }
    assert (
        entry["metrics"]["n_clips"] == 2
        and 0.0 <= entry["metrics"]["whole_clip"]["accuracy"] <= 1.0
    )
