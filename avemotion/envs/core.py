"""What the single and the vector environment share: store resolution, rewards, observations."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from avemotion.envs.synthetic import synthetic_store
from avemotion.store import FeatureStore

OBS_MODES = ("frame", "mean", "frame+mean")
SAMPLING_MODES = ("random", "sequential")


class InvalidActionError(ValueError):
    """An action outside ``Discrete(K + 1)``, or not an integer."""


REWARDS = ("earliness", "signed")
"""Reward presets of ``AVEmotion-v0`` (see :meth:`RewardSpec.preset`)."""
DEFAULT_EARLINESS_WEIGHT = 1.0
"""``w`` of the ``"earliness"`` reward: a correct answer earns the share of the clip it did
not need, ``1 − t / T``; answering correctly at the last step earns what a wrong one does."""
DEFAULT_WAIT_COST = 0.01
"""Cost of one wait under the ``"signed"`` reward (the only wait-cost default)."""


@dataclass(frozen=True)
class RewardSpec:
    """Rewards of ``AVEmotion-v0``: one formula, two presets, every value configurable.

    A correct answer after observing ``t`` of the clip's ``T`` steps earns
    ``correct · (1 − earliness_weight · t / T)``, a wrong one ``wrong``, a wait
    ``-wait_cost``, and a wait on the last step (masked) ``masked_wait`` and ends the
    episode as a wrong answer.
    """

    correct: float = 1.0
    """Reward for classifying the clip as its true class after observing none of it."""
    wrong: float = 0.0
    """Reward for classifying the clip as another class."""
    wait_cost: float = 0.0
    """Cost of waiting one step: the reward of a wait is ``-wait_cost``."""
    masked_wait: float = 0.0
    """Reward for waiting on the last step, which the mask forbids; the episode then ends
    as a wrong answer (``info["prediction"] == -1``)."""
    earliness_weight: float = DEFAULT_EARLINESS_WEIGHT
    """``w``: how much of a correct answer's reward the fraction observed takes away."""
    name: str = "earliness"
    """The preset the values started from (recorded with every run)."""

    @classmethod
    def preset(
        cls,
        reward: str = "earliness",
        correct: float | None = None,
        wrong: float | None = None,
        wait_cost: float | None = None,
        masked_wait: float | None = None,
        earliness_weight: float | None = None,
    ) -> RewardSpec:
        """The values of preset ``reward``, with any value given here in its place.

        - ``"earliness"`` (default): correct ``1 − w · t / T`` with ``w = 1``, wrong 0,
          wait 0, masked wait 0. The expected return is E[correct · (1 − w · earliness)],
          whose optimum lies inside the clip, as the harmonic mean's does; a linear wait
          cost makes the return nearly flat along the accuracy/earliness curve.
        - ``"signed"``: correct +1, wrong −1, wait −0.01, masked wait −1, no earliness term.
        """
        check_choice("reward", reward, REWARDS)
        earliness = reward == "earliness"
        values = {
            "correct": 1.0 if correct is None else correct,
            "wrong": (0.0 if earliness else -1.0) if wrong is None else wrong,
            "wait_cost": (0.0 if earliness else DEFAULT_WAIT_COST)
            if wait_cost is None
            else wait_cost,
            "masked_wait": (0.0 if earliness else -1.0) if masked_wait is None else masked_wait,
            "earliness_weight": (DEFAULT_EARLINESS_WEIGHT if earliness else 0.0)
            if earliness_weight is None
            else earliness_weight,
        }
        for key, value in values.items():
            if not np.isfinite(float(value)):
                raise ValueError(f"{key}: expected a finite number, got {value!r}")
        if not 0.0 <= float(values["earliness_weight"]) <= 1.0:
            raise ValueError(
                f"earliness_weight: expected a number in [0, 1], got {values['earliness_weight']!r}"
            )
        return cls(**{k: float(v) for k, v in values.items()}, name=reward)

    def reward_at(self, fraction: np.ndarray | float) -> Any:
        """Reward of a correct answer after observing ``fraction`` of the clip: the one
        formula every reader of the reward (the envs, our DQN's replay) computes it with."""
        return self.correct * (1.0 - self.earliness_weight * fraction)

    def correct_reward(self, steps_observed: np.ndarray | int, length: np.ndarray | int) -> Any:
        """Reward of a correct answer after ``steps_observed`` of ``length`` steps."""
        return self.reward_at(steps_observed / length)

    def correct_rewards(self, fraction: np.ndarray) -> np.ndarray:
        """float32 :meth:`reward_at` of each fraction (a replay's counterfactual targets)."""
        return np.asarray(self.reward_at(fraction), dtype=np.float32)

    def answer_rewards(self, fraction: np.ndarray, hit: np.ndarray) -> np.ndarray:
        """float32 reward of each step from its outcome: :meth:`reward_at` where it was a
        right answer (``hit``), else 0. Only a reward whose waits and wrong answers both
        earn 0 (the earliness preset) is a function of the outcome alone."""
        if self.wrong != 0.0 or self.wait_cost != 0.0:
            raise ValueError(f"reward {self.name!r}: wrong answers or waits earn more than 0")
        return np.where(hit, self.reward_at(fraction), 0.0).astype(np.float32)

    def as_dict(self) -> dict[str, Any]:
        """The values, as recorded in a run's ``config.json``."""
        return dataclasses.asdict(self)


def resolve_store(
    store: FeatureStore | str | os.PathLike[str] | None,
    speakers: Sequence[str] | None = None,
    exclude_speakers: Sequence[str] | None = None,
) -> FeatureStore:
    """Open ``store`` (a FeatureStore, a path, or ``None`` for the synthetic corpus) and select speakers."""
    if store is None:
        store = synthetic_store()
    elif isinstance(store, (str, os.PathLike)):
        store = FeatureStore.open(store)
    elif not isinstance(store, FeatureStore):
        raise TypeError(
            f"store: expected a FeatureStore, a path or None, got {type(store).__name__}"
        )
    if store.frames.dtype != np.float32:
        raise TypeError(f"{store.path}: frames: expected float32, got {store.frames.dtype}")
    if speakers is not None or exclude_speakers:
        store = store.subset(speakers=speakers, exclude_speakers=exclude_speakers)
    return store


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name}: expected one of {list(choices)}, got {value!r}")
    return value


class ObservationLayout:
    """Where each part sits in the flat observation ``[frame?, running mean?, t / T_max]``."""

    def __init__(self, store: FeatureStore, obs_mode: str, max_length: int | None = None) -> None:
        check_choice("obs_mode", obs_mode, OBS_MODES)
        self.mode = obs_mode
        self.dim = store.dim
        self.with_frame = obs_mode in ("frame", "frame+mean")
        self.with_mean = obs_mode in ("mean", "frame+mean")
        self.frame_slice = slice(0, self.dim) if self.with_frame else slice(0, 0)
        start = self.dim if self.with_frame else 0
        self.mean_slice = slice(start, start + self.dim) if self.with_mean else slice(start, start)
        self.size = self.mean_slice.stop + 1
        if max_length is not None and int(max_length) < 1:
            raise ValueError(f"max_length: expected a positive number of steps, got {max_length}")
        # T_max of the time feature t / T_max. A trained agent fixes it (its training store's
        # longest clip) so that evaluation and streaming see the time feature it learned on;
        # longer clips saturate at 1.
        self.max_length = int(max_length) if max_length is not None else int(store.lengths.max())
        lo, hi = store.value_range
        low = np.full(self.size, lo, dtype=np.float32)
        high = np.full(self.size, hi, dtype=np.float32)
        low[-1], high[-1] = 0.0, 1.0
        self.space = spaces.Box(low=low, high=high, dtype=np.float32)

    def advance(self, obs: np.ndarray, mean: np.ndarray, frame: np.ndarray, t: int) -> None:
        """Write step ``t``'s observation into ``obs``, updating the running ``mean`` in place.

        The float32 update every streaming reader uses (the single env without a
        preloaded table, and the online recognizer); ``FrameSource`` and the vector env
        apply the same arithmetic to many clips at once.
        """
        if self.with_mean:
            mean += (frame - mean) / np.float32(t + 1)
            obs[self.mean_slice] = mean
        if self.with_frame:
            obs[self.frame_slice] = frame
        obs[-1] = self.progress(t)

    def progress(self, t: int | np.ndarray) -> float | np.ndarray:
        """The time feature of step ``t``: ``t / T_max``, saturating at 1."""
        return np.minimum(t / self.max_length, 1.0)


PRELOAD_LIMIT_BYTES = 1 << 30


class FrameSource:
    """Frames as the envs read them: copied into RAM when small, else read from the memory map.

    With ``preload="auto"`` a store whose observation table (every row's observation, see
    below) takes at most 1 GiB is held in memory; a larger one is read through the memory
    map and never loaded whole (random row reads from a memory map are about twice as slow).
    In memory, ``obs_table`` holds each row's full observation (frame, running mean from
    the clip's start, ``t / T_max``), computed once with the same float32 update as the
    streaming path, so an observation is a single row read.
    """

    def __init__(
        self, store: FeatureStore, layout: ObservationLayout, preload: bool | str = "auto"
    ) -> None:
        if preload not in (True, False, "auto"):
            raise ValueError(f"preload: expected True, False or 'auto', got {preload!r}")
        table_bytes = len(store.frames) * layout.size * 4
        self.in_memory = preload is True or (
            preload == "auto" and table_bytes <= PRELOAD_LIMIT_BYTES
        )
        self.frames: np.ndarray = np.asarray(store.frames)
        self.obs_table: np.ndarray | None = None
        if self.in_memory:
            self.obs_table = self._build_table(store, layout)

    def _build_table(self, store: FeatureStore, layout: ObservationLayout) -> np.ndarray:
        table = np.zeros((len(self.frames), layout.size), dtype=np.float32)
        mean = np.zeros((store.n_clips, layout.dim), dtype=np.float32)
        for t in range(int(store.lengths.max())):
            clips = np.flatnonzero(store.lengths > t)
            rows = store.offsets[clips] + t
            frames = np.asarray(self.frames[rows])
            if layout.with_mean:
                mean[clips] += (frames - mean[clips]) / np.float32(t + 1)
                table[rows, layout.mean_slice] = mean[clips]
            if layout.with_frame:
                table[rows, layout.frame_slice] = frames
            table[rows, -1] = layout.progress(t)
        return table
