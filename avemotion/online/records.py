"""What the recognizer reports: one :class:`StepResult` per step, and :class:`StageTimes`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

STAGES = (
    "decode",
    "face_detection",
    "visual_cnn",
    "audio_frontend",
    "audio_cnn",
    "fusion",
    "lstm",
    "policy",
)
"""Pipeline stages timed by :class:`StageTimes` (``decode`` is timed by the media source)."""


@dataclass
class StageTimes:
    """Wall seconds spent in each stage, the wall time of every encoded step, and, with
    ``cpu``, the CPU seconds (all threads of the process) of each stage.

    The CPU clock is off by default: reading it is a system call that sums every thread of
    the process (3 us a read alone, against 0.2 us for the wall clock; more with the
    recognizer's threads under load: a CPU-sized stream pass took 0.746 s with it and 0.726 s
    without, median of 6 interleaved passes at load average 6 on 2 cores)."""

    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    cpu_seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    step_latencies: list[float] = field(default_factory=list)
    cpu: bool = False

    @contextmanager
    def stage(self, name: str) -> Any:
        if not self.cpu:
            start = time.perf_counter()
            try:
                yield
            finally:
                self.seconds[name] += time.perf_counter() - start
            return
        start, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start
            self.cpu_seconds[name] += time.process_time() - cpu


@dataclass
class StepResult:
    """What the recognizer knows after one step."""

    step: int
    """Step index from the start of the stream."""
    time_s: float
    """Centre of the step's audio window, in seconds of stream time."""
    posteriors: np.ndarray
    """Class posteriors of the temporal model after this step."""
    action: int | None
    """The agent's action (0 = wait, k = class k − 1); ``None`` after the decision."""
    decided: bool
    """Whether the agent has answered (at this step or before)."""
    prediction: int | None = None
    """The answered class index, once decided."""
    forced: bool = False
    """The answer was forced (stream end or longest training clip reached)."""
    agent_posteriors: np.ndarray | None = None
    """The class posterior the agent's stopping rule read at this step (the run's posterior
    model, over the agent's classes); ``None`` after the decision, or for an agent that
    reads none. It can differ from ``posteriors``, the encoder's own."""

    def to_json(
        self, class_names: Sequence[str], posterior_names: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """JSON-ready form; ``class_names`` name the answer, ``posterior_names`` (default
        the same) the posteriors."""
        names = class_names if posterior_names is None else posterior_names
        return {
            "step": self.step,
            "time_s": round(self.time_s, 4),
            "posteriors": {name: float(p) for name, p in zip(names, self.posteriors)},
            "action": self.action,
            "decided": self.decided,
            "prediction": None if self.prediction is None else class_names[self.prediction],
            "forced": self.forced,
            "agent_posteriors": None
            if self.agent_posteriors is None
            else {name: float(p) for name, p in zip(class_names, self.agent_posteriors)},
        }
