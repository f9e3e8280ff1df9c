"""The measurements behind the online pipeline's speed choices, each candidate beside the
baseline in one run (so machine load affects both alike)::

    python -m avemotion.benchmarks.pipeline_parts [--quick]

- ``log_mel``: a step's 96 x 64 patch transformed whole per window against
  :class:`~avemotion.encoders.frontend.SlidingLogMel` (10 new frames per step);
- ``decode``: PyAV decoding plus RGB conversion per frame, ``frame.to_ndarray(width,
  height)`` against the single-threaded scaler kept per stream
  (:func:`~avemotion.encoders.media.rgb_reformatter`);
- ``branches``: milliseconds per batch-1 call of each branch CNN (seeded, untrained) on
  torch fp32 (``torch.no_grad`` and ``torch.inference_mode``), torch with Conv+BN folded
  (torch.fx) in ``channels_last``, TorchScript frozen, torch dynamic int8 of the linear
  layers, ONNX Runtime fp32 and ONNX Runtime static int8; the relative error of each
  against fp32. :mod:`avemotion.encoders.fast` keeps, per variant, what won here.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avemotion.store import STEPS_PER_SECOND


def _median_ms(runs: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Median wall ms of each callable, the candidates interleaved round by round."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        run()  # warm-up
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: round(1e3 * float(np.median(t)), 3) for name, t in times.items()}


def log_mel_speed(audio: np.ndarray, repeats: int) -> dict[str, Any]:
    from avemotion.encoders import frontend as fe

    hop = fe.step_hop(STEPS_PER_SECOND)
    windows = [audio[i * hop : i * hop + fe.WINDOW_SAMPLES] for i in range(fe.n_steps(len(audio)))]

    def sliding() -> None:
        mel = fe.SlidingLogMel(STEPS_PER_SECOND)
        for i, window in enumerate(windows):
            mel.patch(i, window)

    total = _median_ms(
        {"windowed": lambda: [fe.window_patch(w) for w in windows], "sliding": sliding}, repeats
    )
    return {
        "steps": len(windows),
        **{f"{k}_ms_per_step": v / len(windows) for k, v in total.items()},
    }


def decode_speed(video: Path, repeats: int) -> dict[str, Any]:
    import av

    from avemotion.encoders.media import rgb_reformatter

    def decode(reused: bool) -> None:
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            size = (stream.codec_context.width, stream.codec_context.height)
            convert = rgb_reformatter()
            for frame in container.decode(stream):
                if reused:
                    convert(frame, size)
                else:
                    frame.to_ndarray(format="rgb24", width=size[0], height=size[1])

    with av.open(str(video)) as container:  # counted: Matroska headers give no frame count
        frames = max(1, sum(1 for _ in container.decode(container.streams.video[0])))
    total = _median_ms(
        {"per_frame_scaler": lambda: decode(False), "reused_scaler": lambda: decode(True)},
        repeats,
    )
    return {"frames": frames, **{f"{k}_ms_per_frame": v / frames for k, v in total.items()}}


def _candidates(part: str, net: torch.nn.Module, x: torch.Tensor, calib: torch.Tensor) -> dict:
    """Every inference candidate of one branch that builds on this machine."""
    import torch.fx.experimental.optimization as fx_opt

    from avemotion.encoders.fast import EmbedForward, branch_runner

    module = EmbedForward(net).eval()
    built: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}

    def no_grad(t: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return module(t)

    built["torch_no_grad"] = no_grad
    built["torch_inference_mode"] = branch_runner(part, net, x, "fp32")
    try:
        fused = copy.deepcopy(module)
        body = fused.net.backbone.features if hasattr(fused.net, "backbone") else fused.net.body
        folded = fx_opt.fuse(body).to(memory_format=torch.channels_last)
        if hasattr(fused.net, "backbone"):
            fused.net.backbone.features = folded
        else:
            fused.net.body = folded
        built["torch_conv_bn_folded_channels_last"] = fused
    except Exception as error:  # noqa: BLE001 - a candidate that cannot be built is reported
        built["torch_conv_bn_folded_channels_last"] = f"not built: {type(error).__name__}"  # type: ignore[assignment]
    frozen = torch.jit.freeze(torch.jit.trace(copy.deepcopy(module), x))
    built["torchscript_frozen"] = torch.jit.optimize_for_inference(frozen)
    built["torch_dynamic_int8_linear"] = torch.ao.quantization.quantize_dynamic(
        copy.deepcopy(module), {torch.nn.Linear}, dtype=torch.qint8
    )
    built["onnxruntime_fp32"] = branch_runner(part, net, x, "fast")
    from avemotion.encoders.fast import INT8_VARIANTS, onnx_runner

    if (part, net.variant) in INT8_VARIANTS:  # type: ignore[operator]
        built["onnxruntime_static_int8"] = onnx_runner(net, x, calib)
    return built


def branch_speed(repeats: int) -> dict[str, Any]:
    from avemotion.encoders.models import AudioNet, VisualNet

    result: dict[str, Any] = {}
    torch.manual_seed(0)
    nets = [("audio", AudioNet(8, v)) for v in ("small", "vggish")]
    nets += [("visual", VisualNet(8, v)) for v in ("small", "mobilenet_v2", "mini-xception")]
    for part, net in nets:
        net.eval()
        if part == "audio":
            x, calib = torch.randn(1, 96, 64) - 4.0, torch.randn(16, 96, 64) - 4.0
        else:
            side = net.input_size
            x = torch.randint(0, 256, (1, side, side, 3), dtype=torch.uint8)
            calib = torch.randint(0, 256, (16, side, side, 3), dtype=torch.uint8)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            built = _candidates(part, net, x, calib)
        runnable = {k: v for k, v in built.items() if callable(v)}
        with torch.inference_mode():
            expected = runnable["torch_no_grad"](x)
            errors = {
                k: float((v(x) - expected).abs().max() / expected.abs().max().clamp_min(1e-12))
                for k, v in runnable.items()
            }
            speed = _median_ms({k: (lambda v=v, x=x: v(x)) for k, v in runnable.items()}, repeats)
        result[f"{part}:{net.variant}"] = {
            k: {"ms": speed[k], "relative_error": round(errors[k], 7)} if k in speed else v
            for k, v in built.items()
        }
    return result


def run_parts(data_root: Path | None = None, quick: bool = False) -> dict[str, Any]:
    """Every measurement of the module docstring, as one JSON-ready dict."""
    from avemotion.benchmarks.av_fixture import synthetic_av_clip
    from avemotion.encoders.media import load_audio
    from avemotion.shared import shared_data_root

    torch.set_num_threads(1)
    repeats = 5 if quick else 15
    root = data_root or shared_data_root()
    speech = root / "ravdess-speech-16k" / "Actor_01" / "03-01-05-02-01-01-01.flac"
    video = root / "mead-video" / "M030_front_angry_level3_001.mp4"
    missing = [str(p) for p in (speech, video) if not p.is_file()]
    fallback = f"no such file: {', '.join(missing)}" if missing else None
    if missing:  # said in the result (fallback), so synthetic figures are not taken as real
        import tempfile

        speech = video = synthetic_av_clip(Path(tempfile.mkdtemp()) / "clip.mkv", 3.9)
    return {
        "benchmark": "pipeline-parts",
        "sources": [str(speech), str(video)],
        "fallback": fallback,
        "torch_threads": 1,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "log_mel": log_mel_speed(load_audio(speech), repeats),
        "decode": decode_speed(video, repeats),
        "branches": branch_speed(repeats),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m avemotion.benchmarks.pipeline_parts")
    parser.add_argument("--quick", action="store_true", help="5 interleaved repeats, not 15")
    print(json.dumps(run_parts(quick=parser.parse_args().quick)))
