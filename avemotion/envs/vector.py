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
    FrameSource,
    InvalidActionError,
    ObservationLayout,
    RewardSpec,
    check_choice,
    resolve_store,
)
from avemotion.store import FeatureStore

INFO_KEYS = (
    "label",
    "frame_index",
    "clip_index",
    "speaker",
    "clip_length",
    "prediction",
    "action_mask",
)


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
        reward: str = "earliness",
        earliness_weight: float | None = None,
        reward_correct: float | None = None,
        reward_wrong: float | None = None,
        wait_cost: float | None = None,
        masked_wait_reward: float | None = None,
        max_length: int | None = None,
        max_episode_steps: int | None = None,
        preload: bool | str = "auto",
        render_mode: str | None = None,
    ) -> None:
        if int(num_envs) < 1:
            raise ValueError(f"num_envs: expected a positive integer, got {num_envs}")
        if render_mode is not None:
            raise ValueError("render_mode: the vector env does not render; use AVEmotionEnv")
        self.num_envs = int(num_envs)
        self.store = resolve_store(store, speakers, exclude_speakers)
        self.sampling = check_choice("sampling", sampling, SAMPLING_MODES)
        self.rewards = RewardSpec.preset(
            reward, reward_correct, reward_wrong, wait_cost, masked_wait_reward, earliness_weight
        )
        self.layout = ObservationLayout(self.store, obs_mode, max_length)
        self.max_episode_steps = max_episode_steps
        self.render_mode = None
        self.n_classes = self.store.n_classes
        self.single_observation_space = self.layout.space
        self.single_action_space = spaces.Discrete(self.n_classes + 1)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

        n, dim = self.num_envs, self.store.dim
        self._source = FrameSource(self.store, self.layout, preload)
        # Reward by outcome code: 0 restart, 1 wait, 2 masked wait, 3 wrong, 4 correct.
        r = self.rewards
        self._reward_table = np.array(
            [0.0, -r.wait_cost, r.masked_wait, r.wrong, r.correct], dtype=np.float32
        )
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
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self._cursor = 0
        self._start_clips(self._all_true.copy())
        self._prev_done[:] = False
        self._reset_called = True
        return self._observe(self._all_true), self._info()

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self._reset_called:
            raise RuntimeError("step() called before reset()")
        a = self._validate(actions)
        restart = self._prev_done
        active = ~restart
        can_wait = self._t < self._length - 1
        wait = (a == 0) & active
        advance = wait & can_wait
        masked = wait & ~can_wait
        classify = (a > 0) & active
        correct = classify & (a - 1 == self._label)

        reward = self._reward_table[advance + 2 * masked + 3 * classify + correct]
        if self.rewards.earliness_weight and correct.any():
            reward[correct] = self.rewards.correct_reward(
                self._t[correct] + 1, self._length[correct]
            )
        np.copyto(self._prediction, a - 1, where=classify)
        terminated = classify | masked
        self._t += advance
        if self.max_episode_steps is not None:
            self._steps += active
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
        if a.dtype.kind not in "iu":
            raise InvalidActionError(f"actions: expected integers, got dtype {a.dtype}")
        a = a.astype(np.int64, copy=False)
        if (a.view(np.uint64) > self.n_classes).any():
            bad = int(a[(a < 0) | (a > self.n_classes)][0])
            raise InvalidActionError(
                f"actions: {bad} is out of range for Discrete({self.n_classes + 1})"
            )
        return a

    def _start_clips(self, which: np.ndarray) -> None:
        envs = np.flatnonzero(which)
        n_clips = self.store.n_clips
        if self.sampling == "random":
            clips = self.np_random.integers(n_clips, size=len(envs))
        else:
            clips = (self._cursor + np.arange(len(envs))) % n_clips
            self._cursor += len(envs)
        self._clip[envs] = clips
        self._offset[envs] = self.store.offsets[clips]
        self._length[envs] = self.store.lengths[clips]
        self._label[envs] = self.store.labels[clips]
        self._t[envs] = 0
        self._steps[envs] = 0
        self._prediction[envs] = -1

    def _observe(self, moved: np.ndarray) -> np.ndarray:
        layout = self.layout
        rows = self._offset + self._t
        if self._source.obs_table is not None:
            return self._source.obs_table.take(rows, axis=0)
        obs = np.empty((self.num_envs, layout.size), dtype=np.float32)
        frames = self._source.frames.take(rows, axis=0)
        if layout.with_mean:
            count = (self._t + 1).astype(np.float32)[:, None]
            self._mean += (frames - self._mean) / count * moved[:, None]
            obs[:, layout.mean_slice] = self._mean
        if layout.with_frame:
            obs[:, layout.frame_slice] = frames
        obs[:, -1] = layout.progress(self._t)
        return obs

    def _info(self) -> dict[str, Any]:
        mask = np.ones((self.num_envs, self.n_classes + 1), dtype=np.int8)
        mask[:, 0] = self._t < self._length - 1
        info: dict[str, Any] = {
            "label": self._label.copy(),
            "frame_index": self._t.copy(),
            "clip_index": self._clip.copy(),
            "speaker": self.store.speaker_index[self._clip],
            "clip_length": self._length.copy(),
            "prediction": self._prediction.copy(),
            "action_mask": mask,
        }
        for key in INFO_KEYS:
            info[f"_{key}"] = self._all_true
        return info
