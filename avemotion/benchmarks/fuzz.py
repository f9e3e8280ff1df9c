"""``avemotion bench fuzz``: random actions and random seeds over many env steps, checking invariants.

Kept out of the default test run (a million steps takes a while); the unit tests run a
100k-step version. Every violation is counted and the first few are described.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from avemotion.envs import AVEmotionEnv, AVEmotionVectorEnv
from avemotion.envs.core import OBS_MODES
from avemotion.store import FeatureStore


class InvariantLog:
    """Counts checks and violations; keeps the first few violation messages."""

    def __init__(self) -> None:
        self.checks = 0
        self.violations: list[str] = []
        self.n_violations = 0

    def check(self, ok: bool, message: str) -> None:
        self.checks += 1
        if not ok:
            self.n_violations += 1
            if len(self.violations) < 10:
                self.violations.append(message)


def fuzz_single(
    store: FeatureStore, steps: int, rng: np.random.Generator, log: InvariantLog
) -> None:
    """Random obs modes, seeds and actions (1 % ignore the mask) on the single env."""
    done_steps = 0
    while done_steps < steps:
        env = AVEmotionEnv(
            store=store, obs_mode=str(rng.choice(OBS_MODES)), wait_cost=float(rng.uniform(0, 0.1))
        )
        obs, info = env.reset(seed=int(rng.integers(2**31)))
        episode = 0
        for _ in range(min(20_000, steps - done_steps)):
            mask = info["action_mask"]
            log.check(bool(mask[1:].all()), "a class action was masked")
            log.check(
                bool(mask[0]) == bool(info["frame_index"] < info["clip_length"] - 1),
                "wait mask wrong",
            )
            if rng.random() < 0.01:
                action = int(rng.integers(env.action_space.n))
            else:
                action = (
                    0
                    if mask[0] and rng.random() < 0.9
                    else int(rng.integers(1, env.action_space.n))
                )
            obs, reward, terminated, truncated, info = env.step(action)
            episode += 1
            done_steps += 1
            log.check(env.observation_space.contains(obs), "observation outside the space")
            log.check(
                type(reward) is float and type(terminated) is bool and truncated is False,
                "return types",
            )
            log.check(episode <= int(info["clip_length"]), "episode longer than its clip")
            if terminated:
                obs, info = env.reset(seed=int(rng.integers(2**31)) if rng.random() < 0.1 else None)
                episode = 0


def fuzz_vector(
    store: FeatureStore, steps: int, rng: np.random.Generator, log: InvariantLog
) -> None:
    """Random sizes, modes and actions on the native vector env (NEXT_STEP autoreset)."""
    done_steps = 0
    while done_steps < steps:
        n = int(rng.integers(1, 65))
        env = AVEmotionVectorEnv(num_envs=n, store=store, obs_mode=str(rng.choice(OBS_MODES)))
        obs, info = env.reset(seed=int(rng.integers(2**31)))
        episode = np.zeros(n, dtype=np.int64)
        previous_done = np.zeros(n, dtype=bool)
        for _ in range(max(1, min(2_000, (steps - done_steps) // n))):
            actions = np.where(rng.random(n) < 0.9, 0, rng.integers(1, env.n_classes + 1, size=n))
            obs, reward, terminated, truncated, info = env.step(actions)
            done_steps += n
            episode = np.where(previous_done, 0, episode + 1)
            log.check(env.observation_space.contains(obs), "vector observation outside the space")
            log.check(bool((reward[previous_done] == 0).all()), "autoreset step with a reward")
            log.check(
                bool((episode <= info["clip_length"]).all()), "vector episode longer than its clip"
            )
            log.check(
                bool((info["frame_index"] < info["clip_length"]).all()),
                "frame pointer past the clip",
            )
            previous_done = terminated | truncated


def run_fuzz(
    store: FeatureStore | None = None, steps: int = 1_000_000, seed: int = 0
) -> dict[str, Any]:
    """Fuzz ``steps`` single-env steps and ``steps`` vector env-steps; report the invariants."""
    from avemotion.envs.synthetic import synthetic_store

    store = store if store is not None else synthetic_store()
    rng = np.random.default_rng(seed)
    log = InvariantLog()
    start = time.perf_counter()
    fuzz_single(store, steps, rng, log)
    fuzz_vector(store, steps, rng, log)
    return {
        "steps_single": steps,
        "steps_vector": steps,
        "checks": log.checks,
        "violations": log.n_violations,
        "first_violations": log.violations,
        "seconds": time.perf_counter() - start,
    }
