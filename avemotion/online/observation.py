"""The agent's observation of a live stream, built as ``AVEmotion-v0`` builds it.

The env's observation of step ``t`` is ``[frame?, running mean of 0..t?, t / T_max]`` laid
out by :class:`~avemotion.envs.core.ObservationLayout`, with the float32 running-mean
update of ``ObservationLayout.advance``. :class:`StreamingObservation` applies that layout
and that update to rows that arrive one at a time; :func:`run_layout` rebuilds the
layout the run was trained with (``T_max`` is the longest clip of its training selection,
or the run's own ``max_length`` when its config records one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from avemotion.agents.dqn.posterior_input import LOG_FLOOR
from avemotion.envs.core import ObservationLayout, resolve_store
from avemotion.store import FeatureStore
from avemotion.training.run_dir import training_store as recorded_training_store


class StreamingObservation:
    """Observations of one stream, one step at a time."""

    def __init__(self, layout: ObservationLayout) -> None:
        self.layout = layout
        self._obs = np.zeros(layout.size, dtype=np.float32)
        self._mean = np.zeros(layout.dim, dtype=np.float32)
        self.t = 0

    @property
    def max_length(self) -> int:
        """``T_max``: the longest training clip, in steps."""
        return self.layout.max_length

    def reset(self) -> None:
        self._mean[:] = 0.0
        self.t = 0

    def advance(self, frame: np.ndarray) -> np.ndarray:
        """The observation of the next step, given its row at the store's level."""
        frame = np.asarray(frame, dtype=np.float32)
        if frame.shape != (self.layout.dim,):
            raise ValueError(
                f"frame: expected {self.layout.dim} values per step, got shape {frame.shape}"
            )
        self.layout.advance(self._obs, self._mean, frame, self.t)
        self.t += 1
        return self._obs.copy()


def training_store(run_config: dict[str, Any], run_dir: str) -> FeatureStore:
    """The feature store a run was trained on, with the run's speaker selection applied
    (an unverified open: only its metadata and lengths are read; a store changed since the
    run was trained on it is refused, as evaluation refuses it)."""
    record = run_config.get("training")
    # a run from before runs recorded their training data names its store at the top level
    path = run_config.get("store") if record is None else record.get("store")
    if path is None:
        raise ValueError(
            f"{run_dir}: store: the run was trained on the synthetic corpus, which no encoder produced"
        )
    if record is not None:
        return recorded_training_store(run_dir, run_config, verify=False)
    store = FeatureStore.open(path, verify=False)
    return resolve_store(store, run_config.get("speakers"), run_config.get("exclude_speakers"))


@dataclass
class LogPosteriorRows:
    """What :class:`ObservationLayout` reads of the store an agent with
    ``agent_input == "posteriors"`` steps: K log-posteriors per step, in
    ``[log LOG_FLOOR, 0]``, over the training clips' lengths."""

    dim: int
    lengths: np.ndarray
    value_range: tuple[float, float] = (float(np.log(LOG_FLOOR)), 0.0)


def run_layout(run_config: dict[str, Any], store: FeatureStore) -> ObservationLayout:
    """The observation layout of the run's training env (over the store's rows, or over
    their log-posteriors when the agent reads those)."""
    obs_mode = run_config["agent_config"].get("obs_mode", "frame+mean")
    rows: Any = store
    if run_config.get("agent_input") == "posteriors":
        rows = LogPosteriorRows(store.n_classes, store.lengths)
    layout = ObservationLayout(rows, obs_mode)
    if run_config.get("max_length"):  # T_max recorded by the run itself, when it is
        layout.max_length = int(run_config["max_length"])
    if layout.size != int(run_config["obs_dim"]):
        raise ValueError(
            f"{store.path}: obs_dim: the store gives {layout.size}, the run was trained with {run_config['obs_dim']}"
        )
    return layout
