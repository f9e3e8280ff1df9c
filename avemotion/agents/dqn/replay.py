"""Replay memories of our DQN: per-sub-env transition columns with n-step returns computed
when sampled, and whole episodes for the recurrent network (design: docs/agents.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from avemotion.envs.core import RewardSpec

ENV_REWARD = RewardSpec()
"""The env's default reward (the earliness preset)."""


@dataclass
class NStepBatch:
    """A sampled batch: ``Q(obs, action)`` is regressed on
    ``returns + discount · Q_target(bootstrap_obs, ·)`` (``discount`` is 0 at episode ends)."""

    obs: torch.Tensor
    action: torch.Tensor
    returns: torch.Tensor
    bootstrap_obs: torch.Tensor
    bootstrap_mask: torch.Tensor
    discount: torch.Tensor
    label: torch.Tensor
    correct_reward: torch.Tensor
    """Reward a correct answer would earn in ``obs`` (for the counterfactual class targets)."""
    valid: torch.Tensor
    """Rows that count in the loss (all of them here; not the padding of an episode)."""


class TransitionReplay:
    """Per-sub-env ring buffers of ``(obs, action, reward, next_obs, next_mask, ended)``."""

    def __init__(self, capacity: int, num_envs: int, obs_dim: int, n_actions: int) -> None:
        self.rows = max(2, capacity // num_envs)
        self.num_envs = num_envs
        shape = (self.rows, num_envs)
        self.obs = np.zeros((*shape, obs_dim), dtype=np.float32)
        self.next_obs = np.zeros((*shape, obs_dim), dtype=np.float32)
        self.next_mask = np.zeros((*shape, n_actions), dtype=bool)
        self.action = np.zeros(shape, dtype=np.int64)
        self.label = np.zeros(shape, dtype=np.int64)
        self.reward = np.zeros(shape, dtype=np.float32)
        self.fraction = np.zeros(shape, dtype=np.float32)
        self.hit = np.zeros(shape, dtype=bool)
        self.terminated = np.zeros(shape, dtype=bool)
        self.ended = np.zeros(shape, dtype=bool)
        self.position = np.zeros(num_envs, dtype=np.int64)
        self.count = np.zeros(num_envs, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.count.sum())

    def add(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        next_obs: np.ndarray,
        next_mask: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        valid: np.ndarray,
        label: np.ndarray,
        fraction: np.ndarray,
        hit: np.ndarray,
    ) -> None:
        """Append one step of every sub-env where ``valid`` is true (all arrays are ``[N, ...]``);
        ``fraction`` is the fraction of the clip observed in ``obs`` and ``hit`` whether the
        action was a correct answer (rewards may be recomputed from them when sampling)."""
        envs = np.flatnonzero(valid)
        if len(envs) == 0:
            return
        rows = self.position[envs]
        self.obs[rows, envs] = obs[envs]
        self.next_obs[rows, envs] = next_obs[envs]
        self.next_mask[rows, envs] = next_mask[envs]
        self.action[rows, envs] = action[envs]
        self.label[rows, envs] = label[envs]
        self.reward[rows, envs] = reward[envs]
        self.fraction[rows, envs] = fraction[envs]
        self.hit[rows, envs] = hit[envs]
        self.terminated[rows, envs] = terminated[envs]
        self.ended[rows, envs] = terminated[envs] | truncated[envs]
        self.position[envs] = (rows + 1) % self.rows
        self.count[envs] = np.minimum(self.count[envs] + 1, self.rows)

    def sample(
        self,
        batch_size: int,
        n_step: int,
        gamma: float,
        rng: np.random.Generator,
        spec: RewardSpec = ENV_REWARD,
        recompute: bool = False,
    ) -> NStepBatch:
        """Sample ``batch_size`` transitions and their n-step returns.

        Rewards are the stored ones, or with ``recompute`` those of ``spec`` from the stored
        outcomes; each row's counterfactual correct-answer reward is ``spec``'s.

        The look-ahead follows waits only: it stops at the end of the episode (no bootstrap
        after a termination; bootstrap from the last observation after a truncation),
        before a later classification (bootstrapping from the state where it was taken,
        so that an exploratory class choice does not bias the value of waiting), and at
        the newest stored transition of the column (a shorter return).
        """
        weights = self.count / self.count.sum()
        envs = rng.choice(self.num_envs, size=batch_size, p=weights)
        logical = (rng.random(batch_size) * self.count[envs]).astype(np.int64)
        start = (self.position[envs] - self.count[envs]) % self.rows
        ahead = logical[:, None] + np.arange(n_step)[None, :]
        in_range = ahead < self.count[envs][:, None]
        rows = (start[:, None] + ahead) % self.rows
        cols = envs[:, None]
        ended = self.ended[rows, cols] & in_range
        ended_before = (np.cumsum(ended, axis=1) - ended) > 0
        # Stop before a later classification (action != 0): its class was an exploratory
        # choice; bootstrapping from the state where it was taken uses the max instead.
        classify = (self.action[rows, cols] != 0) & in_range
        classify[:, 0] = False
        used = in_range & ~ended_before & ~(np.cumsum(classify, axis=1) > 0)
        powers = gamma ** np.arange(n_step, dtype=np.float64)
        if recompute:
            reward = spec.answer_rewards(self.fraction[rows, cols], self.hit[rows, cols])
        else:
            reward = self.reward[rows, cols]
        correct_reward = spec.correct_rewards(self.fraction[rows[:, 0], envs])
        returns = (reward * used * powers).sum(axis=1)
        n_used = used.sum(axis=1)
        last = rows[np.arange(batch_size), n_used - 1]
        discount = (gamma**n_used) * ~self.terminated[last, envs]
        first = rows[:, 0]
        return NStepBatch(
            obs=torch.from_numpy(self.obs[first, envs]),
            action=torch.from_numpy(self.action[first, envs]),
            returns=torch.from_numpy(returns.astype(np.float32)),
            bootstrap_obs=torch.from_numpy(self.next_obs[last, envs]),
            bootstrap_mask=torch.from_numpy(self.next_mask[last, envs]),
            discount=torch.from_numpy(discount.astype(np.float32)),
            label=torch.from_numpy(self.label[first, envs]),
            correct_reward=torch.from_numpy(correct_reward),
            valid=torch.ones(batch_size, dtype=torch.bool),
        )

    _FIELDS = (
        "obs",
        "next_obs",
        "next_mask",
        "action",
        "label",
        "reward",
        "fraction",
        "hit",
        "terminated",
        "ended",
        "position",
        "count",
    )

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: torch.from_numpy(getattr(self, name)) for name in self._FIELDS}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name in self._FIELDS:
            value = state[name].numpy()
            if value.shape != getattr(self, name).shape:
                raise ValueError(
                    f"checkpoint: replay field {name!r} has shape {value.shape}, expected {getattr(self, name).shape}"
                )
            setattr(self, name, value.copy())


class EpisodeReplay:
    """A ring of whole episodes, padded to ``max_length`` steps, for the recurrent Q-network.

    Episode ``e`` of length ``L`` stores observations ``0..L`` (the last one is the final
    observation, used only after a truncation), their masks, and actions/rewards ``0..L-1``.
    """

    def __init__(self, capacity: int, max_length: int, obs_dim: int, n_actions: int) -> None:
        self.capacity = capacity
        self.max_length = max_length
        self.obs = np.zeros((capacity, max_length + 1, obs_dim), dtype=np.float32)
        self.mask = np.zeros((capacity, max_length + 1, n_actions), dtype=bool)
        self.action = np.zeros((capacity, max_length), dtype=np.int64)
        self.reward = np.zeros((capacity, max_length), dtype=np.float32)
        self.fraction = np.zeros((capacity, max_length), dtype=np.float32)
        self.hit = np.zeros((capacity, max_length), dtype=bool)
        self.length = np.zeros(capacity, dtype=np.int64)
        self.label = np.zeros(capacity, dtype=np.int64)
        self.terminated = np.zeros(capacity, dtype=bool)
        self.position = np.zeros((), dtype=np.int64)
        self.count = np.zeros((), dtype=np.int64)

    def __len__(self) -> int:
        return int(self.count)

    def add(
        self,
        obs: np.ndarray,
        mask: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        terminated: bool,
        label: int,
        fraction: np.ndarray,
        hit: np.ndarray,
    ) -> None:
        """Store one episode: ``obs``/``mask`` have ``L + 1`` rows, ``action``/``reward``/
        ``fraction``/``hit`` (see :meth:`TransitionReplay.add`) ``L``."""
        length = len(action)
        i = int(self.position)
        self.obs[i, : length + 1] = obs
        self.obs[i, length + 1 :] = 0.0
        self.mask[i, : length + 1] = mask
        self.mask[i, length + 1 :] = True
        self.action[i, :length] = action
        self.action[i, length:] = 0
        self.reward[i, :length] = reward
        self.reward[i, length:] = 0.0
        self.fraction[i, :length] = fraction
        self.fraction[i, length:] = 0.0
        self.hit[i, :length] = hit
        self.hit[i, length:] = False
        self.length[i] = length
        self.label[i] = label
        self.terminated[i] = terminated
        self.position = np.asarray((i + 1) % self.capacity)
        self.count = np.asarray(min(int(self.count) + 1, self.capacity))

    def sample(
        self,
        batch_size: int,
        n_step: int,
        gamma: float,
        rng: np.random.Generator,
        spec: RewardSpec = ENV_REWARD,
        recompute: bool = False,
    ) -> EpisodeBatch:
        """Sample episodes, cropped to the longest one in the batch, with every step's
        n-step return (rewards as in :meth:`TransitionReplay.sample`)."""
        index = rng.integers(int(self.count), size=batch_size)
        length = self.length[index]
        t = int(length.max())
        fraction = self.fraction[index, :t]
        reward = self.reward[index, :t]
        if recompute:
            reward = spec.answer_rewards(fraction, self.hit[index, :t])
        length_t = torch.from_numpy(length)
        terminated = torch.from_numpy(self.terminated[index])
        returns, discount, boot = episode_returns(
            torch.from_numpy(reward), length_t, terminated, n_step, gamma
        )
        return EpisodeBatch(
            obs=torch.from_numpy(self.obs[index, : t + 1]),
            mask=torch.from_numpy(self.mask[index, : t + 1]),
            action=torch.from_numpy(self.action[index, :t]),
            returns=returns,
            discount=discount,
            boot=boot,
            label=torch.from_numpy(self.label[index])[:, None].expand(-1, t),
            correct_reward=torch.from_numpy(spec.correct_rewards(fraction)),
            valid=torch.arange(t)[None, :] < length_t[:, None],
        )

    _FIELDS = (
        "obs",
        "mask",
        "action",
        "reward",
        "fraction",
        "hit",
        "length",
        "label",
        "terminated",
        "position",
        "count",
    )

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: torch.from_numpy(np.asarray(getattr(self, name))) for name in self._FIELDS}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name in self._FIELDS:
            value = state[name].numpy()
            if value.shape != np.shape(getattr(self, name)):
                raise ValueError(
                    f"checkpoint: replay field {name!r} has shape {value.shape}, expected {np.shape(getattr(self, name))}"
                )
            setattr(self, name, value.copy())


@dataclass
class EpisodeBatch:
    """Sampled episodes: step ``t`` of episode ``b`` regresses ``Q(obs[b, t], action[b, t])``
    on ``returns + discount · Q_target(obs[b, boot], ·)``, where ``valid`` (not padding)."""

    obs: torch.Tensor
    mask: torch.Tensor
    action: torch.Tensor
    returns: torch.Tensor
    discount: torch.Tensor
    boot: torch.Tensor
    label: torch.Tensor
    correct_reward: torch.Tensor
    valid: torch.Tensor


def episode_returns(
    reward: torch.Tensor, length: torch.Tensor, terminated: torch.Tensor, n: int, gamma: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every step's n-step return, discount and bootstrap step in padded episodes.

    A terminated episode ends with its one classification (or a masked wait): the
    look-ahead of earlier steps stops before it and bootstraps from the state where it
    was taken (as in :class:`TransitionReplay`), and that last step's target is its reward."""
    steps = reward.shape[1]
    t = torch.arange(steps)[None, :]
    end = torch.where(terminated, length - 1, length)[:, None]
    boot = torch.where(t < end, torch.minimum(t + n, end), length[:, None])
    within = (t[..., None] + torch.arange(n)[None, None, :]) < boot[..., None]
    padded = torch.nn.functional.pad(reward, (0, n))
    returns = sum(gamma**k * padded[:, k : k + steps] * within[..., k] for k in range(n))
    discount = gamma ** (boot - t).float() * ~(terminated[:, None] & (boot == length[:, None]))
    return returns, discount, boot


class EpisodeScratch:
    """The episodes under way in each sub-env, written into the episode replay when done."""

    def __init__(self, n_envs: int, max_length: int, obs_dim: int, n_actions: int) -> None:
        self.obs = np.zeros((n_envs, max_length + 1, obs_dim), dtype=np.float32)
        self.mask = np.ones((n_envs, max_length + 1, n_actions), dtype=bool)
        self.action = np.zeros((n_envs, max_length), dtype=np.int64)
        self.reward = np.zeros((n_envs, max_length), dtype=np.float32)
        self.fraction = np.zeros((n_envs, max_length), dtype=np.float32)
        self.hit = np.zeros((n_envs, max_length), dtype=bool)
        self.t = np.zeros(n_envs, dtype=np.int64)
        self.max_length = max_length

    def start(self, which: np.ndarray, obs: np.ndarray, mask: np.ndarray) -> None:
        self.obs[which, 0] = obs[which]
        self.mask[which, 0] = mask[which]
        self.t[which] = 0

    def record(
        self,
        valid: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        fraction: np.ndarray,
        hit: np.ndarray,
        next_obs: np.ndarray,
        next_mask: np.ndarray,
    ) -> None:
        envs = np.flatnonzero(valid & (self.t < self.max_length))
        t = self.t[envs]
        self.action[envs, t] = action[envs]
        self.reward[envs, t] = reward[envs]
        self.fraction[envs, t] = fraction[envs]
        self.hit[envs, t] = hit[envs]
        self.obs[envs, t + 1] = next_obs[envs]
        self.mask[envs, t + 1] = next_mask[envs]
        self.t[envs] = t + 1

    def push(self, e: int, replay: EpisodeReplay, terminated: bool, label: int) -> None:
        length = int(self.t[e])
        replay.add(
            self.obs[e, : length + 1],
            self.mask[e, : length + 1],
            self.action[e, :length],
            self.reward[e, :length],
            terminated,
            label,
            self.fraction[e, :length],
            self.hit[e, :length],
        )
