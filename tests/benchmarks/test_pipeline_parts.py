"""The speed-choice measurements run, and each float candidate computes what fp32 does
(speed itself is not asserted)."""

from __future__ import annotations

from pathlib import Path

import torch
from optional_extras import require_extra

from avemotion.benchmarks.av_fixture import synthetic_av_clip
from avemotion.benchmarks.pipeline_parts import _candidates, decode_speed, log_mel_speed
from avemotion.encoders.media import load_audio
from avemotion.encoders.models import AudioNet


def test_log_mel_and_decode_measurements(tmp_path: Path) -> None:
    clip = synthetic_av_clip(tmp_path / "clip.mkv", seconds=1.6, size=128)
    mel = log_mel_speed(load_audio(clip), repeats=2)
    assert mel["steps"] == 7  # (1.6 s - 0.975 s) / 0.1 s + 1
    assert mel["windowed_ms_per_step"] > 0 and mel["sliding_ms_per_step"] > 0
    decode = decode_speed(clip, repeats=2)
    assert decode["frames"] == 40  # 1.6 s at 25 fps
    assert decode["per_frame_scaler_ms_per_frame"] > 0 and decode["reused_scaler_ms_per_frame"] > 0


def test_float_candidates_compute_the_fp32_embedding() -> None:
    require_extra("onnxruntime", "onnx")
    torch.manual_seed(0)
    net = AudioNet(4, "small").eval()
    x = torch.randn(1, 96, 64)
    built = _candidates("audio", net, x, torch.randn(4, 96, 64))
    assert "onnxruntime_static_int8" not in built  # the small branch is not quantised
    with torch.inference_mode():
        expected = net.embed(x)
        for name in (
            "torch_no_grad",
            "torch_inference_mode",
            "torch_conv_bn_folded_channels_last",
            "torchscript_frozen",
            "onnxruntime_fp32",
        ):
            torch.testing.assert_close(built[name](x), expected, rtol=1e-5, atol=1e-5)
        # dynamic int8 of the linear layer is close, not equal
        dynamic = built["torch_dynamic_int8_linear"](x)
        assert not torch.equal(dynamic, expected)
        assert torch.nn.functional.cosine_similarity(dynamic, expected).item() > 0.99
