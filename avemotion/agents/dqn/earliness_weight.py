"""The earliness weight matched to the harmonic mean: ``w = A / ((1 − E)² + A E)``,
tracked from the training episodes (the derivation: docs/agents.md)."""

from __future__ import annotations

from typing import Any

import numpy as np


def matched_weight(accuracy: float, earliness: float, bounds: tuple[float, float]) -> float:
    """``w = A / ((1 − E)² + A E)``, clipped to ``bounds``."""
    remaining = 1.0 - earliness
    weight = accuracy / max(remaining**2 + accuracy * earliness, 1e-6)
    return float(np.clip(weight, *bounds))


class MatchedEarlinessWeight:
    """The earliness weight: fixed, or (``fixed=None``) matched to the harmonic mean of the
    training episodes, updated every ``every`` finished episodes with step ``rate``."""

    def __init__(
        self,
        fixed: float | None,
        start: float = 1.0,
        every: int = 500,
        rate: float = 0.5,
        bounds: tuple[float, float] = (0.1, 1.0),
    ) -> None:
        self.fixed = fixed
        self.value = float(fixed if fixed is not None else start)
        self.every, self.rate, self.bounds = every, rate, bounds
        self._hits: list[np.ndarray] = []
        self._fractions: list[np.ndarray] = []

    def episodes(self, hit: np.ndarray, fraction: np.ndarray) -> None:
        """Record finished episodes (their last step's outcome)."""
        if self.fixed is not None or len(hit) == 0:
            return
        self._hits.append(np.asarray(hit, dtype=bool))
        self._fractions.append(np.asarray(fraction, dtype=np.float64))
        if sum(len(h) for h in self._hits) >= self.every:
            accuracy = float(np.concatenate(self._hits).mean())
            earliness = float(np.concatenate(self._fractions).mean())
            target = matched_weight(accuracy, earliness, self.bounds)
            self.value += self.rate * (target - self.value)
            self._hits, self._fractions = [], []

    def state_dict(self) -> dict[str, Any]:
        """Tensors and floats only (loadable with ``torch.load(weights_only=True)``)."""
        import torch

        hits = np.concatenate(self._hits) if self._hits else np.zeros(0, dtype=bool)
        fractions = np.concatenate(self._fractions) if self._fractions else np.zeros(0)
        return {
            "value": self.value,
            "hits": torch.from_numpy(hits),
            "fractions": torch.from_numpy(fractions),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.value = float(state["value"])
        self._hits = [state["hits"].numpy().copy()] if len(state["hits"]) else []
        self._fractions = [state["fractions"].numpy().copy()] if len(state["fractions"]) else []
