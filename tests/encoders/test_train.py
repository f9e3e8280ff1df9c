"""Training stages: the official params.json keys, fine-tuning chains, weights-file starts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.models import mobilenet_v2

from avemotion.cli import main as cli_main
from avemotion.encoders.bundle import Encoder, load_encoder, visual_face_settings
from avemotion.encoders.datasets import Item, list_dataset
from avemotion.encoders.face import FaceConfig
from avemotion.encoders.steps import StepConfig, clip_steps
from avemotion.encoders.train import TrainConfig, train_encoder


def items_of(root: Path) -> list[Item]:
    return list_dataset("csv", root)[0]


def held_out_metrics(encoder: Encoder, part: str, items: list[Item]) -> dict:
    """A second implementation of a window stage's held-out metrics: decode each clip,
    classify every voiced step with the stored net, and score the clip by the mean of its
    steps' log-posteriors (``encoders.loops.evaluate_windows`` does it in batches)."""
    names = encoder.class_names
    audio, visual = part in ("audio", "fusion"), part in ("visual", "fusion")
    face = FaceConfig(**visual_face_settings(encoder.config["visual"])) if visual else None
    size = encoder.visual.input_size if visual else 112  # type: ignore[union-attr]
    step_hits, clip_hits, step_labels, clip_labels = [], [], [], []
    for item in items:
        clip = clip_steps(item, audio, visual, StepConfig(10.0, size), face)
        with torch.no_grad():
            a = encoder.audio_embeddings(clip.patches) if audio else None
            v = encoder.visual_embeddings(clip.crops) if visual else None
            if part == "fusion":
                logits = encoder.fusion(encoder.embeddings(a, v))  # type: ignore[misc]
            elif part == "audio":
                logits = encoder.audio(clip.patches)  # type: ignore[misc]
            else:
                logits = encoder.visual(torch.as_tensor(clip.crops))  # type: ignore[misc]
        log_posteriors = torch.log_softmax(logits, -1)[torch.as_tensor(clip.voiced)]
        label = names.index(item.label)
        step_hits += (log_posteriors.argmax(-1) == label).tolist()
        step_labels += [label] * len(log_posteriors)
        clip_hits.append(int(log_posteriors.mean(0).argmax()) == label)
        clip_labels.append(label)

    def accuracy(hits: list[bool], labels: list[int]) -> dict:
        hits_a, labels_a = np.array(hits), np.array(labels)
        per_class = [hits_a[labels_a == k].mean() for k in sorted(set(labels))]
        return {
            "accuracy": round(float(hits_a.mean()), 4),
            "unweighted_accuracy": round(float(np.mean(per_class)), 4),
        }

    return {
        "per_window": accuracy(step_hits, step_labels),
        "whole_clip": accuracy(clip_hits, clip_labels),
        "n_windows": len(step_hits),
        "n_clips": len(items),
    }


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
    assert entry["metrics"] == held_out_metrics(
        load_encoder(tmp_path / "enc"),
        "visual",
        [c for c in items_of(tmp_path) if c.speaker == "W009"],
    )


# ------------------------------------------------------------ synthetic media, no ../shared
def test_audio_stage_learns_the_pitch_cue(
    synthetic_root: Path, synthetic_stage, tmp_path: Path
) -> None:
    """Each class has its own pitch: held-out speaker s3 is recognised on every clip, and
    the stage's metrics equal a second implementation's."""
    entry = synthetic_stage(tmp_path / "enc", "audio", num_epochs=4)
    encoder = load_encoder(tmp_path / "enc")
    held = [i for i in items_of(synthetic_root) if i.speaker == "s3"]
    assert entry["metrics"] == held_out_metrics(encoder, "audio", held)
    assert entry["metrics"]["whole_clip"]["accuracy"] == 1.0
    assert (entry["train_speakers"], entry["heldout_speakers"]) == (["s1", "s2"], ["s3"])
    assert entry["files"] == {"seen": 13, "kept": 12, "skipped": 1}  # + data.csv


def test_visual_stage_on_drawn_faces(synthetic_root: Path, synthetic_visual_encoder: Path) -> None:
    encoder = load_encoder(synthetic_visual_encoder)
    (entry,) = encoder.config["history"]
    held = [i for i in items_of(synthetic_root) if i.speaker == "s3"]
    assert entry["stage"] == "visual" and entry["n_train_clips"] == 8
    assert entry["metrics"] == held_out_metrics(encoder, "visual", held)
    assert encoder.audio is None and encoder.visual is not None


def test_fusion_stage_on_two_branch_encoders(
    synthetic_root: Path,
    synthetic_audio_encoder: Path,
    synthetic_visual_encoder: Path,
    synthetic_stage,
    tmp_path: Path,
) -> None:
    before = load_encoder(synthetic_audio_encoder).audio.state_dict()  # type: ignore[union-attr]
    init = [str(synthetic_audio_encoder), str(synthetic_visual_encoder)]
    entry = synthetic_stage(tmp_path / "fused", "fusion", init=init)
    encoder = load_encoder(tmp_path / "fused")
    assert [h["stage"] for h in encoder.config["history"]] == ["audio", "visual", "fusion"]
    held = [i for i in items_of(synthetic_root) if i.speaker == "s3"]
    assert entry["metrics"] == held_out_metrics(encoder, "fusion", held)
    for name, value in encoder.audio.state_dict().items():  # type: ignore[union-attr]
        torch.testing.assert_close(value, before[name])  # the branches stay frozen


def test_temporal_stage_without_cross_fitting(
    synthetic_root: Path, synthetic_visual_encoder: Path, synthetic_stage, tmp_path: Path
) -> None:
    entry = synthetic_stage(
        tmp_path / "temporal",
        "temporal",
        init=[str(synthetic_visual_encoder)],
        temporal_hidden=8,
    )
    encoder = load_encoder(tmp_path / "temporal")
    assert encoder.config["temporal"] == {"hidden": 8, "in_dim": 1280, "input": "embedding"}
    held = [i for i in items_of(synthetic_root) if i.speaker == "s3"]
    # whole-clip accuracy is the last step's answer: recompute it from the stored LSTM
    hits = []
    for item in held:
        clip = clip_steps(
            item, False, True, StepConfig(10.0, 112), FaceConfig(**encoder.config["visual"]["face"])
        )
        rows = encoder.level_features("temporal", None, encoder.visual_embeddings(clip.crops))
        hits.append(int(rows[-1, 8:].argmax()) == encoder.class_names.index(item.label))
    assert entry["metrics"]["whole_clip"]["accuracy"] == round(float(np.mean(hits)), 4)
    assert entry["metrics"]["n_clips"] == len(held) == 4
