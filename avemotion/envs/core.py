"""What the single and the vector environment share: store resolution, rewards, observations."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from avemotion.envs.synthetic import synthetic_store
from avemotion.store import FeatureStore

OBS_MODES = ("frame", "mean", "frame+mean")
SAMPLING_MODES = ("random", "sequential")


class InvalidActionError(ValueError):
    """An action outside ``Discrete(K + 1)``, or not an integer."""


@dataclass(frozen=True)
class RewardSpec:
    """Rewards of ``AVEmotion-v0``; every value is configurable through the env's arguments."""

    correct: float = 1.0
    """Reward for classifying the clip as its true class."""
    wrong: float = -1.0
    """Reward for classifying the clip as another class."""
    wait_cost: float = 0.01
    """Cost of waiting one step: the reward of a wait is ``-wait_cost``."""
    masked_wait: float = -1.0
    """Reward for waiting on the last step, which the mask forbids; the episode then ends
    as a wrong answer (``info["prediction"] == -1``)."""


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
