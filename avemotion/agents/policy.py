"""The greedy, per-step decision interface every trained agent exposes.

An :class:`Agent` answers one observation at a time (``reset`` then ``act`` per step, with
any recurrent state kept inside), which is what an online recognizer needs; ``act_batch``
does the same for many independent streams at once, which is what evaluation uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from avemotion.agents.dqn.dqn import MODEL_NAME, DQNConfig, make_q_network
from avemotion.agents.dqn.networks import STOP_BUFFERS, RecurrentState, masked_argmax, reset_state


class Agent(Protocol):
    """A greedy policy over ``Discrete(K + 1)`` (0 = wait, k = class k − 1)."""

    obs_mode: str
    """The env observation mode the agent was trained with."""

    def reset(self) -> None:
        """Forget the current clip (start of a new stream)."""

    def act(self, observation: np.ndarray, action_mask: np.ndarray) -> int:
        """The action for the next step of the current stream; never a masked action."""

    def act_batch(
        self, observations: np.ndarray, action_masks: np.ndarray, episode_starts: np.ndarray
    ) -> np.ndarray:
        """Actions for ``N`` streams; ``episode_starts[i]`` is true on the first step of a clip."""


class DQNAgent:
    """Greedy masked argmax of our (MLP or recurrent) Q-network."""

    def __init__(self, network: torch.nn.Module, obs_mode: str) -> None:
        self.network = network.eval()
        self.obs_mode = obs_mode
        self.max_length: int | None = None
        """T_max of the time feature the network was trained with (set by ``load_agent``)."""
        self.recurrent = bool(getattr(network, "recurrent", False))
        self._state: RecurrentState = None
        self._batch_state: RecurrentState = None
        self.last_posterior: np.ndarray | None = None
        """The class posterior the stopping rule read at the last :meth:`q_values` (the run's
        posterior model, as the network's frozen front end holds it); ``None`` for a network
        that reads no posterior (the plain and recurrent Q-networks)."""

    def reset(self) -> None:
        self._state = None

    def q_values(self, observation: np.ndarray) -> np.ndarray:
        """Q-values of the next step of the current stream (advances the recurrent state)."""
        with torch.no_grad():
            obs = torch.as_tensor(np.asarray(observation, dtype=np.float32))[None]
            if self.recurrent:
                if self._state is None:
                    self._state = self.network.zero_state(1)
                q, self._state = self.network.step(obs, self._state)
            elif hasattr(self.network, "q_and_posterior"):
                q, p = self.network.q_and_posterior(obs)
                self.last_posterior = p[0].numpy().astype(np.float64)
            else:
                q = self.network(obs)
        return q[0].numpy()

    def act(self, observation: np.ndarray, action_mask: np.ndarray) -> int:
        q = torch.from_numpy(self.q_values(observation))
        return int(masked_argmax(q, torch.as_tensor(np.asarray(action_mask, dtype=bool))))

    def act_batch(
        self, observations: np.ndarray, action_masks: np.ndarray, episode_starts: np.ndarray
    ) -> np.ndarray:
        with torch.no_grad():
            obs = torch.from_numpy(np.asarray(observations, dtype=np.float32))
            if self.recurrent:
                n = len(obs)
                if self._batch_state is None or _batch_of(self._batch_state) != n:
                    self._batch_state = self.network.zero_state(n)
                self._batch_state = reset_state(
                    self._batch_state, torch.from_numpy(np.asarray(episode_starts, dtype=bool))
                )
                q, self._batch_state = self.network.step(obs, self._batch_state)
            else:
                q = self.network(obs)
            return masked_argmax(q, torch.from_numpy(np.asarray(action_masks, dtype=bool))).numpy()


def _batch_of(state: RecurrentState) -> int:
    return int((state[0] if isinstance(state, tuple) else state).shape[1])


def load_dqn_agent(run_dir: Path, config: dict[str, Any]) -> DQNAgent:
    """Rebuild our DQN's network from ``config.json`` and load ``model.pt`` (weights only)."""
    saved = dict(config["agent_config"])
    # Runs saved before the "reward" field existed were trained on the env's reward.
    saved.setdefault("reward", "env")
    dqn_config = DQNConfig.from_dict(saved, saved=True)
    # a run whose agent reads log-posteriors (agent_input "posteriors") has a K-dim input
    store_dim = int(config.get("agent_store_dim", config["store_dim"]))
    network = make_q_network(
        dqn_config, int(config["obs_dim"]), int(config["n_actions"]), store_dim
    )
    path = Path(run_dir) / MODEL_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (the run has not finished a checkpoint)")
    state = torch.load(path, weights_only=True)
    for name in STOP_BUFFERS:  # saved before they existed: 0, the rule they were tuned with
        if name in network.state_dict():
            state.setdefault(name, torch.zeros(()))
    network.load_state_dict(state)
    return DQNAgent(network, dqn_config.obs_mode)
