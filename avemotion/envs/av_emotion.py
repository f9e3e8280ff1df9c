"""``AVEmotion-v0``: decide, step by step, whether to wait for more evidence or name the emotion."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

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


def as_action_index(action: Any, n_actions: int) -> int:
    """Validate one action and return it as a Python int."""
    if isinstance(action, np.ndarray) and action.shape == ():
        action = action.item()
    if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)):
        raise InvalidActionError(
            f"action: expected an integer in [0, {n_actions - 1}], got {action!r} ({type(action).__name__})"
        )
    if not 0 <= action < n_actions:
        raise InvalidActionError(
            f"action: {int(action)} is out of range for Discrete({n_actions}) (0 = wait, k = class k-1)"
        )
    return int(action)


class AVEmotionEnv(gym.Env[np.ndarray, np.int64]):
    """
    ## Description

    Online emotion recognition from a stream of per-step audio-visual embeddings, after
    Kansizoglou, Bampis & Gasteratos, "An Active Learning Paradigm for Online Audio-Visual
    Emotion Recognition" (IEEE Trans. Affective Computing, 2019). Each episode is one clip
    of a :class:`~avemotion.FeatureStore`. At every step the agent sees one more time step of
    the clip and either waits for more evidence or names the emotion, which ends the episode.
    With no ``store`` the env reads the deterministic **synthetic** default corpus.

    ## Observation

    A float32 ``Box`` of shape ``(obs_dim,)`` with finite bounds (the store's value range,
    and ``[0, 1]`` for the time feature), the concatenation of:

    | part            | size | present when ``obs_mode`` is |
    |-----------------|------|------------------------------|
    | embedding of step t                    | dim | ``"frame"``, ``"frame+mean"`` |
    | running mean of steps 0..t             | dim | ``"mean"``, ``"frame+mean"`` |
    | t / T_max, saturating at 1             | 1   | always |

    ``T_max`` is ``max_length`` when given (a trained agent passes its training store's
    longest clip, so evaluation and streaming see the time feature it learned on), else
    the longest clip of the selected store.

    ## Actions

    ``Discrete(K + 1)``: ``0`` waits for the next step, ``k`` (1..K) classifies the clip as
    class ``k - 1`` of ``store.class_names``. Waiting on a clip's last step is impossible and
    masked out: see :meth:`action_masks` and ``info["action_mask"]`` (int8, 1 = allowed).

    ## Rewards

    A correct answer after observing ``t`` of the clip's ``T`` steps earns
    ``reward_correct · (1 − w · t / T)``, a wrong one ``reward_wrong``, every wait
    ``-wait_cost``. An agent that ignores the mask and waits on the last step gets
    ``masked_wait_reward`` and the episode ends as a wrong answer with
    ``info["prediction"] == -1``. Two presets (:meth:`~avemotion.envs.core.RewardSpec.preset`):

    | ``reward=``            | correct      | wrong | wait   | masked wait |
    |------------------------|--------------|-------|--------|-------------|
    | ``"earliness"`` (default) | ``1 − t / T`` (``w = 1``) | 0 | 0 | 0 |
    | ``"signed"``           | +1           | −1    | −0.01  | −1          |

    Every agent compared in this package trains on the default, so that a table compares
    learners, not objectives.

    ## Starting State

    ``reset`` picks a clip (uniformly at random from ``self.np_random`` with
    ``sampling="random"``; in store order, cycling, with ``sampling="sequential"``; or the
    one given by ``options={"clip_index": i}``) and returns its first step.

    ## Episode End

    The episode terminates when the agent classifies (or waits on the last step). It never
    lasts longer than the clip. ``truncated`` is only ever set by a ``TimeLimit`` wrapper
    (``gym.make(..., max_episode_steps=N)``). Calling ``step`` after the end raises.

    ## Information

    Every step and reset return the same numpy-typed keys: ``label``, ``frame_index``,
    ``clip_index`` (position in the store; ``env.unwrapped.store.clip(i).clip_id`` names it),
    ``speaker`` (index into ``store.speaker_names``), ``clip_length``, ``prediction``
    (-1 until the agent answers) and ``action_mask``.

    ## Arguments

    ```python
    import avemotion, gymnasium as gym
    env = gym.make("AVEmotion-v0", store=None, speakers=None, exclude_speakers=None,
                   obs_mode="frame+mean", sampling="random", reward="earliness",
                   earliness_weight=None, reward_correct=None, reward_wrong=None,
                   wait_cost=None, masked_wait_reward=None)
    ```

    * ``store``: a :class:`FeatureStore`, a path to one, or ``None`` for the synthetic corpus.
    * ``speakers`` / ``exclude_speakers``: keep only / drop these speakers' clips.
    * ``obs_mode``: ``"frame"``, ``"mean"`` or ``"frame+mean"`` (see Observation).
    * ``sampling``: ``"random"`` or ``"sequential"`` (evaluation sweeps each clip once).
    * ``reward``: the preset, ``"earliness"`` or ``"signed"``; ``earliness_weight`` (``w``),
      ``reward_correct``, ``reward_wrong``, ``wait_cost``, ``masked_wait_reward`` replace
      one of its values (None keeps the preset's): see Rewards.
    * ``max_length``: T_max of the time feature (default: the longest selected clip).
    * ``preload``: ``"auto"`` (default) holds the observations of a store up to 1 GiB in
      memory, ``True`` always, ``False`` reads the memory map step by step.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 10}

    def __init__(
        self,
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
        preload: bool | str = "auto",
        render_mode: str | None = None,
    ) -> None:
        self.store = resolve_store(store, speakers, exclude_speakers)
        self.sampling = check_choice("sampling", sampling, SAMPLING_MODES)
        self.rewards = RewardSpec.preset(
            reward, reward_correct, reward_wrong, wait_cost, masked_wait_reward, earliness_weight
        )
        self.layout = ObservationLayout(self.store, obs_mode, max_length)
        self.n_classes = self.store.n_classes
        self.observation_space = self.layout.space
        self.action_space = spaces.Discrete(self.n_classes + 1)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode: expected one of {self.metadata['render_modes']}, got {render_mode!r}"
            )
        self.render_mode = render_mode
        self._source = FrameSource(self.store, self.layout, preload)
        self._obs = np.zeros(self.layout.size, dtype=np.float32)
        self._masks = (
            np.ones(self.n_classes + 1, dtype=np.int8),
            np.ones(self.n_classes + 1, dtype=np.int8),
        )
        self._masks[0][0] = 0  # index 0: waiting forbidden (last step); index 1: all allowed
        self._static_info: dict[str, Any] = {}
        self._mean = np.zeros(self.store.dim, dtype=np.float32)
        self._cursor = 0
        self._clip = -1
        self._t = 0
        self._length = 0
        self._label = 0
        self._prediction = -1
        self._done = True
        self._row = 0

    # ------------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self._cursor = 0
        clip = (options or {}).get("clip_index")
        if clip is None:
            if self.sampling == "random":
                clip = int(self.np_random.integers(self.store.n_clips))
            else:
                clip = self._cursor % self.store.n_clips
                self._cursor += 1
        elif not 0 <= int(clip) < self.store.n_clips:
            raise IndexError(
                f"options['clip_index']: {clip} is out of range for {self.store.n_clips} clips"
            )
        self._clip = int(clip)
        self._length = int(self.store.lengths[self._clip])
        self._label = int(self.store.labels[self._clip])
        self._t = 0
        self._prediction = -1
        self._done = False
        self._row = int(self.store.offsets[self._clip])
        self._mean[:] = 0.0
        self._static_info = {
            "label": np.int64(self._label),
            "clip_index": np.int64(self._clip),
            "speaker": np.int64(self.store.speaker_index[self._clip]),
            "clip_length": np.int64(self._length),
        }
        return self._observe(), self._info()

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        if self._done:
            raise RuntimeError("step() called after the episode ended; call reset() first")
        a = (
            action
            if type(action) is int and 0 <= action <= self.n_classes
            else as_action_index(action, self.n_classes + 1)
        )
        if a == 0:
            if self._t < self._length - 1:
                self._t += 1
                return self._observe(), -self.rewards.wait_cost, False, False, self._info()
            reward = self.rewards.masked_wait
        else:
            self._prediction = a - 1
            reward = (
                self.rewards.correct_reward(self._t + 1, self._length)
                if self._prediction == self._label
                else self.rewards.wrong
            )
        self._done = True
        return self._last_obs(), float(reward), True, False, self._info()

    def _last_obs(self) -> np.ndarray:
        if self._source.obs_table is not None:
            return self._source.obs_table[self._row + self._t].copy()
        return self._obs.copy()

    def action_masks(self) -> np.ndarray:
        """Valid actions now, as a bool array of size K + 1 (waiting is invalid on the last step)."""
        mask = np.ones(self.n_classes + 1, dtype=bool)
        mask[0] = self._t < self._length - 1
        return mask

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        clip = self.store.clip(self._clip) if self._clip >= 0 else None
        if clip is None:
            return "AVEmotion: not reset"
        answer = "waiting" if self._prediction < 0 else self.store.class_names[self._prediction]
        return f"{clip.clip_id} ({clip.speaker}, {self.store.class_names[clip.label]}): step {self._t + 1}/{self._length}, {answer}"

    # ------------------------------------------------------------------ internals
    def _observe(self) -> np.ndarray:
        row = self._row + self._t
        if self._source.obs_table is not None:
            return self._source.obs_table[row].copy()
        self.layout.advance(self._obs, self._mean, self._source.frames[row], self._t)
        return self._obs.copy()

    def _info(self) -> dict[str, Any]:
        return {
            **self._static_info,
            "frame_index": np.int64(self._t),
            "prediction": np.int64(self._prediction),
            "action_mask": self._masks[int(self._t < self._length - 1)].copy(),
        }
