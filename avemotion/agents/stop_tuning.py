"""Tuning our DQN's stopping rule for the harmonic mean on the training speakers.

The DQN learns the *shape* of its stopping rule (when ``Q(wait)`` falls below the best
class value, as a function of the posterior and the time); its reward is only a surrogate
of the harmonic mean of accuracy and earliness. As the threshold baseline tunes its θ,
:func:`tune_wait_bias` then picks one constant ``δ`` subtracted from ``Q(wait)``: the
greedy policy stops at the first step where ``Q(wait) − max_k Q(k) ≤ δ``, and ``δ`` is the
value with the best harmonic mean over the episodes of the training speakers as the agent
saw them (cross-fitted posteriors, so they look like new speakers'). ``δ = 0`` is the
learnt policy itself and is kept unless another value is strictly better. With an
earliness budget, ``δ`` instead gives the best accuracy among the values whose mean
earliness there stays within the budget.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from avemotion.agents.metrics import harmonic_mean
from avemotion.store import FeatureStore

CANDIDATES = 201
"""Number of bias values tried (quantiles of the observed margins, plus 0)."""


def step_observations(store: FeatureStore, layout: Any) -> np.ndarray:
    """The env observation of every step of every clip of ``store``, clips in store order."""
    rows = []
    for i in range(store.n_clips):
        frames = np.asarray(store.clip(i).frames, dtype=np.float64)
        t = np.arange(len(frames))
        obs = np.zeros((len(frames), layout.size), dtype=np.float32)
        if layout.with_frame:
            obs[:, layout.frame_slice] = frames
        if layout.with_mean:
            obs[:, layout.mean_slice] = np.cumsum(frames, axis=0) / (t + 1)[:, None]
        obs[:, -1] = layout.progress(t)
        rows.append(obs)
    return np.vstack(rows)


def stop_margins(network: torch.nn.Module, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``Q(wait) − max_k Q(k)`` (without any wait bias) and the best class, per step."""
    with torch.no_grad():
        q = network(torch.from_numpy(obs)).numpy()
    bias = float(getattr(network, "wait_bias", torch.zeros(())).item())
    return q[:, 0] + bias - q[:, 1:].max(axis=1), q[:, 1:].argmax(axis=1)


def tune_wait_bias(
    network: torch.nn.Module,
    store: FeatureStore,
    layout: Any,
    earliness_budget: float | None = None,
) -> tuple[float, dict[str, float]]:
    """The wait bias with the best harmonic mean on ``store`` (or, with
    ``earliness_budget``, the best accuracy at a mean earliness within it; see the module
    docstring), and the accuracy, earliness and HM it reaches there."""
    margin, predicted = stop_margins(network, step_observations(store, layout))
    lengths, labels = store.lengths, store.labels
    # The first stop at bias δ is where the running minimum of the margin reaches δ.
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    running_min = np.concatenate(
        [np.minimum.accumulate(margin[s : s + n]) for s, n in zip(offsets, lengths)]
    )
    candidates = np.unique(
        np.concatenate([[0.0], np.quantile(running_min, np.linspace(0, 1, CANDIDATES))])
    )
    best = (-np.inf, 0.0, {})
    for bias in candidates:
        # steps observed = steps still waiting (running minimum ≥ δ: argmax ties go to wait) + 1
        waiting = np.add.reduceat((running_min >= bias).astype(np.int64), offsets)
        steps = np.minimum(waiting + 1, lengths)
        accuracy = float(np.mean(predicted[offsets + steps - 1] == labels))
        earliness = float(np.mean(steps / lengths))
        hm = harmonic_mean(accuracy, earliness)
        if earliness_budget is None:
            score = hm
        else:  # over budget: ranked below every value within it, earliest first
            score = accuracy if earliness <= earliness_budget else -1.0 - earliness
        closer = abs(bias) < abs(best[1])
        if score > best[0] + 1e-12 or (abs(score - best[0]) <= 1e-12 and closer):
            best = (score, float(bias), {"accuracy": accuracy, "earliness": earliness, "hm": hm})
    return best[1], best[2]
