"""Ray RLlib: ``AVEmotion-v0`` through RLlib's Gymnasium support (new API stack), action mask kept.

RLlib makes its env in every env runner from a registered creator and an ``env_config``
dict. :func:`register_rllib_env` registers ``"avemotion"``, whose ``env_config`` holds the
arguments of ``gym.make("AVEmotion-v0", ...)``. Pass ``store`` as a *path*: each env runner
then opens the feature store memory-mapped instead of receiving a pickled copy.

RLlib's default RLModules ignore action masks. As RLlib documents for masking, the env
puts the mask in a ``Dict`` observation (:class:`MaskInObservation`:
``{"observations": ..., "action_mask": ...}``) and a custom RLModule
(:class:`MaskedPPOTorchRLModule`) feeds only ``"observations"`` to PPO's networks and
pushes the logits of forbidden actions to the float minimum, so that sampling, greedy
inference and the PPO loss never take the wait that is forbidden on a clip's last step.
The wrapper refuses a masked action with :class:`~avemotion.envs.InvalidActionError`
(``env_config={"strict_mask": False}`` lets the env score it instead), so a masking bug
stops training rather than hiding in the returns.

Example::

    from avemotion.integrations.rllib import train_ppo
    print(train_ppo(iterations=3, seed=0))
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.algorithms.ppo.torch.default_ppo_torch_rl_module import DefaultPPOTorchRLModule
from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModule, RLModuleSpec
from ray.tune.registry import register_env

from avemotion.envs.core import InvalidActionError

RLLIB_ENV_NAME = "avemotion"
"""The name under which :func:`register_rllib_env` registers the env creator with Ray."""
OBS_KEY, MASK_KEY = "observations", "action_mask"
"""The keys of the Dict observation that RLlib's action-masking modules read."""


class MaskInObservation(gym.ObservationWrapper):
    """Observation ``{"observations": <env observation>, "action_mask": <float32 mask, 1 = allowed>}``.

    With ``strict`` (default) a masked action raises instead of reaching the env.
    """

    def __init__(self, env: gym.Env, strict: bool = True) -> None:
        super().__init__(env)
        self.strict = bool(strict)
        n_actions = int(env.action_space.n)
        self.observation_space = gym.spaces.Dict(
            {
                OBS_KEY: env.observation_space,
                MASK_KEY: gym.spaces.Box(0.0, 1.0, (n_actions,), np.float32),
            }
        )
        self._mask = np.ones(n_actions, dtype=np.float32)

    def reset(self, **kwargs: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._mask = np.asarray(info["action_mask"], dtype=np.float32)
        return self.observation(obs), info

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self.strict and not self._mask[int(action)]:
            raise InvalidActionError(f"action: {int(action)} is masked (0 = wait on a last step)")
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._mask = np.asarray(info["action_mask"], dtype=np.float32)
        return self.observation(obs), reward, terminated, truncated, info

    def observation(self, observation: np.ndarray) -> dict[str, np.ndarray]:
        return {OBS_KEY: observation, MASK_KEY: self._mask.copy()}


class MaskedPPOTorchRLModule(DefaultPPOTorchRLModule):
    """RLlib's default PPO module on ``"observations"``, with forbidden actions' logits at float min.

    Built for the Dict observation space of :class:`MaskInObservation`; its networks see
    only the ``"observations"`` part. Every forward pass (exploration, inference, training)
    and the value function read the batch without changing it.
    """

    def __init__(self, *, observation_space: gym.spaces.Dict | None = None, **kwargs: Any) -> None:
        if not isinstance(observation_space, gym.spaces.Dict) or set(observation_space) != {
            OBS_KEY,
            MASK_KEY,
        }:
            raise ValueError(
                f"observation_space: expected a Dict with keys {OBS_KEY!r} and {MASK_KEY!r} "
                f"(wrap the env in MaskInObservation), got {observation_space}"
            )
        super().__init__(observation_space=observation_space[OBS_KEY], **kwargs)
        self.observation_space = observation_space

    @staticmethod
    def _split(batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        """The mask, and a shallow copy of ``batch`` whose observations are the env's own."""
        inner = dict(batch)
        observations = batch[Columns.OBS]
        inner[Columns.OBS] = observations[OBS_KEY]
        return observations[MASK_KEY], inner

    @staticmethod
    def _masked(outputs: dict[str, Any], mask: torch.Tensor) -> dict[str, Any]:
        logits = outputs[Columns.ACTION_DIST_INPUTS]
        floor = torch.finfo(logits.dtype).min
        outputs[Columns.ACTION_DIST_INPUTS] = torch.where(mask > 0.5, logits, floor)
        return outputs

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        mask, inner = self._split(batch)
        return self._masked(super()._forward(inner, **kwargs), mask)

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        mask, inner = self._split(batch)
        return self._masked(super()._forward_train(inner, **kwargs), mask)

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> torch.Tensor:
        if embeddings is None and isinstance(batch[Columns.OBS], dict):
            batch = self._split(batch)[1]
        return super().compute_values(batch, embeddings)


def make_env(env_config: dict[str, Any]) -> MaskInObservation:
    """RLlib's env creator: ``gym.make("AVEmotion-v0", **env_config)`` with the mask in the observation.

    ``env_config["strict_mask"]`` (default True) is :class:`MaskInObservation`'s ``strict``.
    """
    import avemotion  # noqa: F401  (registers AVEmotion-v0 inside the env runner's process)
    from avemotion.envs.registration import ENV_ID

    config = dict(env_config)
    strict = bool(config.pop("strict_mask", True))
    return MaskInObservation(gym.make(ENV_ID, **config), strict=strict)


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
    lr: float = 3e-4,
    num_epochs: int = 2,
) -> PPOConfig:
    """A small masked PPO configuration for ``AVEmotion-v0`` (sampling in the driver by default)."""
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
            num_epochs=num_epochs,
            lr=lr,
        )
        .rl_module(
            rl_module_spec=RLModuleSpec(
                module_class=MaskedPPOTorchRLModule,
                model_config={"fcnet_hiddens": [hidden, hidden]},
            )
        )
        .debugging(seed=seed)
    )


def greedy_actions(module: RLModule, observations: dict[str, np.ndarray]) -> np.ndarray:
    """The module's greedy (inference) actions for a batch of Dict observations."""
    batch = {Columns.OBS: {k: torch.as_tensor(v) for k, v in observations.items()}}
    with torch.no_grad():
        logits = module.forward_inference(batch)[Columns.ACTION_DIST_INPUTS]
    return logits.argmax(dim=-1).numpy()


def evaluate_greedy(module: RLModule, env_config: dict[str, Any]) -> dict[str, float]:
    """Play every selected clip once (sequentially) with the module's greedy actions.

    Returns accuracy, earliness (steps observed / clip length), mean return and the number
    of episodes that ended by waiting on a clip's last step (the mask makes it 0).
    """
    env = make_env({**env_config, "sampling": "sequential", "strict_mask": False})
    n_clips = env.unwrapped.store.n_clips
    correct, earliness, returns, masked_waits = [], [], [], 0
    obs, info = env.reset(seed=0)
    for _ in range(n_clips):
        total, terminated = 0.0, False
        while not terminated:
            action = int(greedy_actions(module, {k: v[None] for k, v in obs.items()})[0])
            obs, reward, terminated, _, info = env.step(action)
            total += float(reward)
        correct.append(int(info["prediction"]) == int(info["label"]))
        earliness.append((int(info["frame_index"]) + 1) / int(info["clip_length"]))
        masked_waits += int(info["prediction"]) < 0
        returns.append(total)
        obs, info = env.reset()
    env.close()
    return {
        "accuracy": float(np.mean(correct)),
        "earliness": float(np.mean(earliness)),
        "mean_return": float(np.mean(returns)),
        "masked_waits": float(masked_waits),
        "episodes": float(n_clips),
    }


def train_ppo(
    iterations: int = 3,
    seed: int = 0,
    torch_threads: int = 1,
    env_config: dict[str, Any] | None = None,
    test_config: dict[str, Any] | None = None,
    **ppo_kwargs: Any,
) -> dict[str, Any]:
    """Build PPO from :func:`ppo_config`, train ``iterations`` times, then test it greedily.

    Returns RLlib's sampling counts and first/last mean episode return, the greedy test of
    :func:`evaluate_greedy` (``test_*`` keys) over every clip of ``env_config`` updated
    with ``test_config`` (for example ``{"speakers": [...]}`` to test held-out speakers),
    and the env's reward spec (``"reward"``: the env default, ``reward="earliness"``,
    unless ``env_config`` chooses another).

    Starts a local Ray instance when none is running (Ray's own defaults); call
    ``ray.init(...)`` yourself beforehand to choose its resources or address.
    ``torch_threads`` is passed to ``torch.set_num_threads`` (1 is fastest for these
    small networks on a few cores).
    """
    import ray

    torch.set_num_threads(int(torch_threads))  # the learner runs in this process
    if not ray.is_initialized():
        ray.init()
    env_config = dict(env_config or {})
    algorithm = ppo_config(env_config, seed=seed, **ppo_kwargs).build_algo()
    try:
        returns = []
        for _ in range(iterations):
            result = algorithm.train()
            returns.append(float(result["env_runners"]["episode_return_mean"]))
        runners = result["env_runners"]
        test = evaluate_greedy(algorithm.get_module(), {**env_config, **(test_config or {})})
    finally:
        algorithm.stop()
    return {
        "iterations": float(iterations),
        "env_steps": float(runners["num_env_steps_sampled_lifetime"]),
        "episodes": float(runners["num_episodes_lifetime"]),
        "first_return_mean": returns[0],
        "last_return_mean": returns[-1],
        **{f"test_{key}": value for key, value in test.items()},
        "reward": make_env(env_config).unwrapped.rewards.as_dict(),
    }
