"""The training log every agent writes: a CSV (``training_log.csv``) plus TensorBoard scalars.

Episodes are summarised in windows: each row holds the number of environment steps so far
and the mean return, accuracy, earliness and harmonic mean of the episodes that ended since
the previous row, plus whatever the algorithm adds (loss, ε, ...).
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

import numpy as np

from avemotion.metrics import harmonic_mean

LOG_NAME = "training_log.csv"
BASE_COLUMNS = (
    "env_steps",
    "episodes",
    "episode_return",
    "accuracy",
    "earliness",
    "harmonic_mean",
    "steps_per_s",
    "wall_s",
)


class TrainingLog:
    """Collects finished episodes and writes a row every ``log_every`` environment steps.

    With ``resume=True`` the CSV is appended to, rows past ``start_step`` are dropped first
    (they belong to work that the checkpoint did not keep), and the clock continues from
    the last row's wall time.
    """

    def __init__(
        self,
        run_dir: Path,
        extra_columns: tuple[str, ...] = (),
        resume: bool = False,
        start_step: int = 0,
        tensorboard: bool = True,
    ) -> None:
        self.path = Path(run_dir) / LOG_NAME
        self.columns = BASE_COLUMNS + tuple(c for c in extra_columns if c not in BASE_COLUMNS)
        self.episodes = 0
        self.wall_offset = 0.0
        kept: list[dict[str, str]] = []
        if resume and self.path.is_file():
            with open(self.path, newline="") as handle:
                kept = [
                    row
                    for row in csv.DictReader(handle)
                    if int(float(row["env_steps"])) <= start_step
                ]
            if kept:
                self.episodes = int(float(kept[-1]["episodes"]))
                self.wall_offset = float(kept[-1]["wall_s"])
        with open(self.path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(kept)
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(
                str(Path(run_dir) / "tensorboard"), purge_step=start_step if resume else None
            )
        self._returns: list[float] = []
        self._correct: list[bool] = []
        self._earliness: list[float] = []
        self._start = time.perf_counter()
        self._window_start = self._start
        self._window_step = start_step

    def episode(
        self, episode_return: float, correct: bool, steps_observed: int, clip_length: int
    ) -> None:
        """Record one finished training episode."""
        self.episodes += 1
        self._returns.append(float(episode_return))
        self._correct.append(bool(correct))
        self._earliness.append(steps_observed / clip_length)

    def episodes_batch(
        self, returns: np.ndarray, correct: np.ndarray, steps: np.ndarray, lengths: np.ndarray
    ) -> None:
        """Record many finished episodes at once (arrays of equal length)."""
        self.episodes += len(returns)
        self._returns.extend(np.asarray(returns, dtype=float).tolist())
        self._correct.extend(np.asarray(correct, dtype=bool).tolist())
        self._earliness.extend((np.asarray(steps) / np.asarray(lengths)).tolist())

    def elapsed(self) -> float:
        """Wall-clock seconds of training, including the time before a resume."""
        return self.wall_offset + time.perf_counter() - self._start

    def row(self, env_steps: int, **extra: float) -> dict[str, Any]:
        """Write one row for the window ending at ``env_steps`` and start a new window."""
        now = time.perf_counter()
        rate = (env_steps - self._window_step) / max(now - self._window_start, 1e-9)
        accuracy = float(np.mean(self._correct)) if self._correct else float("nan")
        earliness = float(np.mean(self._earliness)) if self._earliness else float("nan")
        values: dict[str, Any] = {
            "env_steps": env_steps,
            "episodes": self.episodes,
            "episode_return": float(np.mean(self._returns)) if self._returns else float("nan"),
            "accuracy": accuracy,
            "earliness": earliness,
            "harmonic_mean": harmonic_mean(accuracy, earliness) if self._correct else float("nan"),
            "steps_per_s": rate,
            "wall_s": self.elapsed(),
            **extra,
        }
        with open(self.path, "a", newline="") as handle:
            csv.DictWriter(handle, fieldnames=self.columns, extrasaction="ignore").writerow(values)
        if self.writer is not None:
            for key, value in values.items():
                if key != "env_steps" and isinstance(value, (int, float)) and np.isfinite(value):
                    self.writer.add_scalar(f"train/{key}", value, env_steps)
            self.writer.flush()
        self._returns.clear()
        self._correct.clear()
        self._earliness.clear()
        self._window_start, self._window_step = now, env_steps
        return values

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_log(run_dir: Path) -> dict[str, np.ndarray]:
    """Read a run's ``training_log.csv`` as columns of floats."""
    with open(Path(run_dir) / LOG_NAME, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return {}
    return {
        key: np.array([float(r[key]) if r[key] not in ("", None) else np.nan for r in rows])
        for key in rows[0]
    }
