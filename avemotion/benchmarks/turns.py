"""``avemotion bench turns``: an hour of conversation through ``stream --turns``: resident
memory at the start and the end, and the real-time factor.

The audio is a synthetic conversation (voiced tones of 1–4 s, pauses 0.4–2.0 s, light
noise), generated 0.1 s at a time so the benchmark itself holds no hour of audio; turns
are found by the energy detector (Silero, rightly, finds no speech in tones: its cost per
second of audio is measured apart, in docs/conversation.md). The recogniser is the default
audio encoder's shape (an ensemble of 3 small CNNs, the LSTM reading embeddings, posteriors
and log-mel statistics), untrained, with an agent that never answers early: every turn
is encoded to its end, the costliest case. With ``run``, a trained run is streamed instead.
``real_time_factor`` is wall time over audio time; ``real_time_factor_cpu`` the process's
CPU time over audio time, which is what one free core would give on a shared machine
(``load_average`` says how shared it was).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avemotion.benchmarks.conversation import synthetic_conversation
from avemotion.benchmarks.pipeline_setup import CLASS_NAMES, WaitingAgent
from avemotion.encoders.media import AUDIO_RATE
from avemotion.store import STEPS_PER_SECOND

WARM_UP_S = 20.0
"""Audio streamed (another seed) before the start is measured: torch's and oneDNN's
first-inference allocations (about 50 MB) are a one-time cost, not growth."""
TARGETS = {"memory_growth_mb": 50.0, "real_time_factor": 0.15}


def resident_mb() -> float:
    """This process's resident memory (VmRSS, Linux), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("/proc/self/status: no VmRSS line (resident memory needs Linux)")


def default_audio_recognizer(work: Path) -> Any:
    """An untrained recogniser of the default audio encoder's shape, never answering early."""
    from avemotion.agents.dqn import DQNConfig, make_q_network
    from avemotion.agents.policy import DQNAgent
    from avemotion.encoders.bundle import build_nets, load_encoder, save_encoder
    from avemotion.envs.core import ObservationLayout
    from avemotion.online.recognizer import OnlineRecognizer
    from avemotion.store import FeatureStore

    members, k = 3, len(CLASS_NAMES)
    config = {
        "class_names": list(CLASS_NAMES),
        "steps_per_second": STEPS_PER_SECOND,
        "audio": {"variant": "small", "members": members},
        "temporal": {
            "in_dim": 128 * members + k + 128,
            "hidden": 128,
            "input": "embedding+posteriors+statistics",
        },
    }
    torch.manual_seed(0)
    encoder = load_encoder(save_encoder(work / "encoder", config, build_nets(config)))
    dim = encoder.level_dim("temporal")
    store = FeatureStore.create(
        work / "store", [np.zeros((60, dim), np.float32)], [0], ["bench"], CLASS_NAMES
    )
    layout = ObservationLayout(store, "frame+mean")
    dqn = DQNConfig()
    network = make_q_network(dqn, layout.size, k + 1, dim)
    agent = WaitingAgent(DQNAgent(network, dqn.obs_mode))
    return OnlineRecognizer(encoder, agent, layout, "temporal", CLASS_NAMES)


def run_turns_benchmark(
    seconds: float = 3600.0, run: str | None = None, seed: int = 0
) -> dict[str, Any]:
    """Stream ``seconds`` of synthetic conversation; resident memory after loading, after a
    warm-up (the start), every minute of audio and at the end (growth: end − start)."""
    from avemotion.online.recognizer import OnlineRecognizer
    from avemotion.online.turns import TurnStreamer
    from avemotion.online.vad import EnergyDetector, TurnConfig, TurnTracker

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as work:
        recognizer = OnlineRecognizer.from_run(run) if run else default_audio_recognizer(Path(work))
        loaded_mb = resident_mb()
        warm = TurnStreamer(recognizer, TurnTracker(EnergyDetector(), TurnConfig()))
        for chunk in synthetic_conversation(WARM_UP_S, seed + 1):  # first-inference allocations
            warm.feed_audio(chunk)
        warm.finish()
        streamer = TurnStreamer(recognizer, TurnTracker(EnergyDetector(), TurnConfig()))
        start_mb = resident_mb()
        memory, wall, cpu = _stream(streamer, seconds, seed)
        end_mb = resident_mb()
    first = memory[0] if memory else start_mb
    return {
        "benchmark": "turns",
        "audio_seconds": seconds,
        "recognizer": run or "default audio encoder shape, untrained, never answering early",
        "threads": 1,
        "turns": len(streamer.turns),
        "steps_encoded": streamer.steps_encoded,
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "real_time_factor": round(wall / seconds, 4),
        "real_time_factor_cpu": round(cpu / seconds, 4),
        "load_average": [round(x, 1) for x in os.getloadavg()],
        "resident_mb_loaded": round(loaded_mb, 1),
        "resident_mb_start": round(start_mb, 1),
        "resident_mb_after_first_minute": first,
        "resident_mb_end": round(end_mb, 1),
        "memory_growth_mb": round(end_mb - start_mb, 1),
        "resident_mb_per_minute": memory,
        "targets": TARGETS,
    }


def _stream(streamer: Any, seconds: float, seed: int) -> tuple[list[float], float, float]:
    """Stream the conversation; resident MB after each minute of audio, wall and CPU s."""
    memory: list[float] = []
    started, cpu_started = time.perf_counter(), time.process_time()
    minute = 60 * AUDIO_RATE
    for chunk in synthetic_conversation(seconds, seed):
        before = streamer.now
        streamer.feed_audio(chunk)
        if streamer.now // minute > before // minute:
            memory.append(round(resident_mb(), 1))
    streamer.finish()
    return memory, time.perf_counter() - started, time.process_time() - cpu_started
