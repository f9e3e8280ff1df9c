"""``avemotion bench env``: steps per second of ``AVEmotion-v0`` beside Gymnasium's CartPole-v1."""

from __future__ import annotations

import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import avemotion  # noqa: F401  (registers AVEmotion-v0)
from avemotion.envs.vector import AVEmotionVectorEnv
from avemotion.store import FeatureStore


def random_store(
    path: Path, dim: int, n_clips: int = 512, n_classes: int = 6, seed: int = 0
) -> FeatureStore:
    """A store of random frames (clips of 20–80 steps) for speed measurements only."""
    rng = np.random.default_rng(seed)
    sequences = [
        rng.standard_normal((int(rng.integers(20, 81)), dim), dtype=np.float32)
        for _ in range(n_clips)
    ]
    labels = rng.integers(n_classes, size=n_clips)
    speakers = [f"B{i % 8}" for i in range(n_clips)]
    return FeatureStore.create(
        path,
        sequences,
        labels,
        speakers,
        [f"c{k}" for k in range(n_classes)],
        meta={"corpus": "benchmark-random"},
        overwrite=True,
    )


def best_rate(
    step: Callable[[int], Any], steps: int, repeats: int = 3, min_seconds: float = 0.0
) -> float:
    """Best-of-``repeats`` calls of ``step(i)`` per second. Each repeat makes ``steps``
    calls, then more rounds of ``steps`` until it has lasted ``min_seconds``: at 1024 envs
    20 steps take about 5 ms, too short a window to say anything on a shared machine."""
    best = 0.0
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        while True:
            for i in range(steps):
                step(calls + i)
            calls += steps
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        best = max(best, calls / elapsed)
    return best


MIN_SECONDS = 0.25
"""Shortest repeat of a full (not ``quick``) env benchmark."""


def single_env_rate(
    env_id: str, steps: int, seed: int = 0, min_seconds: float = 0.0, **kwargs: Any
) -> float:
    """Steps per second of ``gym.make(env_id)`` (default wrappers) under a random valid policy."""
    env = gym.make(env_id, **kwargs)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    n_actions = int(env.action_space.n)
    waits = rng.random(steps) < 0.9
    choices = (
        rng.integers(1, n_actions, size=steps) if n_actions > 2 else rng.integers(0, 2, size=steps)
    )
    is_avemotion = env_id.startswith("AVEmotion")
    state = {"mask": np.ones(n_actions, dtype=np.int8)}

    def step(i: int) -> None:
        if is_avemotion:
            action = 0 if waits[i] and state["mask"][0] else int(choices[i])
        else:
            action = int(choices[i])
        _, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            _, info = env.reset()
        if is_avemotion:
            state["mask"] = info["action_mask"]

    return best_rate(step, steps, min_seconds=min_seconds)


def vector_env_rate(
    store: FeatureStore,
    num_envs: int,
    steps: int,
    obs_mode: str = "frame",
    seed: int = 0,
    min_seconds: float = 0.0,
) -> float:
    """Env-steps per second (``num_envs`` × steps / s) of the native vector env."""
    env = AVEmotionVectorEnv(num_envs=num_envs, store=store, obs_mode=obs_mode)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    k = env.n_classes
    actions = np.where(
        rng.random((64, num_envs)) < 0.9, 0, rng.integers(1, k + 1, size=(64, num_envs))
    )
    return num_envs * best_rate(lambda i: env.step(actions[i % 64]), steps, min_seconds=min_seconds)


def run_env_benchmark(quick: bool = False) -> dict[str, Any]:
    """Measure everything ``avemotion bench env`` reports, in one process."""
    single_steps = 5_000 if quick else 50_000
    min_seconds = 0.0 if quick else MIN_SECONDS
    result: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "single_env_steps_per_s": {
            "AVEmotion-v0": single_env_rate("AVEmotion-v0", single_steps),
            "CartPole-v1": single_env_rate("CartPole-v1", single_steps),
        },
        "vector_env_steps_per_s": {},
    }
    rates = result["single_env_steps_per_s"]
    result["single_env_ratio_vs_cartpole"] = rates["AVEmotion-v0"] / rates["CartPole-v1"]
    with tempfile.TemporaryDirectory(prefix="avemotion-bench-") as tmp:
        for dim in (128, 1408):
            store = random_store(Path(tmp) / f"random-{dim}", dim)
            for num_envs in (1, 64, 1024):
                steps = max(20, (2_000 if quick else 20_000) // num_envs)
                for obs_mode in ("frame", "frame+mean"):
                    key = f"dim={dim},num_envs={num_envs},obs_mode={obs_mode}"
                    result["vector_env_steps_per_s"][key] = vector_env_rate(
                        store, num_envs, steps, obs_mode, min_seconds=min_seconds
                    )
    result["min_seconds_per_repeat"] = min_seconds
    return result
