"""TorchRL: ``GymEnv("AVEmotion-v0")`` with the action mask and labels read from ``info``.

``AVEmotion-v0`` keeps every ``info`` value numpy-typed, so TorchRL's info readers can write
them into the tensordict. :class:`AVEmotionInfoReader` declares their specs and turns the
int8 ``info["action_mask"]`` into the boolean ``"action_mask"`` entry that
:class:`~torchrl.envs.transforms.ActionMask`, ``QValueModule`` and ``EGreedyModule`` read.

The DQN target must not bootstrap from the wait that is forbidden on a clip's last step:
:func:`make_dqn_loss` builds ``DQNLoss`` on the masked Q-value policy, whose
``QValueModule`` reads ``("next", "action_mask")`` when ``DQNLoss`` evaluates the next
state, so the target's ``max`` runs over the allowed actions only.

Example (a short DQN run with TorchRL's own collector and loss)::

    from avemotion.integrations.torchrl import train_dqn
    print(train_dqn(total_frames=5_000, seed=0))
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModule, TensorDictSequential
from torchrl.collectors import SyncDataCollector
from torchrl.data import Binary, Composite, LazyTensorStorage, ReplayBuffer, Unbounded
from torchrl.envs import ActionMask, Compose, GymEnv, StepCounter, TransformedEnv
from torchrl.envs.gym_like import BaseInfoDictReader
from torchrl.modules import MLP, EGreedyModule, QValueModule
from torchrl.objectives import DQNLoss, SoftUpdate

import avemotion  # noqa: F401  (registers AVEmotion-v0)
from avemotion.envs.registration import ENV_ID

SCALAR_INFO_KEYS = ("label", "frame_index", "clip_length", "prediction")
"""``info`` entries copied into the tensordict beside ``"action_mask"``."""


class AVEmotionInfoReader(BaseInfoDictReader):
    """Reads ``action_mask`` (as bool) and the scalar labels of ``info`` into the tensordict."""

    def __init__(self, n_actions: int) -> None:
        specs: dict[str, Any] = {key: Unbounded((), dtype=torch.int64) for key in SCALAR_INFO_KEYS}
        specs["action_mask"] = Binary(n=n_actions, shape=(n_actions,), dtype=torch.bool)
        self._info_spec = Composite(specs, shape=())

    def __call__(self, info_dict: dict[str, Any], tensordict: TensorDictBase) -> TensorDictBase:
        tensordict.set(
            "action_mask", torch.as_tensor(np.asarray(info_dict["action_mask"], dtype=bool))
        )
        for key in SCALAR_INFO_KEYS:
            tensordict.set(key, torch.as_tensor(np.asarray(info_dict[key], dtype=np.int64)))
        return tensordict

    def reset(self) -> None:
        """Stateless: nothing to forget between episodes."""

    @property
    def info_spec(self) -> Composite:
        return self._info_spec


def make_env(**env_kwargs: Any) -> TransformedEnv:
    """``GymEnv("AVEmotion-v0", **env_kwargs)`` reading ``info``, with ``ActionMask`` and ``StepCounter``.

    ``env_kwargs`` are the arguments of ``gym.make("AVEmotion-v0", ...)`` (``store``,
    ``speakers``, ``exclude_speakers``, ``obs_mode``, ...).
    """
    base = GymEnv(ENV_ID, **env_kwargs)
    base.set_info_dict_reader(AVEmotionInfoReader(int(base.action_spec.space.n)))
    return TransformedEnv(base, Compose(ActionMask(), StepCounter()))


def make_q_policy(env: TransformedEnv, hidden: int = 64) -> TensorDictSequential:
    """A masked greedy Q-value policy: MLP ``observation -> action_value``, then ``QValueModule``."""
    n_actions = int(env.action_spec.space.n)
    mlp = MLP(out_features=n_actions, num_cells=[hidden, hidden])
    value = TensorDictModule(mlp, in_keys=["observation"], out_keys=["action_value"])
    return TensorDictSequential(
        value, QValueModule(spec=env.action_spec, action_mask_key="action_mask")
    )


def make_dqn_loss(
    policy: TensorDictSequential, env: TransformedEnv, gamma: float = 0.99
) -> DQNLoss:
    """``DQNLoss`` (one-step TD target, delayed target network) over a :func:`make_q_policy` policy.

    Its target is ``reward + gamma * max over allowed a' of Q_target(next, a')`` (0 after the
    end): the policy's ``QValueModule`` masks the next state's forbidden wait before the max.
    """
    loss_module = DQNLoss(value_network=policy, action_space=env.action_spec, delay_value=True)
    loss_module.make_value_estimator(gamma=gamma)
    return loss_module


def env_rewards(env: TransformedEnv) -> dict[str, Any]:
    """The reward spec of the ``AVEmotion-v0`` inside a :func:`make_env` env, as a dict."""
    base: gym.Env = env.base_env._env
    return base.unwrapped.rewards.as_dict()


def train_dqn(
    total_frames: int = 5_000,
    seed: int = 0,
    torch_threads: int = 1,
    frames_per_batch: int = 100,
    batch_size: int = 64,
    lr: float = 1e-3,
    **env_kwargs: Any,
) -> dict[str, Any]:
    """Train DQN with TorchRL's collector, replay buffer, ``DQNLoss`` and ``SoftUpdate``.

    Returns the number of frames collected, the number of episodes that ended by waiting on
    a clip's last step (0 when the mask is respected), the first and last loss, the mean
    reward of the first and the last collected batch, and the env's reward spec
    (``"reward"``: the env default, ``reward="earliness"``, unless ``env_kwargs`` choose
    another).

    ``torch_threads`` is passed to ``torch.set_num_threads`` (1 is fastest for these
    small networks on a few cores).
    """
    torch.manual_seed(seed)
    torch.set_num_threads(int(torch_threads))
    env = make_env(**env_kwargs)
    env.set_seed(seed)
    policy = make_q_policy(env)
    explore = EGreedyModule(
        env.action_spec,
        annealing_num_steps=max(1, total_frames // 2),
        eps_init=1.0,
        eps_end=0.05,
        action_mask_key="action_mask",
    )
    collector = SyncDataCollector(
        env,
        TensorDictSequential(policy, explore),
        frames_per_batch=frames_per_batch,
        total_frames=total_frames,
        init_random_frames=frames_per_batch,
    )
    buffer = ReplayBuffer(storage=LazyTensorStorage(max(total_frames, 1)), batch_size=batch_size)
    loss_module = make_dqn_loss(policy, env, gamma=0.99)
    target_updater = SoftUpdate(loss_module, eps=0.95)
    optimizer = torch.optim.Adam(loss_module.parameters(), lr=lr)
    frames, masked_waits, losses, batch_rewards = 0, 0, [], []
    for batch in collector:
        frames += batch.numel()
        masked_waits += int(
            (batch["next", "done"].squeeze(-1) & (batch["next", "prediction"] < 0)).sum()
        )
        batch_rewards.append(float(batch["next", "reward"].mean()))
        buffer.extend(batch.reshape(-1))
        for _ in range(4):
            loss = loss_module(buffer.sample())["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            target_updater.step()
            losses.append(float(loss.detach()))
        explore.step(batch.numel())
    collector.shutdown()
    rewards = env_rewards(env)
    env.close()
    return {
        "frames": float(frames),
        "masked_waits": float(masked_waits),
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "first_batch_reward": batch_rewards[0],
        "last_batch_reward": batch_rewards[-1],
        "reward": rewards,
    }
