"""The env's earliness reward recomputed from stored outcomes, and the earliness weight
matched to the harmonic mean.

Under the env's ``"earliness"`` reward a correct answer after observing ``t`` of the clip's
``T`` steps earns ``1 − w · t / T``, a wrong answer and a wait earn 0: the expected return
is E[correct · (1 − w · earliness)]. The replay keeps each step's raw outcome (the fraction
observed, and whether it was a correct answer), so rewards can be computed when sampled:
with the env's ``w`` they are the env's own rewards (what every agent trains on), and the
``match_earliness_weight`` variant lets ``w`` change during training.

The harmonic mean HM(A, E) = 2 A (1 − E) / (A + 1 − E) of accuracy ``A`` and earliness
``E`` is not a sum of per-clip rewards. At the policy that maximises it, it has the same
first-order trade-off as the linear objective ``A − (A / B)² E`` (``B = 1 − E``); the
expected earliness reward ``A (1 − w E)`` (correct answers and earliness taken as
independent) has the trade-off ``w A / (1 − w E)``. Equating the two gives the matched
weight ``w = A / (B² + A E)``. :class:`MatchedEarlinessWeight` tracks it from the
training episodes (cross-fitted posteriors, so they look like new speakers') as a fixed
point: the policy moves toward the weight's optimum, and the weight follows the policy.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def step_outcome(
    actions: np.ndarray, before: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """``(fraction, hit)`` of a vector-env step: the fraction of the clip observed in the
    state the action was taken from (``before``: that state's env info with ``label``,
    ``frame_index`` and ``clip_length``), and whether the action was a correct answer."""
    fraction = ((before["frame_index"] + 1) / before["clip_length"]).astype(np.float32)
    hit = (actions != 0) & (actions - 1 == before["label"])
    return fraction, hit


def earliness_reward(fraction: np.ndarray, hit: np.ndarray, weight: float) -> np.ndarray:
    """Reward of each step under the "earliness" reward with weight ``weight``."""
    return np.where(hit, 1.0 - weight * fraction, 0.0).astype(np.float32)


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
