"""Faster inference for the branch CNNs of a step: the same weights on a quicker backend.

The online recognizer embeds one step at a time (a batch of one patch and one crop, or the
step's new pooled frames), where PyTorch spends much of its time dispatching small
operators. Three inference paths, each kept for a branch variant only where it won on the
2-core development machine (the figures below):

- ``fp32``: the torch modules as trained, under ``torch.inference_mode``;
- ``fast``: the same float arithmetic through ONNX Runtime (the optional ``.[onnx]``
  extra), which folds batch norm into the convolutions and runs the graph without
  Python dispatch; outputs agree with ``fp32`` to about 1e-6 relative. Without
  onnxruntime installed, ``fast`` falls back to ``fp32``;
- ``int8``: ``fast``, with the convolution-heavy paper-sized branches (VGGish, MobileNetV2
  at 224 px) statically quantised to int8 by ONNX Runtime (per-channel int8 weights, uint8
  activations whose ranges are calibrated on given real inputs: log-mel patches for the
  audio branch, face crops for the visual one). Its accuracy must be checked on a store.

What won is measured by ``python -m avemotion.benchmarks.pipeline_parts`` (every candidate
beside torch fp32 in one run, batch 1, one thread). One ``--quick`` run at load average 3.2
on the 2-core machine, ms per call, torch ``inference_mode`` / ONNX Runtime fp32 / ORT int8:
small visual 17.2 / 1.8 / -, MobileNetV2 224 px 42.4 / 14.8 / 11.6, mini-Xception 4.3 /
1.9 / -, small audio 0.90 / 0.44 / -, VGGish 85.7 / 63.2 / 28.8. Not kept, as each lost to
ONNX Runtime in the same run: TorchScript freezing (small visual 7.8, MobileNetV2 24.0,
VGGish 82.2), torch.fx Conv+BN folding with ``channels_last`` (MobileNetV2 32.8, VGGish
71.6; ORT folds batch norm itself), torch dynamic int8 of the linear layers (VGGish 72.8:
the convolutions dominate). ``torch.inference_mode`` is what the ``fp32`` path runs under.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

INFERENCE_PATHS = ("fp32", "fast", "int8")
"""Inference paths a recognizer can run its branch CNNs on (see the module docstring)."""
ONNX_VARIANTS = {
    ("audio", "small"),
    ("audio", "vggish"),
    ("visual", "small"),
    ("visual", "mobilenet_v2"),
    ("visual", "mini-xception"),
}
"""Branch variants that ONNX Runtime runs faster than torch (``fast`` and ``int8``)."""
INT8_VARIANTS = {("audio", "vggish"), ("visual", "mobilenet_v2")}
"""Branch variants quantised on the ``int8`` path (the small ones gain little)."""


@dataclass
class Calibration:
    """Real inputs whose activation ranges set the int8 scales: log-mel patches
    ``[N, 96, 64]`` for the audio branch, uint8 face crops ``[N, S, S, 3]`` for the visual."""

    patches: torch.Tensor | None = None
    crops: torch.Tensor | None = None


class BranchRunner:
    """One branch's ``embed`` on the backend its variant and the path chose."""

    def __init__(self, run: Callable[[torch.Tensor], torch.Tensor], backend: str) -> None:
        self._run, self.backend = run, backend

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x)


class EmbedForward(nn.Module):
    """The branch's ``embed`` as a module's ``forward`` (what the ONNX exporter traces)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.embed(x)


def onnxruntime_available() -> bool:
    """Whether the optional ``onnx`` extra (onnxruntime) is installed (a broken install
    then fails where it is imported, instead of silently running fp32 torch)."""
    return importlib.util.find_spec("onnxruntime") is not None


def _torch_runner(net: nn.Module) -> BranchRunner:
    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return net.embed(x)

    return BranchRunner(run, "torch")


def _export(net: nn.Module, example: torch.Tensor, path: Path) -> None:
    import warnings

    with warnings.catch_warnings():  # the exporter's notes on traced shapes are expected
        warnings.simplefilter("ignore")
        torch.onnx.export(
            EmbedForward(net).eval(),
            (example,),
            str(path),
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )


def ort_session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _quantise(source: Path, out: Path, inputs: torch.Tensor) -> None:
    """Static int8 (QDQ, per-channel int8 weights, uint8 activations) calibrated on ``inputs``."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.rows = iter([{"x": row[None].numpy()} for row in inputs])

        def get_next(self) -> dict[str, Any] | None:
            return next(self.rows, None)

    prepared = out.with_name("prepared.onnx")
    quant_pre_process(str(source), str(prepared))
    quantize_static(
        str(prepared),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
    )


def onnx_runner(
    net: nn.Module, example: torch.Tensor, calibration: torch.Tensor | None
) -> BranchRunner:
    with tempfile.TemporaryDirectory(prefix="avemotion-onnx-") as tmp:
        model = Path(tmp) / "branch.onnx"
        _export(net, example, model)
        if calibration is not None:
            quantised = Path(tmp) / "branch-int8.onnx"
            _quantise(model, quantised, calibration)
            model = quantised
        session = ort_session(model)  # reads the file now: the directory may go

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {"x": x.numpy()})[0])

    return BranchRunner(run, "onnxruntime-int8" if calibration is not None else "onnxruntime")


def branch_runner(
    part: str,
    net: nn.Module,
    example: torch.Tensor,
    path: str = "fp32",
    calibration: torch.Tensor | None = None,
) -> BranchRunner:
    """The fastest measured runner of ``net.embed`` (``part`` ``audio`` or ``visual``) on
    ``path``; ``example`` is one input of the shape the branch takes (batch 1).

    Raises ``ValueError`` for an unknown path, or for ``int8`` without onnxruntime or
    without calibration inputs for a quantised variant.
    """
    if path not in INFERENCE_PATHS:
        raise ValueError(f"inference: expected one of {list(INFERENCE_PATHS)}, got {path!r}")
    variant = (part, getattr(net, "variant", ""))
    if path == "fp32" or variant not in ONNX_VARIANTS:
        return _torch_runner(net)
    if not onnxruntime_available():
        if path == "int8":
            raise ValueError("inference int8: needs onnxruntime (pip install 'avemotion[onnx]')")
        return _torch_runner(net)
    if path == "int8" and variant in INT8_VARIANTS:
        if calibration is None or len(calibration) == 0:
            raise ValueError(
                f"inference int8: the {part} branch ({variant[1]}) needs calibration inputs "
                "(real log-mel patches or face crops) to set its int8 ranges"
            )
        return onnx_runner(net, example, calibration)
    return onnx_runner(net, example, None)


def accelerate(
    encoder: Any, path: str = "fp32", calibration: Calibration | None = None
) -> dict[str, BranchRunner]:
    """Runners for the ``audio`` and ``visual`` branches an :class:`Encoder` has."""
    calibration = calibration or Calibration()
    runners: dict[str, BranchRunner] = {}
    if encoder.audio is not None:
        example = torch.zeros(1, 96, 64)
        runners["audio"] = branch_runner("audio", encoder.audio, example, path, calibration.patches)
    if encoder.visual is not None:
        side = encoder.visual.input_size
        example = torch.zeros(1, side, side, 3, dtype=torch.uint8)
        runners["visual"] = branch_runner(
            "visual", encoder.visual, example, path, calibration.crops
        )
    return runners


__all__ = [
    "INFERENCE_PATHS",
    "BranchRunner",
    "Calibration",
    "accelerate",
    "branch_runner",
    "onnxruntime_available",
]
