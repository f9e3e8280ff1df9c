"""The two ways our DQN acts, stores and learns: feed-forward and recurrent.

:func:`~avemotion.agents.dqn.train_dqn` runs one loop for both; what differs lives here,
one class each, so the two never interleave in the loop:

- :class:`FeedForwardPath`: the Q-network reads one observation; every real transition
  goes into a per-sub-env :class:`~avemotion.agents.replay.TransitionReplay`, and the
  loss is the n-step TD loss on sampled transitions;
- :class:`RecurrentPath`: the Q-network carries a hidden state across a clip's steps;
  whole episodes are gathered step by step (:class:`~avemotion.agents.dqn_state.EpisodeScratch`)
  into an :class:`~avemotion.agents.replay.EpisodeReplay`, and the loss runs over sampled
  episodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from avemotion.agents.dqn_config import DQNConfig
from avemotion.agents.dqn_state import EpisodeScratch
from avemotion.agents.losses import recurrent_td_loss, td_loss
from avemotion.agents.networks import reset_state
from avemotion.agents.replay import EpisodeReplay, TransitionReplay
from avemotion.store import FeatureStore


@dataclass
class Step:
    """One step of every sub-env, as the loop collected it."""

    obs: np.ndarray
    actions: np.ndarray
    reward: np.ndarray
    next_obs: np.ndarray
    next_mask: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    valid: np.ndarray
    """Sub-envs whose transition is real (not the reset after a done) and within budget."""
    done: np.ndarray
    prev_done: np.ndarray
    """Sub-envs that start a new clip in ``next_obs``."""
    label: np.ndarray
    fraction: np.ndarray
    hit: np.ndarray


Nets = tuple[torch.nn.Module, torch.nn.Module]
"""The online and the target network."""
LossAndQ = tuple[torch.Tensor, torch.Tensor]
"""A TD loss and the mean Q-value of the actions taken."""


@dataclass
class Rewards:
    """What the losses need of the env reward: ``(correct, wrong)`` answers' rewards, and
    ``(correct, earliness weight)`` for the class targets under stored rewards."""

    answers: tuple[float, float]
    correct: tuple[float, float]


class FeedForwardPath:
    """Acting on one observation; transitions in a replay; the n-step TD loss."""

    def __init__(
        self, config: DQNConfig, store: FeatureStore, n_envs: int, obs_dim: int, n_actions: int
    ) -> None:
        self.config = config
        self.replay: Any = TransitionReplay(config.buffer_size, n_envs, obs_dim, n_actions)

    def start(self, online: torch.nn.Module, obs: np.ndarray, mask: np.ndarray) -> None:
        """Nothing to set up before the first step."""

    def q_values(self, online: torch.nn.Module, obs: torch.Tensor) -> torch.Tensor:
        return online(obs)

    def record(self, step: Step) -> None:
        self.replay.add(
            step.obs,
            step.actions,
            step.reward,
            step.next_obs,
            step.next_mask,
            step.terminated,
            step.truncated,
            step.valid,
            step.label,
            step.fraction,
            step.hit,
        )

    def loss(
        self, nets: Nets, rewards: Rewards, rng: np.random.Generator, weight: float | None
    ) -> LossAndQ:
        config = self.config
        batch = self.replay.sample(
            config.batch_size, config.n_step, config.gamma, rng, weight, rewards.correct
        )
        return td_loss(*nets, batch, config, rewards.answers)


class RecurrentPath:
    """Acting with a hidden state per sub-env; whole episodes in a replay; their TD loss."""

    def __init__(
        self, config: DQNConfig, store: FeatureStore, n_envs: int, obs_dim: int, n_actions: int
    ) -> None:
        self.config = config
        episode_length = int(store.lengths.max())
        self.replay: Any = EpisodeReplay(
            max(8, config.buffer_size // max(1, int(store.lengths.mean()))),
            episode_length,
            obs_dim,
            n_actions,
        )
        self.scratch = EpisodeScratch(n_envs, episode_length, obs_dim, n_actions)
        self.n_envs = n_envs
        self.hidden: Any = None

    def start(self, online: torch.nn.Module, obs: np.ndarray, mask: np.ndarray) -> None:
        """Zero hidden states, and every sub-env's episode begun at ``obs``."""
        self.hidden = online.zero_state(self.n_envs)
        self.scratch.start(np.ones(self.n_envs, dtype=bool), obs, mask)

    def q_values(self, online: torch.nn.Module, obs: torch.Tensor) -> torch.Tensor:
        q, self.hidden = online.step(obs, self.hidden)
        return q

    def record(self, step: Step) -> None:
        scratch = self.scratch
        scratch.record(
            step.valid, step.actions, step.reward, step.fraction, step.hit, step.next_obs,
            step.next_mask,
        )  # fmt: skip
        for e in np.flatnonzero(step.done):
            scratch.push(e, self.replay, bool(step.terminated[e]), int(step.label[e]))
        scratch.start(step.prev_done, step.next_obs, step.next_mask)
        self.hidden = reset_state(self.hidden, torch.from_numpy(step.prev_done))

    def loss(
        self, nets: Nets, rewards: Rewards, rng: np.random.Generator, weight: float | None
    ) -> LossAndQ:
        size = max(1, self.config.batch_size // 32)
        episodes = self.replay.sample(size, rng, weight, rewards.correct)
        return recurrent_td_loss(*nets, episodes, self.config, rewards.answers)


def make_path(
    config: DQNConfig, store: FeatureStore, n_envs: int, obs_dim: int, n_actions: int
) -> FeedForwardPath | RecurrentPath:
    """The path ``config`` describes (``recurrent``: a GRU or LSTM cell)."""
    kind = RecurrentPath if config.recurrent else FeedForwardPath
    return kind(config, store, n_envs, obs_dim, n_actions)
