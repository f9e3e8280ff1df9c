"""A native vector ``AVEmotion-v0``: N clips stepped at once in numpy, the fast path for training."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from avemotion.envs.core import (
    SAMPLING_MODES,
    InvalidActionError,
    ObservationLayout,
    RewardSpec,
    check_choice,
    resolve_store,
)
from avemotion.store import FeatureStore

INFO_KEYS = ("label", "frame_index", "clip_index", "speaker", "clip_length", "prediction", "action_mask")


class AVEmotionVectorEnv(VectorEnv):
    """``num_envs`` independent copies of :class:`~avemotion.envs.AVEmotionEnv` in one process.

    Each sub-env has its own clip and frame pointer; all share one memory-mapped store.
    It takes the single env's arguments plus ``num_envs`` and ``max_episode_steps``.

    Autoreset follows Gymnasium's ``NEXT_STEP`` mode: the step after a sub-env terminates
    or truncates ignores that sub-env's action and returns the first observation of a new
    clip with reward 0 and ``terminated = truncated = False``. That transition belongs to
    no episode and must not enter a replay buffer. ``info`` holds an array per key of the
    single env (and Gymnasium's ``_key`` masks); ``info["action_mask"]`` is ``[N, K + 1]``.
    """

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int = 1,
        store: FeatureStore | str | os.PathLike[str] | None = None,
        speakers: Sequence[str] | None = None,
        exclude_speakers: Sequence[str] | None = None,
        obs_mode: str = "frame+mean",
        sampling: str = "random",
        reward_correct: float = 1.0,
        reward_wrong: float = -1.0,
        wait_cost: float = 0.01,
        masked_wait_reward: float = -1.0,
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        if int(num_envs) < 1:
            raise ValueError(f"num_envs: expected a positive integer, got {num_envs}")
        if render_mode is not None:
            raise ValueError("render_mode: the vector env does not render; use AVEmotionEnv")
        self.num_envs = int(num_envs)
        self.store = resolve_store(store, speakers, exclude_speakers)
        self.sampling = check_choice("sampling", sampling, SAMPLING_MODES)
        self.rewards = RewardSpec(float(reward_correct), float(reward_wrong), float(wait_cost), float(masked_wait_reward))
        self.layout = ObservationLayout(self.store, obs_mode)
        self.max_episode_steps = max_episode_steps
        self.render_mode = None
        self.n_classes = self.store.n_classes
        self.single_observation_space = self.layout.space
        self.single_action_space = spaces.Discrete(self.n_classes + 1)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

        n, dim = self.num_envs, self.store.dim
        self._frames = np.asarray(self.store.frames)
        self._obs = np.zeros((n, self.layout.size), dtype=np.float32)
        self._frame_buffer = np.zeros((n, dim), dtype=np.float32)
        self._mean = np.zeros((n, dim), dtype=np.float32)
        self._clip = np.zeros(n, dtype=np.int64)
        self._offset = np.zeros(n, dtype=np.int64)
        self._length = np.ones(n, dtype=np.int64)
        self._label = np.zeros(n, dtype=np.int64)
        self._t = np.zeros(n, dtype=np.int64)
        self._steps = np.zeros(n, dtype=np.int64)
        self._prediction = np.full(n, -1, dtype=np.int64)
        self._prev_done = np.zeros(n, dtype=bool)
        self._cursor = 0
        self._reset_called = False
        self._all_true = np.ones(n, dtype=bool)
        self._all_true.flags.writeable = False

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self._cursor = 0
        self._start_clips(self._all_true.copy())
        self._prev_done[:] = False
        self._reset_called = True
        return self._observe(self._all_true), self._info()

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self._reset_called:
            raise RuntimeError("step() called before reset()")
        a = self._validate(actions)
        restart = self._prev_done
        active = ~restart
        wait = (a == 0) & active
        can_wait = self._t < self._length - 1
        advance = wait & can_wait
        masked = wait & ~can_wait
        classify = (a > 0) & active

        reward = np.where(advance, -self.rewards.wait_cost, 0.0)
        prediction = a - 1
        correct = prediction == self._label
        reward = np.where(classify & correct, self.rewards.correct, reward)
        reward = np.where(classify & ~correct, self.rewards.wrong, reward)
        reward = np.where(masked, self.rewards.masked_wait, reward).astype(np.float32)
        self._prediction = np.where(classify, prediction, self._prediction)

        terminated = classify | masked
        self._t += advance
        self._steps += active
        if self.max_episode_steps is not None:
            truncated = active & ~terminated & (self._steps >= self.max_episode_steps)
        else:
            truncated = np.zeros(self.num_envs, dtype=bool)
        if restart.any():
            self._start_clips(restart)
        obs = self._observe(advance | restart)
        self._prev_done = terminated | truncated
        return obs, reward, terminated, truncated, self._info()

    def action_masks(self) -> np.ndarray:
        """Valid actions of every sub-env, a bool array ``[num_envs, K + 1]``."""
        mask = np.ones((self.num_envs, self.n_classes + 1), dtype=bool)
        mask[:, 0] = self._t < self._length - 1
        return mask

    # ------------------------------------------------------------------ internals
    def _validate(self, actions: Any) -> np.ndarray:
        a = np.asarray(actions)
        if a.shape != (self.num_envs,):
            raise InvalidActionError(f"actions: expected shape ({self.num_envs},), got {a.shape}")
        if not np.issubdtype(a.dtype, np.integer):
            raise InvalidActionError(f"actions: expected integers, got dtype {a.dtype}")
        if a.size and (a.min() < 0 or a.max() > self.n_classes):
            bad = int(a[(a < 0) | (a > self.n_classes)][0])
            raise InvalidActionError(f"actions: {bad} is out of range for Discrete({self.n_classes + 1})")
        return a.astype(np.int64, copy=False)

    def _start_clips(self, which: np.ndarray) -> None:
        count = int(which.sum())
        n_clips = self.store.n_clips
        if self.sampling == "random":
            clips = self.np_random.integers(n_clips, size=count)
        else:
            clips = (self._cursor + np.arange(count)) % n_clips
            self._cursor += count
        self._clip[which] = clips
        self._offset[which] = self.store.offsets[clips]
        self._length[which] = self.store.lengths[clips]
        self._label[which] = self.store.labels[clips]
        self._t[which] = 0
        self._steps[which] = 0
        self._prediction[which] = -1

    def _observe(self, moved: np.ndarray) -> np.ndarray:
        layout = self.layout
        np.take(self._frames, self._offset + self._t, axis=0, out=self._frame_buffer)
        if layout.with_mean:
            count = (self._t + 1).astype(np.float32)[:, None]
            self._mean += (self._frame_buffer - self._mean) / count * moved[:, None]
            self._obs[:, layout.mean_slice] = self._mean
        if layout.with_frame:
            self._obs[:, layout.frame_slice] = self._frame_buffer
        self._obs[:, -1] = self._t / layout.max_length
        return self._obs.copy()

    def _info(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "label": self._label.copy(),
            "frame_index": self._t.copy(),
            "clip_index": self._clip.copy(),
            "speaker": self.store.speaker_index[self._clip],
            "clip_length": self._length.copy(),
            "prediction": self._prediction.copy(),
            "action_mask": self.action_masks().astype(np.int8),
        }
        for key in INFO_KEYS:
            info[f"_{key}"] = self._all_true
        return info
