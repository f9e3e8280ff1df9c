"""Ray RLlib: ``AVEmotion-v0`` through RLlib's Gymnasium support (new API stack).

RLlib makes its env in every env runner from a registered creator and an ``env_config``
dict. :func:`register_rllib_env` registers ``"avemotion"``, whose ``env_config`` holds the
arguments of ``gym.make("AVEmotion-v0", ...)``. Pass ``store`` as a *path*: each env runner
then opens the feature store memory-mapped instead of receiving a pickled copy.

RLlib's default modules do not read action masks; the env handles a forbidden wait
(waiting on a clip's last step) by ending the episode with ``masked_wait_reward``, so PPO
learns to avoid it.

Example::

    from avemotion.integrations.rllib import train_ppo
    print(train_ppo(iterations=3, seed=0))
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
from ray.rllib.algorithms.ppo import PPOConfig
from ray.tune.registry import register_env

RLLIB_ENV_NAME = "avemotion"
"""The name under which :func:`register_rllib_env` registers the env creator with Ray."""


def make_env(env_config: dict[str, Any]) -> gym.Env:
    """RLlib's env creator: ``gym.make("AVEmotion-v0", **env_config)``."""
    import avemotion  # noqa: F401  (registers AVEmotion-v0 inside the env runner's process)
    from avemotion.envs.registration import ENV_ID

    return gym.make(ENV_ID, **dict(env_config))


def register_rllib_env() -> str:
    """Register :func:`make_env` with Ray as ``"avemotion"`` and return that name."""
    register_env(RLLIB_ENV_NAME, make_env)
    return RLLIB_ENV_NAME


def ppo_config(
    env_config: dict[str, Any] | None = None,
    seed: int = 0,
    num_env_runners: int = 0,
    envs_per_runner: int = 2,
    batch_size: int = 400,
    hidden: int = 64,
) -> PPOConfig:
    """A small PPO configuration for ``AVEmotion-v0`` (sampling in the driver by default)."""
    store = (env_config or {}).get("store")
    if store is not None and not isinstance(store, (str, os.PathLike)):
        raise TypeError(
            "env_config['store']: pass the store's path, so each env runner memory-maps it"
        )
    return (
        PPOConfig()
        .environment(register_rllib_env(), env_config=dict(env_config or {}))
        .env_runners(
            num_env_runners=num_env_runners,
            num_envs_per_env_runner=envs_per_runner,
            rollout_fragment_length=max(
                1, batch_size // max(1, envs_per_runner * max(1, num_env_runners))
            ),
        )
        .training(
            train_batch_size_per_learner=batch_size,
            minibatch_size=min(100, batch_size),
            num_epochs=2,
            lr=3e-4,
        )
        .rl_module(model_config={"fcnet_hiddens": [hidden, hidden]})
        .debugging(seed=seed)
    )


def train_ppo(
    iterations: int = 3, seed: int = 0, torch_threads: int = 1, **ppo_kwargs: Any
) -> dict[str, float]:
    """Build PPO from :func:`ppo_config`, train ``iterations`` times, and return its last metrics.

    Starts a local Ray instance when none is running (Ray's own defaults); call
    ``ray.init(...)`` yourself beforehand to choose its resources or address.

    ``torch_threads`` is passed to ``torch.set_num_threads`` (1 is fastest for these
    small networks on a few cores).
    """
    import ray
    import torch

    torch.set_num_threads(int(torch_threads))  # the learner runs in this process
    if not ray.is_initialized():
        ray.init()
    algorithm = ppo_config(seed=seed, **ppo_kwargs).build_algo()
    try:
        returns = []
        for _ in range(iterations):
            result = algorithm.train()
            returns.append(float(result["env_runners"]["episode_return_mean"]))
        runners = result["env_runners"]
        return {
            "iterations": float(iterations),
            "env_steps": float(runners["num_env_steps_sampled_lifetime"]),
            "episodes": float(runners["num_episodes_lifetime"]),
            "first_return_mean": returns[0],
            "last_return_mean": returns[-1],
        }
    finally:
        algorithm.stop()
