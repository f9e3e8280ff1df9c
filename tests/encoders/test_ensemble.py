"""The audio branch as an ensemble of members, and the late-step weighting of the LSTM loss."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from avemotion.encoders.bundle import build_nets, load_encoder, save_encoder
from avemotion.encoders.extract import ExtractConfig, extract
from avemotion.encoders.loops import step_weights
from avemotion.encoders.models import AudioNet
from avemotion.encoders.train import TrainConfig, train_encoder

TINY = {"num_epochs": 1, "window_fraction": 0.05, "batch_size": 64, "threads": 1}


def test_members_concatenate_embeddings_and_average_log_posteriors() -> None:
    torch.manual_seed(0)
    net = AudioNet(5, "small", members=3).eval()
    patches = torch.randn(4, 96, 64)
    embedding = net.embed(patches)
    assert net.dim == 384 and embedding.shape == (4, 384)
    members = net.member_logits([patches] * 3)
    expected = torch.stack([torch.log_softmax(x, -1) for x in members]).mean(0)
    torch.testing.assert_close(net(patches), expected)
    for m, body in enumerate(net.body.members):  # type: ignore[union-attr]
        torch.testing.assert_close(embedding[:, 128 * m : 128 * (m + 1)], body(patches))
    net.reset_head(2)
    assert net(patches).shape == (4, 2) and net.head.in_features == 384
    with pytest.raises(ValueError, match="audio members"):
        AudioNet(5, "small", members=0)


def test_one_member_keeps_the_single_branch_layout() -> None:
    net = AudioNet(4, "small", members=1)
    assert net.dim == 128 and isinstance(net.head, torch.nn.Linear)
    assert {k.split(".")[0] for k in net.state_dict()} == {"body", "head"}


def test_ensemble_encoder_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(1)
    config = {
        "class_names": ["a", "b", "c"],
        "audio": {"variant": "small", "members": 2},
        "temporal": {
            "hidden": 8,
            "in_dim": 256 + 3 + 128,
            "input": "embedding+posteriors+statistics",
        },
    }
    save_encoder(tmp_path / "enc", config, build_nets(config))
    encoder = load_encoder(tmp_path / "enc")
    assert encoder.feature_dim == 256 + 3 + 128 and encoder.level_dim("embedding") == 256
    assert "audio:smallx2" in encoder.identity
    patches = torch.randn(6, 96, 64)
    features = encoder.step_features(encoder.audio_embeddings(patches), None, patches)
    assert features.shape == (6, 387)
    probs = torch.exp(features[:, 256:259])  # the members' normalised geometric mean
    torch.testing.assert_close(probs.sum(1), torch.ones(6))
    assert encoder.audio_embeddings(patches[:0]).shape == (0, 256)


def test_train_and_extract_an_ensemble(ravdess_root: Path, tmp_path: Path) -> None:
    enc = tmp_path / "enc"
    common = dict(
        dataset="ravdess",
        root=str(ravdess_root),
        out=str(enc),
        speaker=["Actor_02"],
        train_speakers=["Actor_01"],
    )
    train_encoder(TrainConfig(modality="audio", audio_members=2, **common, **TINY))
    assert json.loads((enc / "config.json").read_text())["audio"]["members"] == 2
    members = load_encoder(enc).audio.body.members  # type: ignore[union-attr]
    assert not torch.equal(members[0].fc[1].weight, members[1].fc[1].weight)
    entry = train_encoder(
        TrainConfig(
            modality="temporal",
            init=[str(enc)],
            temporal_input="embedding+posteriors+statistics",
            temporal_late_weight=1.0,
            num_epochs=1,
            batch_size=16,
            temporal_hidden=8,
            temporal_copies=1,
            threads=1,
            **common,
        )
    )
    assert entry["config"]["temporal_late_weight"] == 1.0
    store, _ = extract(
        ExtractConfig(
            "ravdess",
            str(ravdess_root),
            str(enc),
            str(tmp_path / "store"),
            level="embedding",
            speakers=["Actor_02"],
            workers=1,
            progress=False,
        )
    )
    assert store.dim == 256 and store.meta["parts"] == {"audio": [0, 256]}


def test_step_weights_lean_toward_the_end() -> None:
    weights = step_weights(torch.tensor([4, 2]), 4, power=1.0)
    np.testing.assert_allclose(
        weights.numpy(), [[0.25, 0.5, 0.75, 1.0], [0.5, 1.0, 0.0, 0.0]], rtol=1e-6
    )
    flat = step_weights(torch.tensor([3, 1]), 3, power=0.0)
    np.testing.assert_array_equal(flat.numpy(), [[1, 1, 1], [1, 0, 0]])
