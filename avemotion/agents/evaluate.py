"""Greedy evaluation: sweep every selected clip exactly once and report the metrics.

:func:`evaluate_agent` runs an :class:`~avemotion.agents.policy.Agent` over a store through
the native vector env with ``sampling="sequential"``: sub-env ``i`` starts on clip ``i``
and each restart takes the next clip in store order, so the first ``n_clips`` episodes are
exactly the clips ``0..n_clips-1``, each once; any episode after the sweep wraps around is
ignored. :func:`evaluate_run` is what ``avemotion evaluate --json`` prints.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avemotion.agents.metrics import early_classification_report
from avemotion.envs.core import resolve_store
from avemotion.envs.vector import AVEmotionVectorEnv
from avemotion.store import FeatureStore

StoreLike = FeatureStore | str | os.PathLike[str] | None


def sweep_agent(
    agent: Any, store: FeatureStore, max_envs: int = 64, max_length: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and steps observed of ``agent`` on every clip of ``store``, in store order.

    ``max_length`` is T_max of the env's time feature; by default the agent's own
    ``max_length`` (its training T_max, set by ``load_agent``), else the store's longest clip.
    """
    n = store.n_clips
    n_envs = min(max_envs, n)
    if max_length is None:
        max_length = getattr(agent, "max_length", None)
    envs = AVEmotionVectorEnv(
        num_envs=n_envs,
        store=store,
        obs_mode=agent.obs_mode,
        sampling="sequential",
        max_length=max_length,
    )
    predictions = np.full(n, -2, dtype=np.int64)
    steps = np.zeros(n, dtype=np.int64)
    obs, info = envs.reset(seed=0)
    counted = np.ones(n_envs, dtype=bool)
    started = np.zeros(n, dtype=bool)
    started[info["clip_index"]] = True
    starts = np.ones(n_envs, dtype=bool)
    prev_done = np.zeros(n_envs, dtype=bool)
    agent.reset()
    while (predictions == -2).any():
        actions = agent.act_batch(obs, info["action_mask"].astype(bool), starts)
        obs, _, terminated, truncated, info = envs.step(np.asarray(actions, dtype=np.int64))
        done = (terminated | truncated) & ~prev_done
        for e in np.flatnonzero(done & counted):
            clip = int(info["clip_index"][e])
            predictions[clip] = int(info["prediction"][e])
            steps[clip] = int(info["frame_index"][e]) + 1
        starts = prev_done.copy()
        for e in np.flatnonzero(starts):
            clip = int(info["clip_index"][e])
            counted[e] = not started[clip]
            started[clip] = True
        prev_done = terminated | truncated
    envs.close()
    return predictions, steps


def evaluate_agent(
    agent: Any, store: FeatureStore, max_length: int | None = None
) -> dict[str, Any]:
    """The metrics report of ``agent`` on every clip of ``store`` (each exactly once);
    ``max_length`` as in :func:`sweep_agent`."""
    predictions, steps = sweep_agent(agent, store, max_length=max_length)
    return early_classification_report(
        predictions, store.labels, steps, store.lengths, store.class_names, store.steps_per_second
    )


def report_from_decisions(
    store: FeatureStore, predictions: np.ndarray, steps: np.ndarray
) -> dict[str, Any]:
    """The metrics report of per-clip decisions made by a baseline on ``store``."""
    return early_classification_report(
        predictions, store.labels, steps, store.lengths, store.class_names, store.steps_per_second
    )


def read_run_config(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """A run directory's ``config.json``, with a clear error when it is missing or broken."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (not a run directory)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: unreadable JSON ({error})") from None


def evaluate_run(
    run_dir: str | os.PathLike[str],
    store: StoreLike,
    speakers: Sequence[str] | None = None,
    exclude_speakers: Sequence[str] | None = None,
    baselines: bool = False,
) -> dict[str, Any]:
    """Evaluate a trained run greedily on the selected clips of ``store``.

    Returns the report (``accuracy``, ``earliness``, ``harmonic_mean``, ``n_clips``,
    ``mean_decision_s``, ``per_class_recall``, ``confusion_matrix``, ...) plus ``agent``,
    ``run`` and ``speakers``. With ``baselines``, a ``baselines`` object keyed by baseline
    name holds the same report for each non-RL baseline, fitted on the run's own training
    speakers of the same store, and ``baseline_curves`` their accuracy-vs-earliness sweeps
    (θ of the threshold, x of the fixed fraction) on the selected clips. The agent's env uses the run's training T_max
    (``max_length`` in its config.json), whatever the longest selected test clip; the
    non-RL baselines build no env and read no time feature (their temporal model uses
    the step count itself).
    """
    from avemotion.agents.runner import load_agent

    config = read_run_config(run_dir)
    full = resolve_store(store)
    test = resolve_store(full, speakers, exclude_speakers)
    if test.class_names != list(config["class_names"]):
        raise ValueError(
            f"{full.path}: class_names: {test.class_names} differ from the run's {config['class_names']}"
        )
    if test.dim != int(config["store_dim"]):
        raise ValueError(
            f"{full.path}: dim: {test.dim} differs from the run's {config['store_dim']}"
        )
    seen = sorted(set(config.get("train_speakers") or ()) & set(test.speaker_set))
    if seen:
        warnings.warn(
            f"{run_dir}: speakers: {seen} were trained on; these results are not held-out",
            UserWarning,
            stacklevel=2,
        )
    agent = load_agent(run_dir)
    max_length = int(config["max_length"]) if config.get("max_length") else None
    result = evaluate_agent(agent, test, max_length=max_length)
    result = {**result, "agent": config["agent"], "run": str(run_dir), "speakers": test.speaker_set}
    if baselines:
        from avemotion.agents.baselines import baseline_curves, evaluate_baselines, fit_baselines

        train = resolve_store(full, config.get("speakers"), config.get("exclude_speakers"))
        result["baselines"] = evaluate_baselines(train, test, seed=int(config.get("seed", 0)))
        result["baseline_curves"] = baseline_curves(fit_baselines(train), test)
    return result
