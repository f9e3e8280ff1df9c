"""A CleanRL-style single-file DQN for ``AVEmotion-v0``, written for Gymnasium 1.x.

CleanRL's own ``dqn.py`` reads the pre-1.0 ``infos["final_observation"]`` keys and breaks on
Gymnasium 1.x. This script uses the native vector env (``gym.make_vec``) in its default
``NEXT_STEP`` autoreset mode instead: the step after an episode ends returns the first
observation of a new clip with reward 0; that transition belongs to no episode and is
never stored in the replay buffer. The action mask (``info["action_mask"]``: waiting is
forbidden on a clip's last step) is respected when exploring, when acting greedily and in
the TD target's ``max``.

It trains on the env's reward: by default the env's own default (``reward="earliness"``: a
correct answer after t of T steps earns 1 − w·t/T), the reward every agent compared in this
package trains on; ``--reward signed`` chooses +1 / −1 / −wait cost. The result records it.

Run it with ``python experiments/cleanrl_dqn.py --total-timesteps 20000`` (``--help`` lists
every field of :class:`Args`). It prints the test accuracy and earliness at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import avemotion  # noqa: F401  (registers AVEmotion-v0)
from avemotion.envs.core import REWARDS, resolve_store
from avemotion.store import FeatureStore


@dataclass
class Args:
    seed: int = 1
    """seed of the experiment (torch, numpy, random and the environment)"""
    torch_threads: int = 1
    """number of torch threads (1 is fastest for small networks on few cores)"""
    store: str | None = None
    """path of a feature store; None reads the synthetic corpus"""
    test_speakers: str | None = None
    """comma-separated speakers held out for the final test; None holds out the last one"""
    reward: str | None = None
    """env reward preset, earliness or signed; None keeps the env's default (earliness)"""
    earliness_weight: float | None = None
    """w of the earliness reward (1 - w t/T); None keeps the preset's"""
    num_envs: int = 8
    """number of parallel clips in the native vector env"""
    total_timesteps: int = 20_000
    """total environment steps (over all sub-envs)"""
    learning_rate: float = 5e-4
    """learning rate of the Adam optimizer"""
    buffer_size: int = 20_000
    """replay buffer capacity, in transitions"""
    gamma: float = 0.99
    """discount factor"""
    tau: float = 1.0
    """target network update rate (1.0 copies the weights)"""
    target_network_frequency: int = 250
    """environment steps between target network updates"""
    batch_size: int = 128
    """minibatch size sampled from the replay buffer"""
    start_e: float = 1.0
    """starting epsilon of the epsilon-greedy exploration"""
    end_e: float = 0.05
    """final epsilon"""
    exploration_fraction: float = 0.5
    """fraction of ``total_timesteps`` over which epsilon decays linearly"""
    learning_starts: int = 1_000
    """environment steps collected before learning starts"""
    train_frequency: int = 4
    """environment steps (per vector step: num_envs of them) between gradient steps"""
    hidden_size: int = 128
    """width of the two hidden layers of the Q-network"""


def parse_args(argv: list[str] | None = None) -> Args:
    """Build an ``argparse`` parser from the fields of :class:`Args` (``--total-timesteps`` ...)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for field in dataclasses.fields(Args):
        kind = {"int": int, "float": float, "float | None": float}.get(str(field.type), str)
        choices = REWARDS if field.name == "reward" else None
        parser.add_argument(
            f"--{field.name.replace('_', '-')}", type=kind, default=field.default, choices=choices
        )
    return Args(**vars(parser.parse_args(argv)))


def reward_kwargs(args: Args) -> dict[str, object]:
    """The env's reward arguments that ``args`` sets (the others keep the env's defaults)."""
    given = {"reward": args.reward, "earliness_weight": args.earliness_weight}
    return {key: value for key, value in given.items() if value is not None}


class QNetwork(nn.Module):
    """An MLP from the observation to one Q-value per action (0 = wait, k = class k-1)."""

    def __init__(self, obs_size: int, n_actions: int, hidden_size: int) -> None:
        super().__init__()
        self.network = nn.Sequential(
            nn.Linear(obs_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, hidden_size),
            nn.ReLU(),
            nn.Linear(hidden_size, n_actions),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


def masked_argmax(q_values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Greedy action among the allowed ones (``mask`` is 1 where allowed)."""
    return q_values.masked_fill(mask == 0, -torch.inf).argmax(dim=1)


def linear_schedule(start_e: float, end_e: float, duration: int, t: int) -> float:
    """Epsilon at step ``t``: linear from ``start_e`` to ``end_e`` over ``duration`` steps."""
    slope = (end_e - start_e) / max(1, duration)
    return max(slope * t + start_e, end_e)


class ReplayBuffer:
    """A ring buffer of ``(obs, action, reward, next_obs, next_mask, done)`` transitions."""

    def __init__(self, capacity: int, obs_size: int, n_actions: int) -> None:
        self.obs = np.zeros((capacity, obs_size), dtype=np.float32)
        self.next_obs = np.zeros((capacity, obs_size), dtype=np.float32)
        self.next_mask = np.zeros((capacity, n_actions), dtype=np.int8)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.dones = np.zeros(capacity, dtype=np.float32)
        self.capacity, self.size, self.pos = capacity, 0, 0

    def add(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_obs: np.ndarray,
        next_mask: np.ndarray,
        dones: np.ndarray,
    ) -> None:
        """Store a batch of transitions (one row per sub-env), overwriting the oldest."""
        for i in range(len(obs)):
            p = self.pos
            self.obs[p], self.next_obs[p], self.next_mask[p] = obs[i], next_obs[i], next_mask[i]
            self.actions[p], self.rewards[p], self.dones[p] = actions[i], rewards[i], dones[i]
            self.pos = (p + 1) % self.capacity
            self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        idx = rng.integers(self.size, size=batch_size)
        return {
            "obs": torch.as_tensor(self.obs[idx]),
            "actions": torch.as_tensor(self.actions[idx]),
            "rewards": torch.as_tensor(self.rewards[idx]),
            "next_obs": torch.as_tensor(self.next_obs[idx]),
            "next_mask": torch.as_tensor(self.next_mask[idx]),
            "dones": torch.as_tensor(self.dones[idx]),
        }


def evaluate(
    q_network: nn.Module, store: FeatureStore, speakers: list[str], **env_kwargs: object
) -> dict[str, float]:
    """Play every clip of ``speakers`` once, greedily; return accuracy, earliness and return.

    ``env_kwargs`` are further ``AVEmotion-v0`` arguments (the reward the return is scored on).
    """
    env = gym.make_vec(
        "AVEmotion-v0",
        num_envs=1,
        store=store,
        speakers=speakers,
        sampling="sequential",
        **env_kwargs,
    )
    n_clips = env.unwrapped.store.n_clips
    obs, info = env.reset(seed=0)
    correct, earliness, returns, episode_return = [], [], [], 0.0
    while len(correct) < n_clips:
        with torch.no_grad():
            q = q_network(torch.as_tensor(obs))
        action = masked_argmax(q, torch.as_tensor(info["action_mask"])).numpy()
        obs, reward, terminated, truncated, info = env.step(action)
        episode_return += float(reward[0])
        if terminated[0] or truncated[0]:
            correct.append(bool(info["prediction"][0] == info["label"][0]))
            earliness.append((int(info["frame_index"][0]) + 1) / int(info["clip_length"][0]))
            returns.append(episode_return)
            episode_return = 0.0
            obs, reward, terminated, truncated, info = env.step(np.zeros(1, dtype=np.int64))
    env.close()
    return {
        "accuracy": float(np.mean(correct)),
        "earliness": float(np.mean(earliness)),
        "mean_return": float(np.mean(returns)),
        "episodes": len(correct),
    }


def main(args: Args) -> dict[str, object]:
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.torch_threads)
    rng = np.random.default_rng(args.seed)

    store = resolve_store(args.store)
    test_speakers = args.test_speakers.split(",") if args.test_speakers else store.speaker_set[-1:]
    envs = gym.make_vec(
        "AVEmotion-v0",
        num_envs=args.num_envs,
        store=store,
        exclude_speakers=test_speakers,
        **reward_kwargs(args),
    )
    reward_spec = envs.unwrapped.rewards.as_dict()
    assert isinstance(envs.single_action_space, gym.spaces.Discrete), "only discrete actions"
    n_actions = int(envs.single_action_space.n)
    obs_size = int(np.prod(envs.single_observation_space.shape))

    q_network = QNetwork(obs_size, n_actions, args.hidden_size)
    optimizer = torch.optim.Adam(q_network.parameters(), lr=args.learning_rate)
    target_network = QNetwork(obs_size, n_actions, args.hidden_size)
    target_network.load_state_dict(q_network.state_dict())
    rb = ReplayBuffer(args.buffer_size, obs_size, n_actions)

    start_time = time.time()
    obs, info = envs.reset(seed=args.seed)
    mask = info["action_mask"]
    # NEXT_STEP autoreset: after a done, the next step() starts a new clip and is no transition.
    autoreset = np.zeros(args.num_envs, dtype=bool)
    n_iterations = args.total_timesteps // args.num_envs
    episode_returns, running_return, masked_waits = [], np.zeros(args.num_envs), 0
    for iteration in range(n_iterations):
        global_step = iteration * args.num_envs
        epsilon = linear_schedule(
            args.start_e,
            args.end_e,
            int(args.exploration_fraction * args.total_timesteps),
            global_step,
        )
        # Explore among the allowed actions only; exploit with the masked argmax.
        random_actions = np.array([envs.single_action_space.sample(mask=m) for m in mask])
        with torch.no_grad():
            greedy = masked_argmax(q_network(torch.as_tensor(obs)), torch.as_tensor(mask)).numpy()
        actions = np.where(rng.random(args.num_envs) < epsilon, random_actions, greedy)

        next_obs, rewards, terminations, truncations, info = envs.step(actions)
        next_mask = info["action_mask"]
        valid = ~autoreset
        running_return += rewards * valid
        # A truncated episode is not terminal: the target still bootstraps from next_obs.
        rb.add(
            obs[valid],
            actions[valid],
            rewards[valid],
            next_obs[valid],
            next_mask[valid],
            terminations[valid],
        )
        done = terminations | truncations
        episode_returns.extend(running_return[done & valid].tolist())
        masked_waits += int(np.sum(done & valid & (info["prediction"] < 0)))
        running_return[done] = 0.0
        autoreset = done
        obs, mask = next_obs, next_mask

        if global_step > args.learning_starts and iteration % args.train_frequency == 0:
            data = rb.sample(args.batch_size, rng)
            with torch.no_grad():
                target_q = target_network(data["next_obs"]).masked_fill(
                    data["next_mask"] == 0, -torch.inf
                )
                td_target = data["rewards"] + args.gamma * target_q.max(dim=1).values * (
                    1 - data["dones"]
                )
            old_val = q_network(data["obs"]).gather(1, data["actions"][:, None]).squeeze(1)
            loss = F.mse_loss(td_target, old_val)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if iteration % 100 == 0 and episode_returns:
                sps = int(global_step / (time.time() - start_time))
                print(
                    f"step={global_step} loss={loss.item():.4f} return={np.mean(episode_returns[-100:]):.3f} SPS={sps}"
                )

        if iteration % max(1, args.target_network_frequency // args.num_envs) == 0:
            for target_param, param in zip(target_network.parameters(), q_network.parameters()):
                target_param.data.copy_(
                    args.tau * param.data + (1.0 - args.tau) * target_param.data
                )
    envs.close()

    result: dict[str, object] = evaluate(q_network, store, test_speakers, **reward_kwargs(args))
    result["train_episodes"] = len(episode_returns)
    result["train_masked_waits"] = masked_waits
    result["train_return_first_100"] = float(np.mean(episode_returns[:100]))
    result["train_return_last_100"] = float(np.mean(episode_returns[-100:]))
    result["steps_per_second"] = float(n_iterations * args.num_envs / (time.time() - start_time))
    print(" ".join(f"{k}={v:.4g}" for k, v in result.items()))
    result["reward"] = reward_spec
    print(f"reward={reward_spec}")
    return result


if __name__ == "__main__":
    main(parse_args())
