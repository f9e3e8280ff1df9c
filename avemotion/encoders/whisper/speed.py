"""Time the packaged Whisper encoders, fp32 and int8, and how far int8 is from fp32.

``python -m avemotion.encoders.whisper.speed [--source whisper-base] [--repeats 5]``
prints one JSON line per (precision, input length): the best of ``repeats`` runs in wall
time and in the process's CPU time (which other processes on a shared machine inflate
less), at one torch thread, for log-mel + encoder on a synthetic voice. After each int8
variant: its outputs' mean absolute difference from fp32 on 3.7 s, relative to each
output's spread. ``--variants`` adds the int8 variants that ``quantize_int8``'s defaults
were chosen against.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
import torch

from avemotion.encoders.whisper.load import load_whisper
from avemotion.encoders.whisper.mel import SAMPLE_RATE, log_mel
from avemotion.encoders.whisper.model import WhisperEncoder, quantize_int8

LENGTHS = (1.0, 3.7, 10.0)


def voice(seconds: float) -> np.ndarray:
    """A harmonic glide with a syllable envelope and seeded noise: speech-like spectra."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    phase = 2 * np.pi * np.cumsum(140.0 + 20.0 * np.sin(2 * np.pi * 0.5 * t)) / SAMPLE_RATE
    wave = sum(np.sin(k * phase) / k for k in range(1, 7)) * (
        0.3 + 0.7 * np.sin(np.pi * 3 * t) ** 2
    )
    return (0.2 * wave + 0.01 * np.random.default_rng(0).standard_normal(t.size)).astype(np.float32)


def best_time(encoder: WhisperEncoder, audio: np.ndarray, repeats: int) -> tuple[float, float]:
    """Best wall and thread-CPU seconds of ``repeats`` runs of log-mel + encoder (after a warm-up)."""
    walls, cpus = [], []
    with torch.inference_mode():
        encoder(log_mel(audio)[None])
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            encoder(log_mel(audio)[None])
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def int8_deviation(fp32: WhisperEncoder, int8: WhisperEncoder, audio: np.ndarray) -> list[float]:
    """Per layer output: mean |int8 - fp32| divided by the fp32 output's standard deviation."""
    mel = log_mel(audio)[None]
    with torch.inference_mode():
        a, b = fp32.layer_outputs(mel), int8.layer_outputs(mel)
    return [round(float((b[i] - a[i]).abs().mean() / a[i].std()), 4) for i in range(len(a))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="whisper-base")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--variants", action="store_true", help="also the other int8 variants")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # torch.ao's notice
    start, cpu = time.perf_counter(), time.process_time()
    fp32 = load_whisper(args.source)
    load = {
        "load_s": round(time.perf_counter() - start, 3),
        "load_cpu_s": round(time.process_time() - cpu, 3),
    }
    print(json.dumps({"source": args.source} | load))
    encoders = {"fp32": fp32, "int8": quantize_int8(fp32)}
    if args.variants:
        encoders["int8-every-linear"] = quantize_int8(fp32, late_ffn_fp32=False)
        encoders["int8-per-matrix-every-linear"] = quantize_int8(
            fp32, per_channel=False, late_ffn_fp32=False
        )
    for name, encoder in encoders.items():
        for seconds in LENGTHS:
            wall, cpu = best_time(encoder, voice(seconds), args.repeats)
            row = {"precision": name, "seconds": seconds, "wall_ms": round(1000 * wall, 1)}
            row |= {"cpu_ms": round(1000 * cpu, 1), "rtf_cpu": round(cpu / seconds, 4)}
            print(json.dumps(row))
        if name != "fp32":
            deviation = int8_deviation(fp32, encoder, voice(3.7))
            print(json.dumps({"precision": name, "mean_abs_diff_over_std": deviation}))


if __name__ == "__main__":
    main()
