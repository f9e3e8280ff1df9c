"""The trials of a speaker-split comparison: folds, trial specs, one trial run, and the
table that aggregates their entries. :mod:`avemotion.sweep` runs them on Ray Tune."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avemotion.atomic import write_json_atomic
from avemotion.store import FeatureStore

SUMMARY_METRICS = ("accuracy", "balanced_accuracy", "earliness", "harmonic_mean", "mean_decision_s")
"""Scalar evaluate metrics that the aggregated table reports as mean ± std."""
ENTRY_METRICS = (*SUMMARY_METRICS, "n_clips", "per_class_recall", "confusion_matrix", "class_names")
"""Evaluate metrics that every trial entry of ``results.json`` keeps."""


@dataclass(frozen=True)
class Fold:
    """A group of test speakers; the fold's agents train on every other speaker."""

    name: str
    """Short name of the fold: its speakers joined by ``+``."""
    test_speakers: tuple[str, ...]
    """Speakers held out for evaluation."""


@dataclass(frozen=True)
class TrialSpec:
    """One trial of a sweep: which fold, which agent, which seed."""

    fold: str
    """Name of the fold (see :class:`Fold`)."""
    test_speakers: tuple[str, ...]
    """Speakers the trial evaluates on; it trains on all others."""
    agent: str
    """Agent name, as :func:`avemotion.training.train.train` takes it."""
    seed: int
    """Training seed."""

    @property
    def trial_id(self) -> str:
        """A filesystem-safe unique name, ``<fold>__<agent>__seed<seed>``."""
        return f"{self.fold}__{self.agent}__seed{self.seed}"


def parse_folds(spec: str, speakers: Sequence[str]) -> list[Fold]:
    """Folds from ``"loso"`` (one per speaker) or ``"speakers:A,B;C,D"`` (explicit groups).

    Raises ``ValueError`` naming the ``folds`` field for an unknown, repeated or empty group,
    or when a fold would leave no speaker to train on.
    """
    known = sorted(speakers)
    if spec == "loso":
        groups = [[speaker] for speaker in known]
    elif spec.startswith("speakers:"):
        groups = [
            [s.strip() for s in group.split(",") if s.strip()]
            for group in spec[len("speakers:") :].split(";")
        ]
    else:
        raise ValueError(f"folds: expected 'loso' or 'speakers:A,B;C,D', got {spec!r}")
    seen: set[str] = set()
    folds = []
    for group in groups:
        if not group:
            raise ValueError(f"folds: an empty speaker group in {spec!r}")
        unknown = sorted(set(group) - set(known))
        if unknown:
            raise ValueError(f"folds: unknown speaker(s) {unknown}; known: {known}")
        if seen & set(group):
            raise ValueError(f"folds: speaker(s) {sorted(seen & set(group))} appear in two folds")
        if set(group) == set(known):
            raise ValueError(f"folds: fold {group} holds every speaker, leaving none to train on")
        seen |= set(group)
        folds.append(Fold("+".join(group), tuple(group)))
    return folds


def plan_trials(
    folds: Sequence[Fold], agents: Sequence[str], seeds: Sequence[int]
) -> list[TrialSpec]:
    """Every (fold, agent, seed), fold-major, in the order given."""
    return [
        TrialSpec(f.name, f.test_speakers, a, int(s)) for f in folds for a in agents for s in seeds
    ]


def run_trial(
    trial: TrialSpec,
    store: FeatureStore | str | os.PathLike[str],
    steps: int,
    runs_dir: str | os.PathLike[str],
    torch_threads: int = 1,
    agent_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``trial.agent`` on all speakers but the fold's, evaluate on the fold's; return the entry.

    ``store`` given as a path is opened memory-mapped (without re-hashing; the sweep
    verifies it once). The run directory ``runs_dir/<trial_id>`` is replaced if it exists,
    so a trial cut short and run again starts clean.
    """
    import torch

    from avemotion.evaluation.evaluate import evaluate_run
    from avemotion.training.train import train

    torch.set_num_threads(int(torch_threads))
    if not isinstance(store, FeatureStore):
        store = FeatureStore.open(store, verify=False)
    run_dir = Path(runs_dir) / trial.trial_id
    job = json.loads(
        json.dumps(
            [
                dataclasses.asdict(trial),
                int(steps),
                agent_kwargs or {},
                str(Path(store.path).resolve()),
            ]
        )
    )
    finished = run_dir / "entry.json"
    if finished.is_file():  # finished before the sweep was killed: never run it again
        saved = json.loads(finished.read_text())
        if saved.get("job") == job:
            return saved["entry"]
    options = {"progress": False, **(agent_kwargs or {})}
    if trial.agent.startswith("dqn"):  # our DQN sets its own thread count from its config
        options.setdefault("torch_threads", int(torch_threads))
    train(
        trial.agent,
        store,
        int(steps),
        trial.seed,
        run_dir,
        exclude_speakers=trial.test_speakers,
        overwrite=True,
        **options,
    )
    report = evaluate_run(run_dir, store, speakers=trial.test_speakers)
    entry = {
        "trial_id": trial.trial_id,
        "fold": trial.fold,
        "test_speakers": list(trial.test_speakers),
        "agent": trial.agent,
        "seed": trial.seed,
        "steps": int(steps),
        "run_dir": str(run_dir),
        "torch_threads": torch.get_num_threads(),
        **{key: report[key] for key in ENTRY_METRICS if key in report},
    }
    write_json_atomic(finished, {"job": job, "entry": entry})
    return entry


def aggregate(
    entries: Sequence[dict[str, Any]], metrics: Sequence[str] = SUMMARY_METRICS
) -> list[dict[str, Any]]:
    """One row per agent: mean and std (population, ``ddof=0``) of each metric over seeds and folds.

    Rows keep the agents' first-appearance order and count their trials, folds and seeds.
    """
    rows = []
    for agent in dict.fromkeys(e["agent"] for e in entries):
        mine = [e for e in entries if e["agent"] == agent]
        row: dict[str, Any] = {
            "agent": agent,
            "n_trials": len(mine),
            "n_folds": len({e["fold"] for e in mine}),
            "n_seeds": len({e["seed"] for e in mine}),
        }
        for metric in metrics:
            values = np.array([e[metric] for e in mine if metric in e], dtype=np.float64)
            row[f"{metric}_mean"] = float(values.mean()) if len(values) else math.nan
            row[f"{metric}_std"] = float(values.std()) if len(values) else math.nan
        rows.append(row)
    return rows
