"""Faster inference paths of the branch CNNs: the same embeddings (fp32 on ONNX Runtime),
close ones (int8), and one-line refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from optional_extras import require_extra

from avemotion.encoders.fast import Calibration, branch_runner
from avemotion.encoders.frontend import step_patches
from avemotion.encoders.models import AudioNet, VisualNet

require_extra("onnxruntime", "onnx")


def _voice(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    wave = sum(np.sin(2 * np.pi * k * 180.0 * t) / k for k in range(1, 6))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t) ** 2
    noise = 0.01 * np.random.default_rng(0).standard_normal(t.size)
    return (0.2 * envelope * wave + noise).astype(np.float32)


@pytest.mark.parametrize("variant", ["small", "mini-xception"])
def test_onnx_runtime_gives_the_torch_embedding(variant: str) -> None:
    torch.manual_seed(0)
    net = VisualNet(4, variant).eval()
    side = net.input_size
    runner = branch_runner("visual", net, torch.zeros(1, side, side, 3, dtype=torch.uint8), "fast")
    assert runner.backend == "onnxruntime"
    crops = torch.randint(0, 256, (3, side, side, 3), dtype=torch.uint8)  # a batch of 3
    with torch.inference_mode():
        expected = net.embed(crops)
    torch.testing.assert_close(runner(crops), expected, rtol=1e-5, atol=1e-5)
    fp32 = branch_runner("visual", net, crops[:1], "fp32")
    assert fp32.backend == "torch"
    assert torch.equal(fp32(crops), expected)


def test_int8_needs_calibration_and_stays_close() -> None:
    torch.manual_seed(0)
    net = AudioNet(4, "vggish").eval()
    example = torch.zeros(1, 96, 64)
    with pytest.raises(ValueError, match="inference int8: the audio branch .vggish. needs"):
        branch_runner("audio", net, example, "int8", None)
    with pytest.raises(ValueError, match="inference: expected one of"):
        branch_runner("audio", net, example, "fp16")
    patches = step_patches(_voice(3.0))
    runner = branch_runner("audio", net, example, "int8", patches[::2])
    assert runner.backend == "onnxruntime-int8"
    with torch.inference_mode():
        expected = net.embed(patches[1::2])
    got = runner(patches[1::2])
    cosine = torch.nn.functional.cosine_similarity(got, expected, dim=-1)
    assert cosine.min() > 0.99, cosine
    # the small variants are not quantised: int8 runs them in float through ONNX Runtime
    small = AudioNet(4, "small").eval()
    assert branch_runner("audio", small, example, "int8", None).backend == "onnxruntime"
    assert Calibration().patches is None
