"""Collection and checkpoint helpers of our DQN: the episodes under way in each sub-env
(for the recurrent replay), the per-episode sharpness jitter of its posteriors, and numpy
random states as tensors."""

from __future__ import annotations

from typing import Any

import numpy as np

from avemotion.agents.replay import EpisodeReplay


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


def pack_rng(state: dict[str, Any]) -> dict[str, Any]:
    """numpy PCG64 state as tensors/ints, loadable with ``weights_only=True``."""
    inner = state["state"]
    return {
        "state": str(inner["state"]),
        "inc": str(inner["inc"]),
        "has_uint32": int(state["has_uint32"]),
        "uinteger": int(state["uinteger"]),
    }


def unpack_rng(packed: dict[str, Any]) -> dict[str, Any]:
    return {
        "bit_generator": "PCG64",
        "state": {"state": int(packed["state"]), "inc": int(packed["inc"])},
        "has_uint32": int(packed["has_uint32"]),
        "uinteger": int(packed["uinteger"]),
    }


class SharpnessJitter:
    """Random sharpness of the posteriors the agent learns on, one factor per episode.

    Cross-fitted posteriors of the training speakers are as sharp as a model fitted on
    fewer speakers makes them; a new speaker's may be sharper or flatter. Scaling each
    training episode's logits by ``exp(u)``, ``u ~ U(−r, r)``, keeps the learnt stopping
    rule from leaning on one level of confidence: it must read confidence, not only time.
    """

    def __init__(self, r: float, layout: Any, rng: np.random.Generator) -> None:
        self.r, self.rng = r, rng
        self.columns = np.ones(layout.size, dtype=np.float32)
        self.logit_columns = np.zeros(layout.size, dtype=bool)
        self.logit_columns[:-1] = True  # every part but the time feature is a logit
        self.scale: np.ndarray | None = None

    def start(self, starting: np.ndarray, obs: np.ndarray) -> np.ndarray:
        """Draw new factors where an episode starts; the jittered observation."""
        if self.r <= 0:
            return obs
        if self.scale is None:
            self.scale = np.ones(len(obs), dtype=np.float32)
        n = int(starting.sum())
        self.scale[starting] = np.exp(self.rng.uniform(-self.r, self.r, n)).astype(np.float32)
        out = obs.copy()
        out[:, self.logit_columns] *= self.scale[:, None]
        return out
