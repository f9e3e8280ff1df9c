"""``avemotion stream`` with the mini-Xception visual branch: alone and fused with audio.

The encoders are seeded, untrained networks of the shipped sizes (the streaming path is
under test, not accuracy); the mini-Xception's weights come from a stand-in file in the
Keras layout, so the test runs without ../shared."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from avemotion.cli import main

CLASSES = ["neutral", "happy", "sad", "angry"]


def _mini_xception_run(root: Path, clips: list[Path], fused: bool) -> Path:
    from avemotion.encoders.bundle import build_nets, load_encoder, save_encoder
    from avemotion.encoders.datasets import Item
    from avemotion.encoders.extract import ExtractConfig, encode_clip, store_meta
    from avemotion.encoders.steps import StepConfig
    from avemotion.store import FeatureStore
    from avemotion.training.train import train

    torch.manual_seed(0)
    config: dict = {"class_names": CLASSES, "steps_per_second": 10.0}
    config["visual"] = {"variant": "mini-xception", "fine_tune": False}
    if fused:
        config["audio"] = {"variant": "small"}
        config["fusion"] = {"hidden": 32}
        config["temporal"] = {"in_dim": 32, "hidden": 16}
    else:  # the LSTM reads the 135-d visual features
        config["temporal"] = {"in_dim": 135, "hidden": 16}
    encoder_dir = save_encoder(root / "encoder", config, build_nets(config))
    encoder = load_encoder(encoder_dir)
    steps = StepConfig(10.0, encoder.visual.input_size)
    rows = [
        encode_clip(encoder, Item(c, CLASSES[i], f"s{i % 2}", c.stem), "temporal", steps)[0]
        for i, c in enumerate(clips)
    ]
    extract = ExtractConfig(
        dataset="csv",
        root=str(root),
        encoder=str(encoder_dir),
        out=str(root / "store"),
        level="temporal",
    )
    store = FeatureStore.create(
        root / "store",
        rows,
        list(range(len(clips))),
        [f"s{i % 2}" for i in range(len(clips))],
        CLASSES,
        clip_ids=[c.stem for c in clips],
        meta=store_meta(extract, encoder, None, []),
    )
    return train(
        "dqn",
        store,
        200,
        0,
        root / "run",
        num_envs=8,
        learning_starts=64,
        batch_size=32,
        hidden=(16,),
        progress=False,
        log_every=200,
    )


@pytest.mark.parametrize("fused", [False, True], ids=["visual", "audio-visual"])
def test_stream_with_mini_xception(
    fused: bool, av_clips: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _mini_xception_run(tmp_path, av_clips, fused)
    argv = ["stream", "--video", str(av_clips[3]), "--run", str(run), "--json"]
    assert main([*argv, "--no-early-stop", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    lines = [json.loads(x) for x in captured.out.splitlines() if x.startswith("{")]
    *steps, summary = lines
    assert summary["steps_encoded"] == summary["total_steps"] == len(steps) > 0
    assert summary["decision"] in CLASSES
    used = "video and audio used" if fused else "video used"
    assert used in captured.err
