"""Greedy evaluation: sweep every selected clip exactly once and report the metrics.

:func:`evaluate_agent` runs an :class:`~avemotion.agents.policy.Agent` over a store through
the native vector env with ``sampling="sequential"``: sub-env ``i`` starts on clip ``i``
and each restart takes the next clip in store order, so the first ``n_clips`` episodes are
exactly the clips ``0..n_clips-1``, each once; any episode after the sweep wraps around is
ignored. :func:`evaluate_run` is what ``avemotion evaluate --json`` prints.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avemotion.atomic import write_json_atomic
from avemotion.envs.core import resolve_store
from avemotion.envs.vector import AVEmotionVectorEnv
from avemotion.holds import reached
from avemotion.metrics import early_classification_report
from avemotion.store import FeatureStore
from avemotion.training.run_dir import (
    POSTERIOR,
    RULES,
    check_disjoint,
    check_same_adaptation,
    read_run_config,
    store_digest,
    training_store,
)

StoreLike = FeatureStore | str | os.PathLike[str] | None


def sweep_agent(
    agent: Any,
    store: FeatureStore,
    max_envs: int = 64,
    max_length: int | None = None,
    answer_by_max_length: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and steps observed of ``agent`` on every clip of ``store``, in store order.

    ``max_length`` is T_max of the env's time feature; by default the agent's own
    ``max_length`` (its training T_max, set by ``load_agent``), else the store's longest clip.
    With ``answer_by_max_length`` a clip longer than T_max is answered by its T_max-th
    step (waiting masked there, as at a clip's last step), as the online recognizer
    answers an utterance: no training episode went further (docs/online.md).
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
    cap = envs.layout.max_length if answer_by_max_length else None
    while (predictions == -2).any():
        mask = info["action_mask"].astype(bool)
        if cap is not None:
            mask[:, 0] &= info["frame_index"] + 1 < cap
        actions = agent.act_batch(obs, mask, starts)
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


def evaluate_run(
    run_dir: str | os.PathLike[str],
    store: StoreLike,
    speakers: Sequence[str] | None = None,
    exclude_speakers: Sequence[str] | None = None,
    baselines: bool = False,
    aeon: bool = True,
) -> dict[str, Any]:
    """Evaluate a trained run greedily on the selected clips of ``store``.

    Returns the report (``accuracy``, ``earliness``, ``harmonic_mean``, ``n_clips``,
    ``mean_decision_s``, ``per_class_recall``, ``confusion_matrix``, ...) plus ``agent``,
    ``run`` and ``speakers``. The agent's env uses the run's training T_max (``max_length``
    in its config.json), whatever the longest selected test clip, and the agent answers
    by its T_max-th step, as it does online (:func:`sweep_agent`).

    With ``baselines``, ``baselines`` holds the same report for every non-RL stopping rule
    on the run's own posterior model and tuned parameters (``posterior.npz`` and
    ``rules.json``: fitted on the run's training clips only), plus aeon's classifiers
    fitted on those training clips (reopened from the run's record, whatever ``store``
    is); ``baseline_curves`` holds the rules' accuracy-vs-earliness sweeps. It refuses in
    one line when the training data is gone or changed, or shares clips with the test
    selection. ``aeon=False`` leaves aeon's classifiers out.
    """
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
    check_same_adaptation(config, test, str(run_dir))
    seen = sorted(set(config.get("train_speakers") or ()) & set(test.speaker_set))
    if seen:
        warnings.warn(
            f"{run_dir}: speakers: {seen} were trained on; these results are not held-out",
            UserWarning,
            stacklevel=2,
        )
    train = training_store(run_dir, config) if baselines else None
    if train is not None:
        check_disjoint(train, test, f"{run_dir}")
    predictions, steps = sweep_run(run_dir, test, config)
    result = early_classification_report(
        predictions, test.labels, steps, test.lengths, test.class_names, test.steps_per_second
    )
    result = {**result, "agent": config["agent"], "run": str(run_dir), "speakers": test.speaker_set}
    if train is not None:
        result["baselines"], result["baseline_curves"] = run_baselines(
            Path(run_dir), train, test, seed=int(config.get("seed", 0)), aeon=aeon
        )
    return result


def sweep_run(
    run_dir: str | os.PathLike[str],
    test: FeatureStore,
    config: dict[str, Any] | None = None,
    answer_by_max_length: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """The trained run's prediction and steps observed on every clip of ``test``, in store
    order (:func:`sweep_agent` on what its agent reads): each clip's decision, as
    ``avemotion stream`` gives it on that clip's media."""
    from avemotion.training.run_dir import load_agent

    config = config if config is not None else read_run_config(run_dir)
    agent = load_agent(run_dir)
    max_length = int(config["max_length"]) if config.get("max_length") else None
    options = {"max_length": max_length, "answer_by_max_length": answer_by_max_length}
    if config.get("agent_input") != "posteriors":
        return sweep_agent(agent, test, **options)
    with tempfile.TemporaryDirectory(prefix="avemotion-eval-") as tmp:
        inputs = posterior_inputs(Path(run_dir), test, tmp)
        return sweep_agent(agent, inputs, **options)


def posterior_inputs(run_dir: Path, test: FeatureStore, directory: str) -> FeatureStore:
    """The store of per-step log-posteriors of ``test`` under the run's posterior model:
    what an agent with ``agent_input == "posteriors"`` steps."""
    from avemotion.agents.dqn.posterior_input import log_posterior_sequences, logit_store
    from avemotion.posterior import load_posterior_model

    posterior = load_posterior_model(run_dir / POSTERIOR)
    sequences = log_posterior_sequences(posterior.posteriors(test))
    return logit_store(test, sequences, directory, "log-posteriors of the evaluated clips")


def run_baselines(
    run_dir: Path, train: FeatureStore, test: FeatureStore, seed: int, aeon: bool = True
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every non-RL rule of the run on ``test`` (the run's posterior model and tuned
    parameters), aeon's fitted on ``train``, and the rules' curves."""
    from avemotion.posterior import load_posterior_model
    from avemotion.stopping.aeon import (
        AEON_RULES,
        aeon_available,
        evaluate_aeon_baselines,
    )
    from avemotion.stopping.rules import TunedRules, rule_curves, rule_reports

    posterior = load_posterior_model(run_dir / POSTERIOR)
    rules_path = run_dir / RULES
    if not rules_path.is_file():
        raise FileNotFoundError(f"{rules_path}: missing (the run's tuned stopping rules)")
    tuned = json.loads(rules_path.read_text())
    rules = TunedRules(**{k: tuned[k] for k in TunedRules.__dataclass_fields__})
    post = posterior.posteriors(test)
    reports = rule_reports(rules, post, test)
    if aeon and not aeon_available():
        warnings.warn(
            "aeon is not installed: its classifiers are left out (the aeon extra)", stacklevel=2
        )
    if aeon and aeon_available():
        done = run_dir / "evaluations" / evaluation_key(test, seed)
        done.mkdir(parents=True, exist_ok=True)
        for name in AEON_RULES:  # each kept as it finishes: a killed evaluation resumes
            path = done / f"{name}.json"
            if not path.is_file():
                write_json_atomic(path, evaluate_aeon_baselines(train, test, seed, (name,))[name])
                reached("aeon-classifier")
            reports[name] = json.loads(path.read_text())
    return reports, rule_curves(post)


def evaluation_key(test: FeatureStore, seed: int) -> str:
    """A digest of the evaluated clips (store checksums and clip ids) and the seed."""
    content = json.dumps([store_digest(test), test.clip_ids, seed])
    return hashlib.sha256(content.encode()).hexdigest()[:16]
