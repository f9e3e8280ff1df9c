"""The fusion DNN and the LSTM step on ONNX Runtime, for the ``fast`` and ``int8`` paths.

After the branch CNNs, a step still runs the fusion DNN (batch norm, two 512-unit layers)
and one LSTM step: about 2 ms of PyTorch dispatch for some 1.2 M multiply-adds. As ONNX
Runtime graphs they took 0.77 ms together against 1.99 ms in torch (median of 200 calls,
batch 1, one thread; outputs within 1e-6). They stay in float on every path (they are
small, and the posteriors come straight out of them).
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from avemotion.encoders.fast import BranchRunner, EmbedForward, onnxruntime_available, ort_session
from avemotion.encoders.models import LSTMState, TemporalNet


class _TemporalStep(nn.Module):
    """One LSTM step from explicit state, giving what ``Encoder.temporal_step`` gives."""

    def __init__(self, net: TemporalNet) -> None:
        super().__init__()
        self.net = net

    def forward(
        self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, hidden, (h2, c2) = self.net.step(x, (h, c))
        return torch.cat([hidden, torch.softmax(logits, -1)], dim=-1), h2, c2


def _export(
    module: nn.Module, examples: tuple[torch.Tensor, ...], names: tuple, path: Path
) -> None:
    inputs, outputs = names
    with warnings.catch_warnings():  # the exporter's notes on traced shapes are expected
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            examples,
            str(path),
            input_names=list(inputs),
            output_names=list(outputs),
            opset_version=17,
            dynamo=False,
        )


class TemporalRunner:
    """``Encoder.temporal_step`` on ONNX Runtime: ``[1, D]`` features and the LSTM state
    (``None`` at a stream's start: zeros, as for ``nn.LSTM``) to ``[1, H + K]`` and the new
    state."""

    backend = "onnxruntime"

    def __init__(self, net: TemporalNet) -> None:
        self.net = net
        h, c = net.initial_state(1)
        with tempfile.TemporaryDirectory(prefix="avemotion-onnx-") as tmp:
            path = Path(tmp) / "temporal.onnx"
            names = (("x", "h", "c"), ("y", "h2", "c2"))
            _export(_TemporalStep(net), (torch.zeros(1, net.in_dim), h, c), names, path)
            self.session = ort_session(path)

    def __call__(
        self, features: torch.Tensor, state: LSTMState | None
    ) -> tuple[torch.Tensor, LSTMState]:
        h, c = state if state is not None else self.net.initial_state(1)
        y, h2, c2 = self.session.run(None, {"x": features.numpy(), "h": h.numpy(), "c": c.numpy()})
        return torch.from_numpy(y), (torch.from_numpy(h2), torch.from_numpy(c2))


def _fusion_runner(net: nn.Module, in_dim: int) -> BranchRunner:
    with tempfile.TemporaryDirectory(prefix="avemotion-onnx-") as tmp:
        path = Path(tmp) / "fusion.onnx"
        _export(EmbedForward(net), (torch.zeros(1, in_dim),), (("x",), ("y",)), path)
        session = ort_session(path)

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {"x": x.numpy()})[0])

    return BranchRunner(run, "onnxruntime")


def head_runners(encoder: Any, path: str = "fp32") -> dict[str, Any]:
    """ONNX Runtime runners of the encoder's ``fusion`` embedding and ``temporal`` step on
    the ``fast`` and ``int8`` paths (none on ``fp32`` or without onnxruntime: torch runs
    them as the encoder does)."""
    if path == "fp32" or not onnxruntime_available():
        return {}
    runners: dict[str, Any] = {}
    if encoder.fusion is not None:
        in_dim = encoder.fusion.input_norm.num_features
        runners["fusion"] = _fusion_runner(encoder.fusion, in_dim)
    if encoder.temporal is not None:
        runners["temporal"] = TemporalRunner(encoder.temporal)
    return runners
