"""Which audio each step's Whisper features read: the causal re-encoding schedule.

Step ``i`` owns the window ``[i·hop, i·hop + WINDOW_SAMPLES)`` (:mod:`avemotion.encoders.frontend`),
so it ends at sample ``e_i = i·hop + WINDOW_SAMPLES``. Every ``every`` steps the frozen
encoder reads the audio heard so far, capped to its last ``window`` seconds: step
``j·every`` encodes ``[max(0, e − window), e)`` with ``e = e_{j·every}``, and steps
``j·every … j·every + every − 1`` share that encoding. A step therefore never reads audio
past its own end, Whisper sees up to ``window`` seconds of context (independent short
chunks lose the gain, docs/whisper-branch.md), and a step costs at most one encoding of
``window`` seconds every ``every`` steps, however long the utterance.

Each encoding is pooled per layer to mean ⊕ std over its last ``pool`` seconds of 20 ms
frames (0: every frame), giving ``[layers, 2 · width]``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from avemotion.encoders.frontend import WINDOW_SAMPLES, step_hop
from avemotion.encoders.media import AUDIO_RATE

FRAME_SECONDS = 0.02
"""Whisper's encoder frame: two 10 ms log-mel frames (its second convolution has stride 2)."""


@dataclass(frozen=True)
class WhisperSchedule:
    """The causal schedule (module docstring): re-encode every ``hop`` seconds, at most the
    last ``window`` seconds, pool over the last ``pool`` seconds of frames (0: all). The
    defaults were chosen on training speakers (docs/whisper-branch.md)."""

    hop: float = 0.5
    window: float = 3.0
    pool: float = 1.0

    def __post_init__(self) -> None:
        for name, least in (("hop", 0.0), ("window", 0.0), ("pool", -1e-12)):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > least:
                raise ValueError(
                    f"whisper.{name}: expected a number > {max(least, 0)}, got {value!r}"
                )
        if not math.isfinite(self.hop + self.window + self.pool):
            raise ValueError(f"whisper schedule: expected finite numbers, got {self}")

    @classmethod
    def from_section(cls, section: dict[str, Any]) -> WhisperSchedule:
        """The schedule kept in an encoder config's ``audio`` section."""
        defaults = cls()
        return cls(
            float(section.get("hop", defaults.hop)),
            float(section.get("window", defaults.window)),
            float(section.get("pool", defaults.pool)),
        )

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def every(self, steps_per_second: float) -> int:
        """Steps between two encodings (at least 1)."""
        return max(1, round(self.hop * steps_per_second))

    @property
    def window_samples(self) -> int:
        return int(round(self.window * AUDIO_RATE))

    @property
    def pool_frames(self) -> int:
        """Encoder frames pooled per encoding (0: all of them)."""
        return int(round(self.pool / FRAME_SECONDS))


def encoding_of_steps(count: int, every: int) -> torch.Tensor:
    """The encoding each of ``count`` steps reads: ``[count]`` with step ``i`` → ``i // every``."""
    return torch.arange(count) // every


def encoding_spans(
    count: int, steps_per_second: float, schedule: WhisperSchedule
) -> list[tuple[int, int]]:
    """Sample ranges ``(start, end)`` of the encodings of a ``count``-step clip, in order."""
    hop, every = step_hop(steps_per_second), schedule.every(steps_per_second)
    spans = []
    for step in range(0, count, every):
        end = step * hop + WINDOW_SAMPLES
        spans.append((max(0, end - schedule.window_samples), end))
    return spans


def pool_layers(outputs: torch.Tensor, frames: int = 0) -> torch.Tensor:
    """``[layers, F, width]`` encoder outputs to ``[layers, 2 · width]``: mean ⊕ standard
    deviation (population) over the last ``frames`` frames (0: all)."""
    if frames > 0:
        outputs = outputs[:, -frames:]
    mean = outputs.mean(dim=1)
    std = (outputs - mean[:, None]).pow(2).mean(dim=1).sqrt()
    return torch.cat([mean, std], dim=-1)
