"""Branches from published weights files, and the fold copies cross-fitting makes of them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from avemotion.encoders import mini_xception
from avemotion.encoders.bundle import EncoderError
from avemotion.encoders.models import AudioNet
from avemotion.encoders.published import branch_from_weights, fold_copy

CLASSES = ("angry", "happy", "sad")


def vggish_file(tmp_path: Path, seed: int) -> Path:
    """A stand-in ``pytorch_vggish.pth``: a seeded VGGish body's state dict."""
    torch.manual_seed(seed)
    path = tmp_path / "pytorch_vggish.pth"
    torch.save(AudioNet(8, "vggish").body.state_dict(), path)
    return path


def test_an_audio_file_is_vggish_and_its_section_names_it(tmp_path: Path) -> None:
    path = vggish_file(tmp_path, 3)
    net, section = branch_from_weights("audio", path, CLASSES)
    assert section == {"variant": "vggish", "weights": str(path)}
    assert net.head.out_features == len(CLASSES)
    for name, value in torch.load(path, weights_only=True).items():
        torch.testing.assert_close(net.body.state_dict()[name], value, rtol=0, atol=0)


def test_a_keras_file_is_the_mini_xception_frozen_unless_fine_tuned(tmp_path: Path) -> None:
    torch.manual_seed(4)
    keras = mini_xception.write_keras_weights(mini_xception.MiniXception(), tmp_path / "f.hdf5")
    net, section = branch_from_weights("visual", keras, CLASSES)
    assert (net.variant, net.fine_tune, section["variant"]) == (
        "mini-xception",
        False,
        "mini-xception",
    )
    net, _ = branch_from_weights("visual", keras, CLASSES, fine_tune=True)
    assert net.fine_tune


def test_a_weights_file_for_a_stage_that_is_no_branch_is_one_line(tmp_path: Path) -> None:
    path = vggish_file(tmp_path, 0)
    with pytest.raises(EncoderError) as error:
        branch_from_weights("fusion", path, CLASSES)
    assert str(error.value) == (
        f"{path}: a weights file initialises a branch; for fusion pass an encoder directory"
    )


def test_a_fold_copy_restarts_from_the_file_not_from_the_trained_branch(tmp_path: Path) -> None:
    """The trained branch's body has moved away from the file; the fold copy's equals the
    file's again. A section naming no file, or a part that is no branch, gives no copy."""
    path = vggish_file(tmp_path, 5)
    trained, section = branch_from_weights("audio", path, CLASSES)
    with torch.no_grad():
        for parameter in trained.body.parameters():
            parameter.add_(1.0)
    copy = fold_copy(section, "audio", CLASSES)
    for name, value in torch.load(path, weights_only=True).items():
        torch.testing.assert_close(copy.body.state_dict()[name], value, rtol=0, atol=0)
    assert fold_copy({"variant": "small"}, "audio", CLASSES) is None
    assert fold_copy({"weights": str(path)}, "fusion", CLASSES) is None
