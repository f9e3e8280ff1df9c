"""Replay memories for our DQN, with n-step returns computed at sampling time.

:class:`TransitionReplay` keeps one ring buffer *column per sub-env*, so consecutive
transitions of one episode sit in consecutive rows and an n-step return is a look-ahead
down the column that stops at the episode's end. The NEXT_STEP reset transition of a
vector env is never added (the caller passes ``valid=False`` for it), so a column holds
only real transitions.

:class:`EpisodeReplay` keeps whole episodes for the recurrent Q-network.

Both expose :meth:`state_dict` / :meth:`load_state_dict` made of tensors and ints only,
so that a checkpoint loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from avemotion.agents.rewards import earliness_reward


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
    correct_reward: torch.Tensor | None
    """Reward a correct answer would earn in ``obs`` (for the counterfactual class targets);
    None when it is the same constant everywhere (the env's reward)."""


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
        earliness_weight: float | None = None,
        correct: tuple[float, float] | None = None,
    ) -> NStepBatch:
        """Sample ``batch_size`` transitions and their n-step returns.

        With ``earliness_weight`` the rewards are the "earliness" rewards of that weight
        (:func:`~avemotion.agents.rewards.earliness_reward`), recomputed from the stored
        outcomes; otherwise the stored rewards, and ``correct = (c, w)`` (the env reward's
        correct-answer reward and earliness weight) gives each row's counterfactual
        correct-answer reward ``c · (1 − w · t / T)``.

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
        if earliness_weight is None:
            reward = self.reward[rows, cols]
            correct_reward = _correct_reward(correct, self.fraction[rows[:, 0], envs])
        else:
            reward = earliness_reward(
                self.fraction[rows, cols], self.hit[rows, cols], earliness_weight
            )
            correct_reward = torch.from_numpy(
                (1.0 - earliness_weight * self.fraction[rows[:, 0], envs]).astype(np.float32)
            )
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
            correct_reward=correct_reward,
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
        rng: np.random.Generator,
        earliness_weight: float | None = None,
        correct: tuple[float, float] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Sample episodes, cropped to the longest one in the batch (rewards and
        ``correct`` as in :meth:`TransitionReplay.sample`)."""
        index = rng.integers(int(self.count), size=batch_size)
        length = self.length[index]
        t = int(length.max())
        extra: dict[str, torch.Tensor] = {}
        reward = self.reward[index, :t]
        if earliness_weight is None:
            stored = _correct_reward(correct, self.fraction[index, :t])
            if stored is not None:
                extra["correct_reward"] = stored
        else:
            fraction = self.fraction[index, :t]
            reward = earliness_reward(fraction, self.hit[index, :t], earliness_weight)
            extra["correct_reward"] = torch.from_numpy(
                (1.0 - earliness_weight * fraction).astype(np.float32)
            )
        return {
            **extra,
            "obs": torch.from_numpy(self.obs[index, : t + 1]),
            "mask": torch.from_numpy(self.mask[index, : t + 1]),
            "action": torch.from_numpy(self.action[index, :t]),
            "reward": torch.from_numpy(reward),
            "length": torch.from_numpy(length),
            "label": torch.from_numpy(self.label[index]),
            "terminated": torch.from_numpy(self.terminated[index]),
        }

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


def _correct_reward(
    correct: tuple[float, float] | None, fraction: np.ndarray
) -> torch.Tensor | None:
    """``c · (1 − w · fraction)`` for ``correct = (c, w)`` with ``w ≠ 0``, else None (the
    losses then use the constant correct-answer reward)."""
    if correct is None or correct[1] == 0.0:
        return None
    value, weight = correct
    return torch.from_numpy((value * (1.0 - weight * fraction)).astype(np.float32))
