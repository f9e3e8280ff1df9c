"""``avemotion bench fuzz``: random actions and random seeds over many env steps, checking invariants.

Kept out of the default test run (a million steps takes a while); the unit tests run a
100k-step version. Every violation is counted and the first few are described.

Every reward is checked against its value in the env's documented reward table
(:data:`DOCUMENTED_REWARDS`, the table in ``AVEmotionEnv``'s docstring), recomputed here from
the reward arguments the fuzz chose (both presets, with random overrides), never read
back from the env.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from avemotion.envs import AVEmotionEnv, AVEmotionVectorEnv
from avemotion.envs.core import OBS_MODES
from avemotion.store import FeatureStore

DOCUMENTED_REWARDS = {
    "earliness": {"correct": 1.0, "wrong": 0.0, "wait": 0.0, "masked": 0.0, "w": 1.0},
    "signed": {"correct": 1.0, "wrong": -1.0, "wait": 0.01, "masked": -1.0, "w": 0.0},
}
"""The documented presets: a correct answer after t of T steps earns ``correct · (1 − w·t/T)``,
a wrong one ``wrong``, a wait ``-wait``, a wait on the last step ``masked``."""
ARGUMENTS = {
    "reward_correct": "correct",
    "reward_wrong": "wrong",
    "wait_cost": "wait",
    "masked_wait_reward": "masked",
    "earliness_weight": "w",
}
"""The env's reward arguments and the table entry each one replaces."""
ENV_STEPS = 1_000
"""Single-env steps before the fuzz builds a new env (new obs mode and reward arguments)."""
REWARD_TOLERANCE = 1e-6
"""float32 rewards of the vector env differ from the float64 table by rounding only."""


def random_reward_arguments(rng: np.random.Generator) -> dict[str, Any]:
    """A preset and, for each other reward argument, a random override half of the time."""
    arguments: dict[str, Any] = {"reward": str(rng.choice(list(DOCUMENTED_REWARDS)))}
    for name in ARGUMENTS:
        if rng.random() < 0.5:
            arguments[name] = float(
                rng.uniform(0.0, 1.0) if name == "earliness_weight" else rng.uniform(-1.0, 1.0)
            )
    return arguments


def documented_table(arguments: dict[str, Any]) -> dict[str, float]:
    """The reward table the env's documentation promises for these arguments."""
    table = dict(DOCUMENTED_REWARDS[arguments["reward"]])
    for name, entry in ARGUMENTS.items():
        if name in arguments:
            table[entry] = float(arguments[name])
    return table


def documented_reward(
    table: dict[str, float],
    action: np.ndarray | int,
    label: np.ndarray | int,
    frame_index: np.ndarray | int,
    length: np.ndarray | int,
) -> np.ndarray:
    """Reward of ``action`` taken at step ``frame_index`` (0-based) of a clip of ``length`` steps.

    Works elementwise on arrays (one entry per sub-env of a vector env).
    """
    action, label = np.asarray(action), np.asarray(label)
    frame_index, length = np.asarray(frame_index), np.asarray(length)
    wait = np.where(frame_index < length - 1, -table["wait"], table["masked"])
    correct = table["correct"] * (1.0 - table["w"] * (frame_index + 1) / length)
    answer = np.where(action - 1 == label, correct, table["wrong"])
    return np.where(action == 0, wait, answer)


class InvariantLog:
    """Counts checks and violations (in total and per kind); keeps the first few messages."""

    def __init__(self) -> None:
        self.checks = 0
        self.violations: list[str] = []
        self.n_violations = 0
        self.by_kind: dict[str, int] = {}
        self.rewards_checked = dict.fromkeys(DOCUMENTED_REWARDS, 0)
        """Rewards checked against the documented table, per preset."""

    def check(self, ok: bool, kind: str, detail: str = "") -> None:
        """Count one check of invariant ``kind``; on a violation keep ``kind: detail``."""
        self.checks += 1
        if not ok:
            self.n_violations += 1
            self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
            if len(self.violations) < 10:
                self.violations.append(f"{kind}: {detail}" if detail else kind)


def fuzz_single(
    store: FeatureStore, steps: int, rng: np.random.Generator, log: InvariantLog
) -> None:
    """Random obs modes, rewards, seeds and actions (1 % ignore the mask) on the single env."""
    done_steps = 0
    while done_steps < steps:
        arguments = random_reward_arguments(rng)
        table = documented_table(arguments)
        env = AVEmotionEnv(store=store, obs_mode=str(rng.choice(OBS_MODES)), **arguments)
        obs, info = env.reset(seed=int(rng.integers(2**31)))
        episode = 0
        for _ in range(min(ENV_STEPS, steps - done_steps)):
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
            expected = float(
                documented_reward(
                    table, action, info["label"], info["frame_index"], info["clip_length"]
                )
            )
            obs, reward, terminated, truncated, info = env.step(action)
            episode += 1
            done_steps += 1
            log.check(
                abs(float(reward) - expected) <= REWARD_TOLERANCE,
                "reward off the documented table",
                f"{reward} != {expected} ({arguments}, action {action})",
            )
            log.rewards_checked[arguments["reward"]] += 1
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
    """Random sizes, modes, rewards and actions on the native vector env (NEXT_STEP autoreset)."""
    done_steps = 0
    while done_steps < steps:
        n = int(rng.integers(1, 65))
        arguments = random_reward_arguments(rng)
        table = documented_table(arguments)
        env = AVEmotionVectorEnv(
            num_envs=n, store=store, obs_mode=str(rng.choice(OBS_MODES)), **arguments
        )
        obs, info = env.reset(seed=int(rng.integers(2**31)))
        episode = np.zeros(n, dtype=np.int64)
        previous_done = np.zeros(n, dtype=bool)
        for _ in range(max(1, min(2_000, (steps - done_steps) // n))):
            actions = np.where(rng.random(n) < 0.9, 0, rng.integers(1, env.n_classes + 1, size=n))
            expected = documented_reward(
                table, actions, info["label"], info["frame_index"], info["clip_length"]
            )
            expected[previous_done] = 0.0  # NEXT_STEP autoreset: the reset step earns nothing
            obs, reward, terminated, truncated, info = env.step(actions)
            done_steps += n
            episode = np.where(previous_done, 0, episode + 1)
            log.check(env.observation_space.contains(obs), "vector observation outside the space")
            log.check(bool((reward[previous_done] == 0).all()), "autoreset step with a reward")
            log.check(
                bool((np.abs(reward - expected) <= REWARD_TOLERANCE).all()),
                "vector reward off the documented table",
                f"{reward.tolist()} != {expected.tolist()} ({arguments})",
            )
            log.rewards_checked[arguments["reward"]] += n
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
        "violations_by_kind": log.by_kind,
        "rewards_checked": log.rewards_checked,
        "first_violations": log.violations,
        "seconds": time.perf_counter() - start,
    }
