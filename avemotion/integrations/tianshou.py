"""Tianshou 2.x: ``AVEmotion-v0`` with the action mask in the observation, as Tianshou expects.

Tianshou's discrete policies read the mask from ``batch.obs.mask`` (1 = allowed) and the
network input from ``batch.obs.obs``. :class:`MaskInObservation` turns the env's
observation into the dict ``{"obs": ..., "mask": info["action_mask"]}``; Tianshou's
collector turns that dict into ``Batch(obs=..., mask=...)``.

Example (DQN through Tianshou's collector and off-policy trainer)::

    from avemotion.integrations.tianshou import train_dqn
    print(train_dqn(epochs=2, epoch_steps=2_000, seed=0))
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tianshou.algorithm import DQN
from tianshou.algorithm.modelfree.dqn import DiscreteQLearningPolicy
from tianshou.algorithm.optim import AdamOptimizerFactory
from tianshou.data import Collector, CollectStats, ReplayBuffer, VectorReplayBuffer
from tianshou.env import DummyVectorEnv
from tianshou.trainer import OffPolicyTrainerParams
from tianshou.utils.net.common import Net

import avemotion  # noqa: F401  (registers AVEmotion-v0)
from avemotion.envs.registration import ENV_ID


class MaskInObservation(gym.ObservationWrapper):
    """Observation ``{"obs": <env observation>, "mask": <info["action_mask"]>}`` (mask int8, 1 = allowed)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        n_actions = int(env.action_space.n)
        self.observation_space = gym.spaces.Dict(
            {"obs": env.observation_space, "mask": gym.spaces.MultiBinary(n_actions)}
        )
        self._mask = np.ones(n_actions, dtype=np.int8)

    def reset(self, **kwargs: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._mask = np.asarray(info["action_mask"], dtype=np.int8)
        return self.observation(obs), info

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._mask = np.asarray(info["action_mask"], dtype=np.int8)
        return self.observation(obs), reward, terminated, truncated, info

    def observation(self, observation: np.ndarray) -> dict[str, np.ndarray]:
        return {"obs": observation, "mask": self._mask.copy()}


def make_env(**env_kwargs: Any) -> MaskInObservation:
    """``gym.make("AVEmotion-v0", **env_kwargs)`` with the mask moved into the observation."""
    return MaskInObservation(gym.make(ENV_ID, **env_kwargs))


def make_vector_env(num_envs: int, **env_kwargs: Any) -> DummyVectorEnv:
    """``num_envs`` masked envs in one of Tianshou's (in-process) vector envs."""
    return DummyVectorEnv([lambda: make_env(**env_kwargs) for _ in range(num_envs)])


def make_policy(
    env: gym.Env, hidden: int = 64, eps_training: float = 0.1
) -> DiscreteQLearningPolicy:
    """A masked Q-learning policy over an MLP, for an env made by :func:`make_env`."""
    obs_shape = env.observation_space["obs"].shape
    n_actions = int(env.action_space.n)
    net = Net(state_shape=obs_shape, action_shape=n_actions, hidden_sizes=[hidden, hidden])
    return DiscreteQLearningPolicy(
        model=net, action_space=env.action_space, eps_training=eps_training, eps_inference=0.0
    )


def final_buffer_size(store: Any) -> int:
    """Steps of one greedy pass over every clip of ``store``: an episode takes at most its
    clip's length in steps, so a buffer this size keeps every episode of the pass."""
    return max(int(np.sum(store.lengths)), 1)


def train_dqn(
    epochs: int = 2,
    epoch_steps: int = 2_000,
    seed: int = 0,
    torch_threads: int = 1,
    num_envs: int = 1,
    batch_size: int = 64,
    lr: float = 1e-3,
    test_kwargs: dict[str, Any] | None = None,
    **env_kwargs: Any,
) -> dict[str, Any]:
    """Train DQN with Tianshou's ``Collector`` and off-policy trainer; then test it greedily.

    Returns the environment steps trained, the best test reward the trainer saw, the mean
    return, accuracy and count of masked waits of a final greedy test that plays every clip
    of the selection once (``env_kwargs`` updated with ``test_kwargs``, for example
    ``{"speakers": [...], "exclude_speakers": None}`` for held-out speakers), and the env's
    reward spec (``"reward"``: the env default, ``reward="earliness"``, unless
    ``env_kwargs`` choose another).

    ``torch_threads`` is passed to ``torch.set_num_threads`` (1 is fastest for these
    small networks on a few cores).
    """
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(int(torch_threads))
    train_envs = make_vector_env(num_envs, **env_kwargs)
    test_envs = make_vector_env(1, **env_kwargs)
    train_envs.seed(seed)
    test_envs.seed(seed + 10_000)
    probe = make_env(**env_kwargs)
    policy = make_policy(probe)
    algorithm = DQN(
        policy=policy,
        optim=AdamOptimizerFactory(lr=lr),
        gamma=0.99,
        n_step_return_horizon=1,
        target_update_freq=100,
    )
    size = max(epochs * epoch_steps, batch_size)
    # A plain ReplayBuffer for one env: VectorReplayBuffer JIT-compiles with numba (~5 s a buffer).
    buffer = ReplayBuffer(size) if num_envs == 1 else VectorReplayBuffer(size, buffer_num=num_envs)
    train_collector = Collector[CollectStats](algorithm, train_envs, buffer, exploration_noise=True)
    test_collector = Collector[CollectStats](algorithm, test_envs, ReplayBuffer(10_000))
    train_collector.reset()
    train_collector.collect(n_step=batch_size * num_envs)
    result = algorithm.run_training(
        OffPolicyTrainerParams(
            training_collector=train_collector,
            test_collector=test_collector,
            max_epochs=epochs,
            epoch_num_steps=epoch_steps,
            collection_step_num_env_steps=num_envs * 4,
            test_step_num_episodes=10,
            batch_size=batch_size,
            update_step_num_gradient_steps_per_sample=0.25,
            verbose=False,
            show_progress=False,
        )
    )
    final_kwargs = {**env_kwargs, **(test_kwargs or {}), "sampling": "sequential"}
    final_env = make_env(**final_kwargs)
    final_store = final_env.unwrapped.store
    n_clips = final_store.n_clips
    rewards = final_env.unwrapped.rewards.as_dict()
    final_envs = DummyVectorEnv([lambda: final_env])
    # every step of the pass is kept: a smaller buffer would overwrite the first episodes
    buffer_size = final_buffer_size(final_store)
    final = Collector[CollectStats](algorithm, final_envs, ReplayBuffer(buffer_size))
    final.reset()
    stats = final.collect(n_episode=n_clips)
    last = final.buffer.sample_indices(0)
    finals = final.buffer[last]
    done = finals.terminated | finals.truncated
    predictions, labels = finals.info["prediction"][done], finals.info["label"][done]
    for envs in (train_envs, test_envs, final_envs):
        envs.close()
    if int(done.sum()) != n_clips:
        raise RuntimeError(
            f"final test: {int(done.sum())} finished episode(s) in the buffer of {buffer_size} "
            f"steps, expected {n_clips} (one per clip); final_accuracy would leave some out"
        )
    return {
        "train_steps": float(result.train_step),
        "best_test_reward": float(result.best_reward),
        "final_mean_return": float(stats.returns_stat.mean),
        "final_accuracy": float(np.mean(predictions == labels)),
        "final_masked_waits": float(np.sum(predictions < 0)),
        "final_episodes": float(done.sum()),
        "reward": rewards,
    }
