"""Networks, safe weight loading from local files, and the encoder directory round trip."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.models import mobilenet_v2

from avemotion.encoders.bundle import (
    Encoder,
    EncoderError,
    build_nets,
    load_encoder,
    load_weights,
    save_encoder,
)
from avemotion.encoders.face import FaceConfig
from avemotion.encoders.frontend import WINDOW_SAMPLES
from avemotion.encoders.models import (
    AudioNet,
    FusionNet,
    TemporalNet,
    VGGish,
    VisualNet,
    load_mobilenet_weights,
    load_vggish_weights,
)


def test_branch_shapes() -> None:
    torch.manual_seed(0)
    audio = AudioNet(6, "small").eval()
    assert audio.embed(torch.randn(3, 96, 64)).shape == (3, 128)
    assert audio(torch.randn(3, 96, 64)).shape == (3, 6)
    visual = VisualNet(6, "small").eval()
    crops = torch.randint(0, 255, (2, 112, 112, 3), dtype=torch.uint8)
    assert visual.embed(crops).shape == (2, 1280)
    fusion = FusionNet(6).eval()
    assert fusion(torch.randn(4, 1408)).shape == (4, 6)


def test_vggish_file_round_trip(tmp_path: Path) -> None:
    """A file with the converted ``pytorch_vggish.pth`` key layout loads into the VGGish variant."""
    torch.manual_seed(1)
    published = VGGish().eval()
    path = tmp_path / "pytorch_vggish.pth"
    torch.save(published.state_dict(), path)
    assert {"features.0.weight", "fc.4.bias"} <= set(torch.load(path, weights_only=True))
    net = AudioNet(8, "vggish").eval()
    load_vggish_weights(net, load_weights(path), str(path))
    patch = torch.randn(2, 96, 64)
    torch.testing.assert_close(net.embed(patch), published(patch))
    renamed = {k.replace("fc.", "embeddings."): v for k, v in published.state_dict().items()}
    torch.save(renamed, tmp_path / "vggish_embeddings_keys.pth")
    load_vggish_weights(net, load_weights(tmp_path / "vggish_embeddings_keys.pth"), "ported")
    with pytest.raises(ValueError, match="'vggish' audio variant"):
        load_vggish_weights(AudioNet(8, "small"), published.state_dict(), "x")


def test_torchvision_mobilenet_file_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(2)
    published = mobilenet_v2(weights=None, width_mult=0.35, num_classes=8).eval()
    path = tmp_path / "affectnet_mobilenet.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in published.state_dict().items()}}, path)
    net = VisualNet(7, "small").eval()
    load_mobilenet_weights(net, load_weights(path), str(path))
    crops = torch.randint(0, 255, (1, 112, 112, 3), dtype=torch.uint8)
    x = crops.permute(0, 3, 1, 2).float().div(255).sub(0.5).div(0.5)
    expected = torch.nn.functional.adaptive_avg_pool2d(published.features(x), 1).flatten(1)
    torch.testing.assert_close(net.embed(crops), expected)
    with pytest.raises(ValueError, match="does not fit"):
        load_mobilenet_weights(
            VisualNet(7, "mobilenet_v2"), published.state_dict(), "small-weights"
        )


class _Payload:
    def __reduce__(self):  # would run code if unpickled unsafely
        return (print, ("unsafe",))


def test_unsafe_or_bad_weight_files_are_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as handle:
        pickle.dump({"w": _Payload()}, handle)
    with pytest.raises(EncoderError, match="evil.pth: not a loadable tensor state dict"):
        load_weights(evil)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(EncoderError, match="junk.pth"):
        load_weights(junk)
    with pytest.raises(EncoderError, match="no such weights file"):
        load_weights(tmp_path / "absent.pth")


def test_temporal_step_equals_sequence() -> None:
    torch.manual_seed(3)
    net = TemporalNet(5, in_dim=16, hidden=8).eval()
    steps = torch.randn(1, 7, 16)
    with torch.no_grad():
        logits, hidden, _ = net(steps)
        state = None
        for t in range(7):
            step_logits, step_hidden, state = net.step(steps[:, t], state)
            torch.testing.assert_close(step_logits, logits[:, t])
            torch.testing.assert_close(step_hidden, hidden[:, t])


def _audio_visual_config() -> dict:
    return {
        "class_names": ["happy", "sad", "angry"],
        "steps_per_second": 10.0,
        "history": [],
        "audio": {"variant": "small"},
        "visual": {"variant": "small"},
        "fusion": {"hidden": 512},
        "temporal": {"hidden": 32, "in_dim": 512},
    }


def test_encoder_directory_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(4)
    config = _audio_visual_config()
    nets = build_nets(config)
    for net in nets.values():
        net.eval()
    save_encoder(tmp_path / "enc", config, nets)
    encoder = load_encoder(tmp_path / "enc")
    assert encoder.modality == "audio-visual"
    assert encoder.level_dim("embedding") == 1408 and encoder.level_dim("temporal") == 32 + 3
    window = np.random.default_rng(0).normal(0, 0.1, WINDOW_SAMPLES).astype(np.float32)
    crop = np.random.default_rng(1).integers(0, 255, (112, 112, 3), dtype=np.uint8)
    a, v = encoder.audio_embedding(window), encoder.visual_embedding(crop)
    assert a.shape == (128,) and v.shape == (1280,)
    features = encoder.step_features(torch.from_numpy(a)[None], torch.from_numpy(v)[None])
    row, state = encoder.temporal_step(features)
    assert row.shape == (1, 35) and torch.allclose(row[0, 32:].sum(), torch.tensor(1.0))
    with torch.no_grad():
        for part, net in nets.items():
            for key, value in net.state_dict().items():
                torch.testing.assert_close(getattr(encoder, part).state_dict()[key], value)
    save_encoder(tmp_path / "enc", config, nets)  # overwriting an encoder directory is atomic
    assert load_encoder(tmp_path / "enc").identity == encoder.identity


def test_encoder_directory_errors(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="config.json: missing"):
        load_encoder(tmp_path)
    config = {"class_names": ["a", "b"], "audio": {"variant": "small"}}
    save_encoder(tmp_path / "enc", config, build_nets(config))
    (tmp_path / "enc" / "audio.pt").unlink()
    with pytest.raises(EncoderError, match="audio.pt: no such weights file"):
        load_encoder(tmp_path / "enc")
    with pytest.raises(EncoderError, match="level fusion"):
        save_encoder(tmp_path / "enc2", config, build_nets(config))
        load_encoder(tmp_path / "enc2").check_level("fusion")


def test_face_search_defaults_follow_the_visual_variant() -> None:
    def face(visual: dict[str, object]) -> FaceConfig:
        config = {"class_names": ["a", "b"], "visual": visual}
        return Encoder(config, {"visual": VisualNet(2, str(visual["variant"]))}).face_config

    assert face({"variant": "mobilenet_v2"}) == FaceConfig()  # the authors' setting
    fast = face({"variant": "small"})
    assert (fast.scale_factor, fast.min_size_fraction) == (1.2, 0.35)
    assert fast.min_neighbors == FaceConfig().min_neighbors
    given = face({"variant": "small", "face": {"scale_factor": 1.1, "hold": 2}})
    assert (given.scale_factor, given.min_size_fraction, given.hold) == (1.1, 0.35, 2)


def test_mini_xception_branch_features_and_frozen_backbone() -> None:
    """135-d features (128-d embedding ⊕ 7 log-posteriors); the frozen backbone gets no
    gradient and keeps its batch-norm statistics in training mode."""
    torch.manual_seed(3)
    net = VisualNet(8, "mini-xception", fine_tune=False)
    assert (net.input_size, net.dim) == (64, 135)
    crops = torch.randint(0, 255, (4, 64, 64, 3), dtype=torch.uint8)
    net.train()
    assert not net.backbone.training and net.head.training
    features = net.embed(crops)
    assert features.shape == (4, 135)
    torch.testing.assert_close(features[:, 128:].exp().sum(1), torch.ones(4))
    before = net.backbone.bn1.running_mean.clone()
    net(crops).sum().backward()
    assert net.head.weight.grad is not None
    assert all(p.grad is None for p in net.backbone.parameters())
    torch.testing.assert_close(net.backbone.bn1.running_mean, before)
    net.set_fine_tune(True)
    net.train()
    assert net.backbone.training
    net(crops).sum().backward()
    assert net.backbone.conv1.weight.grad is not None


def test_mini_xception_encoder_round_trip(tmp_path: Path) -> None:
    """A mini-Xception visual part saves and loads with its frozen flag and 135-d features;
    fusion over it is sized 135 + 128."""
    torch.manual_seed(4)
    config = {
        "class_names": ["a", "b"],
        "visual": {"variant": "mini-xception", "fine_tune": False},
        "audio": {"variant": "small"},
        "fusion": {"hidden": 16},
    }
    nets = build_nets(config)
    assert nets["fusion"].input_norm.num_features == 135 + 128
    save_encoder(tmp_path / "enc", config, nets)
    encoder = load_encoder(tmp_path / "enc")
    assert encoder.visual is not None and not encoder.visual.fine_tune
    assert encoder.level_dim("embedding") == 135 + 128
    crops = np.random.default_rng(0).integers(0, 255, (3, 64, 64, 3), dtype=np.uint8)
    torch.testing.assert_close(
        encoder.visual_embeddings(crops), nets["visual"].eval().embed(torch.as_tensor(crops))
    )
    assert encoder.face_config.margin == 0.05
