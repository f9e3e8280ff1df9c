"""Scale out on Ray: every (fold x agent x seed) of a speaker-split comparison is a Ray Tune trial.

A trial trains one agent on every speaker but its fold's, then evaluates it greedily on
the fold's speakers (:func:`run_trial`). :func:`run_sweep` runs all trials as a Ray Tune
grid, on a local Ray instance by default or on a cluster given an address, and writes::

    DIR/
      results.json     one entry per finished trial (fold, agent, seed and the evaluate
                       metrics) and the aggregated table (mean ± std over seeds and folds)
      comparison.md    the aggregated table, by the experiments' comparison writer
      comparison.csv   the same table as CSV
      runs/<trial>/    each trial's run directory (model, config, training log)
      tune/sweep/      Ray Tune's experiment state, from which ``resume=True`` continues

Each trial opens the feature store memory-mapped from its *path* in its own worker (the
store never travels through Ray's object store) and sets its torch thread count to the
CPUs it reserved, so concurrent trials do not oversubscribe the cores. An interrupted
sweep resumes with Ray Tune's restore: finished trials keep their results and are not
run again. On a multi-node cluster, ``DIR`` and the store must be on a filesystem that
every node sees under the same path.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from avemotion.atomic import write_json_atomic
from avemotion.holds import reached
from avemotion.ray_cluster import check_ray_in_process
from avemotion.ray_cluster import connect_ray as _connect_ray
from avemotion.store import FeatureStore
from avemotion.sweep_arguments import check_agent_kwargs, check_arguments
from avemotion.trials import (  # noqa: F401  (re-exported: the sweep's public names)
    ENTRY_METRICS,
    SUMMARY_METRICS,
    Fold,
    TrialSpec,
    aggregate,
    parse_folds,
    plan_trials,
    run_trial,
)

EXPERIMENT_NAME = "sweep"


class SweepError(RuntimeError):
    """Some trials of a sweep failed or did not finish; ``results.json`` holds the others."""


def _tune_trial(config: dict[str, Any]) -> None:
    """The Ray Tune trainable: one :func:`run_trial`, reported as its only result."""
    from ray import tune

    trial = TrialSpec(
        **{**config["trial"], "test_speakers": tuple(config["trial"]["test_speakers"])}
    )
    entry = run_trial(
        trial,
        config["store"],
        config["steps"],
        config["runs_dir"],
        config["torch_threads"],
        config["agent_kwargs"],
    )
    tune.report(
        {**{k: entry[k] for k in SUMMARY_METRICS if k in entry}, "entry_json": json.dumps(entry)}
    )


def _progress_callback(total: int, show_bar: bool) -> Any:
    """A Tune callback: a tqdm bar over the trials and a line ``finished <trial_id>: ...`` each.

    The class is defined here, not at module level, so that importing this module does not
    import Ray. The bar counts the trials that finish in this run (not earlier runs).
    """
    from ray import tune

    class TrialProgress(tune.Callback):
        def __init__(self) -> None:
            self.total, self.show_bar, self.bar = total, show_bar, None

        def __getstate__(self) -> dict[str, Any]:  # the tuner pickles its callbacks
            return {"total": self.total, "show_bar": self.show_bar, "bar": None}

        def setup(self, **info: Any) -> None:
            from tqdm import tqdm

            self.bar = tqdm(
                total=self.total, desc="sweep trials", unit="trial", disable=not self.show_bar
            )

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            result = trial.last_result or {}
            name = TrialSpec(**trial.config["trial"]).trial_id
            metrics = " ".join(
                f"{k}={result[k]:.3f}"
                for k in ("accuracy", "earliness", "harmonic_mean")
                if k in result
            )
            if self.bar is not None:
                self.bar.update(1)
                self.bar.write(f"finished {name}: {metrics}")
            reached("sweep-trial")

        def on_experiment_end(self, trials: list, **info: Any) -> None:
            if self.bar is not None:
                self.bar.close()

    return TrialProgress()


def _trial_dirname(trial: Any) -> str:
    """Tune's directory name of a trial: its Tune id and its :attr:`TrialSpec.trial_id`."""
    return f"{trial.trial_id}_{TrialSpec(**trial.config['trial']).trial_id}"


def run_sweep(
    store: str | os.PathLike[str] | None,
    agents: Sequence[str],
    seeds: Sequence[int],
    folds: str,
    steps: int,
    out: str | os.PathLike[str],
    address: str | None = None,
    resume: bool = False,
    cpus_per_trial: int = 1,
    num_cpus: int | None = None,
    agent_kwargs: dict[str, Any] | None = None,
    verbose: int = 1,
) -> dict[str, Any]:
    """Run every (fold x agent x seed) as a Ray Tune trial and write ``out/results.json``.

    ``store`` is a feature store's path (workers memory-map it); ``None`` means the synthetic
    corpus, generated into the cache on first use. ``folds`` is ``"loso"`` or
    ``"speakers:A,B;C,D"``. ``address`` connects to a running Ray cluster (``"auto"``,
    ``"ray://host:10001"``); without it a local instance starts (``num_cpus`` of them), unless
    Ray is already initialised in this process: that one is reused, and an ``address`` or
    a ``num_cpus`` other than its CPU count is refused. Each trial reserves
    ``cpus_per_trial`` CPUs and uses as many torch threads. Progress: a tqdm bar
    (``verbose > 0``) and a line ``finished <trial_id>: <metrics>`` per trial. ``resume``
    continues an interrupted sweep in ``out`` without rerunning its finished trials. Returns the content of ``results.json``; raises
    :class:`SweepError` (after writing it) when some trial failed or did not finish, and
    :class:`ValueError` for bad input (``agent_kwargs`` checked per agent) before writing.
    """
    from ray import tune  # first: without Ray, fail before anything is written to out

    out = Path(out).resolve()
    check_arguments(agents, seeds, steps, cpus_per_trial, num_cpus, address)
    check_ray_in_process(address, num_cpus)  # here too: before anything is written
    check_agent_kwargs(agents, dict(agent_kwargs or {}), cpus_per_trial)
    store_path, opened = _open_store(store)  # None: the synthetic corpus, made on first use
    trials = plan_trials(parse_folds(folds, opened.speaker_set), list(agents), list(seeds))
    plan = _sweep_plan(store_path, agents, seeds, folds, steps, agent_kwargs, trials)
    experiment = out / "tune" / EXPERIMENT_NAME
    _write_plan(plan, out, experiment, resume)
    _connect_ray(address, num_cpus)
    trainable = tune.with_resources(_tune_trial, {"cpu": int(cpus_per_trial)})
    tuner = _tuner(trainable, trials, plan, out, experiment, resume, cpus_per_trial, verbose)
    return _collect(tuner.fit(), trials, plan, out)


def _open_store(store: str | os.PathLike[str] | None) -> tuple[Path, FeatureStore]:
    """The store's resolved path (the synthetic corpus's for ``None``) and the store, opened."""
    if store is None:
        from avemotion.envs.synthetic import synthetic_store

        store = synthetic_store().path
    store_path = Path(store).resolve()
    return store_path, FeatureStore.open(store_path)  # verify the checksums once, here


def _sweep_plan(
    store_path: Path,
    agents: Sequence[str],
    seeds: Sequence[int],
    folds: str,
    steps: int,
    agent_kwargs: dict[str, Any] | None,
    trials: Sequence[TrialSpec],
) -> dict[str, Any]:
    """The sweep's definition, as ``sweep.json`` holds it: a resume must match it exactly."""
    return {
        "store": str(store_path),
        "agents": list(agents),
        "seeds": [int(s) for s in seeds],
        "folds": folds,
        "steps": int(steps),
        "agent_kwargs": dict(agent_kwargs or {}),
        "trials": [t.trial_id for t in trials],
    }


def _write_plan(plan: dict[str, Any], out: Path, experiment: Path, resume: bool) -> None:
    """Write ``out/sweep.json``, after checking that a resume continues the same sweep and
    that a new sweep does not overwrite another."""
    plan_path = out / "sweep.json"
    if resume:
        if not plan_path.is_file():
            raise FileNotFoundError(
                f"{plan_path}: missing, so there is no sweep to resume in {out}"
            )
        previous = json.loads(plan_path.read_text())
        if previous != plan:
            changed = sorted(k for k in plan if previous.get(k) != plan[k])
            raise ValueError(
                f"{plan_path}: resume: the sweep differs from the interrupted one in {changed}"
            )
    elif plan_path.exists() or experiment.exists():
        raise FileExistsError(
            f"{out}: a sweep already exists here (pass resume, or choose another directory)"
        )
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(plan_path, plan)


def _tuner(
    trainable: Any,
    trials: Sequence[TrialSpec],
    plan: dict[str, Any],
    out: Path,
    experiment: Path,
    resume: bool,
    cpus_per_trial: int,
    verbose: int,
) -> Any:
    """The interrupted sweep's tuner when resuming one Tune can restore; else a new grid."""
    from ray import tune

    if resume and tune.Tuner.can_restore(str(experiment)):
        return tune.Tuner.restore(
            str(experiment), trainable, resume_unfinished=True, resume_errored=True
        )
    param_space = {
        "trial": tune.grid_search([dataclasses.asdict(t) for t in trials]),
        "store": plan["store"],
        "steps": plan["steps"],
        "runs_dir": str(out / "runs"),
        "torch_threads": int(cpus_per_trial),
        "agent_kwargs": dict(plan["agent_kwargs"]),
    }
    return tune.Tuner(
        trainable,
        param_space=param_space,
        # Reused actors keep torch imported between trials; each trial still sets its threads.
        tune_config=tune.TuneConfig(reuse_actors=True, trial_dirname_creator=_trial_dirname),
        run_config=tune.RunConfig(
            name=EXPERIMENT_NAME,
            storage_path=str(experiment.parent),
            verbose=0,
            callbacks=[_progress_callback(len(trials), show_bar=verbose > 0)],
        ),
    )


def _collect(
    grid: Any, trials: Sequence[TrialSpec], plan: dict[str, Any], out: Path
) -> dict[str, Any]:
    """Gather the finished trials' entries, aggregate them and write the outputs."""
    from avemotion.evaluation.report import wins_against_best, write_comparison

    by_id: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    for result in grid:
        if not result.config:  # a trial that never reported (interrupted): it stays unfinished
            continue
        trial_id = TrialSpec(**result.config["trial"]).trial_id
        if result.error is not None:
            failed[trial_id] = (
                str(result.error).strip().splitlines()[-1] if str(result.error).strip() else "error"
            )
        elif result.metrics and "entry_json" in result.metrics:
            by_id[trial_id] = json.loads(result.metrics["entry_json"])
    entries = [by_id[t.trial_id] for t in trials if t.trial_id in by_id]
    unfinished = [
        t.trial_id for t in trials if t.trial_id not in by_id and t.trial_id not in failed
    ]
    table = aggregate(entries)
    wins = wins_against_best(entries)
    results = {
        **plan,
        "trials": entries,
        "table": table,
        "wins": wins,
        "failed": failed,
        "unfinished": unfinished,
    }
    write_json_atomic(out / "results.json", results)
    folds = sorted({e["fold"] for e in entries})
    seeds = sorted({e["seed"] for e in entries})
    note = (
        f"Mean ± std (population) over {len(folds)} held-out speaker fold(s) x {len(seeds)} seed(s), "
        f"{plan['steps']} training steps per trial."
    )
    if wins is not None:
        note += (
            f" Paired per-fold HM (mean over seeds), {wins['ours']} vs {wins['best_other']}: "
            f"{wins['wins']} wins, {wins['ties']} ties, {wins['losses']} losses."
        )
    write_comparison(table, out / "comparison", note=note)
    if failed or unfinished:
        raise SweepError(
            f"{out}: {len(entries)} of {len(trials)} trials finished; failed: {sorted(failed)}, "
            f"unfinished: {unfinished} (rerun the same sweep with resume to finish them)"
        )
    return results
