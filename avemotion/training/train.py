"""``avemotion train`` as one flow: check → choose the posterior → tune the rules → train the
agent → record the run; and a trained run loaded back as a greedy :class:`Agent`."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from avemotion.agents.dqn.config import without_retired
from avemotion.agents.dqn.posterior_input import reads_posterior_store
from avemotion.atomic import write_json_atomic
from avemotion.device import resolve_device
from avemotion.envs.core import RewardSpec, resolve_store
from avemotion.posterior import CrossFit
from avemotion.posterior.models import save_posterior_model
from avemotion.stopping.rules import TUNED_RULES, tune_rules
from avemotion.store import FeatureStore
from avemotion.training.choose_posterior import choose_posterior, selection_lines, time_says_more
from avemotion.training.options import (
    AGENTS as AGENTS,  # the agents' names are imported from here too
)
from avemotion.training.options import (
    SB3_OPTIONS,
    agent_configuration,
    check_data,
    check_posterior_name,
    check_request,
)
from avemotion.training.run_dir import (
    CONFIG,
    POSTERIOR,
    RULES,
    SUMMARY,
    read_run_config,
    store_digest,
    training_record,
)
from avemotion.training.run_dir import load_agent as load_agent  # public here too

DEFAULT_STEPS = 150_000
"""Env steps of ``avemotion train`` and the experiment scripts when none are given: our
DQN's stopping rule keeps improving with gradient steps well past 50k env steps (the
synthetic leave-one-speaker-out table of docs/results.md is at this budget)."""


def train(
    agent: str,
    store: FeatureStore | str | os.PathLike[str] | None,
    steps: int,
    seed: int,
    out: str | os.PathLike[str],
    speakers: Sequence[str] | None = None,
    exclude_speakers: Sequence[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    posterior: str = "auto",
    device: str = "cpu",
    allow_untuned: bool = False,
    **agent_kwargs: Any,
) -> Path:
    """Train ``agent`` (``dqn``, ``dqn-recurrent`` or an SB3 name) for ``steps`` env steps on
    the selected speakers into ``out`` and return it; ``agent_kwargs`` are the agent's options
    (``--set``). The steps, options and files: docs/agents.md."""
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    # 1. check every input before the run directory is touched
    job = _checked_job(
        agent, store, steps, seed, out, speakers, exclude_speakers, resume, overwrite,
        posterior, agent_kwargs,
    )  # fmt: skip
    torch_device = resolve_device(device)
    _clear_run_dir(job.run_dir, resume, overwrite)
    # 2. choose the posterior model and 3. tune the rules on its out-of-fold posteriors
    posterior_start, status = time.perf_counter(), {"cache": "miss"}
    fitted, selection = fit_posterior(
        job.selected, job.run_dir, job.agent_config, job.posterior, status, allow_untuned
    )
    posterior_seconds = time.perf_counter() - posterior_start
    # 4. train the agent on the posterior's out-of-fold view
    config, agent_config, posterior_input = _fit_to_posterior(agent, job, fitted, selection)
    run_config = {
        "agent": agent,
        "steps": int(steps),
        "seed": int(seed),
        "training": training_record(store, job.full, job.selected, speakers, exclude_speakers),
        **run_record(job.selected, agent_config, job.max_length, fitted, posterior_input),
    }
    write_json_atomic(job.run_dir / CONFIG, run_config)
    summary = _train_agent(agent, config, agent_config, job, fitted, torch_device)
    # 5. record the run
    if (summary.get("stop_tuning") or {}).get("untuned"):
        say(
            "wait bias: every shrinkage and bias scores the same on the training episodes; "
            "the learnt stopping rule is kept untuned"
        )
    timing = {
        "wall_seconds": time.perf_counter() - wall_start,
        "cpu_seconds": time.process_time() - cpu_start,
        "posterior_seconds": posterior_seconds,
        "posterior_cache": status["cache"],
    }
    write_json_atomic(job.run_dir / SUMMARY, {**summary, **timing, "device": str(torch_device)})
    return job.run_dir


@dataclasses.dataclass
class _Job:
    """A checked training request: where it writes, on which data, with which options."""

    run_dir: Path
    full: FeatureStore
    selected: FeatureStore
    posterior: str
    max_length: int
    config: Any
    agent_config: dict[str, Any]
    steps: int
    seed: int
    resume: bool
    progress: bool


def _checked_job(
    agent: str,
    store: FeatureStore | str | os.PathLike[str] | None,
    steps: int,
    seed: int,
    out: str | os.PathLike[str],
    speakers: Sequence[str] | None,
    exclude_speakers: Sequence[str] | None,
    resume: bool,
    overwrite: bool,
    posterior: str,
    agent_kwargs: dict[str, Any],
) -> _Job:
    """Every input checked (a resumed run: against what it recorded), nothing written yet."""
    check_request(agent, steps, seed, posterior)
    if resume and overwrite:  # one of them would be silently ignored
        raise ValueError("overwrite: contradicts resume (a resumed run keeps its directory)")
    run_dir = Path(out)
    full = resolve_store(store)
    selected = resolve_store(full, speakers, exclude_speakers)
    progress = bool(agent_kwargs.pop("progress", True))
    max_length = int(selected.lengths.max())
    asked = set(agent_kwargs)  # a resumed run's saved options are not asked for again
    if resume and (run_dir / CONFIG).is_file():
        previous = read_run_config(run_dir)
        _check_same_data(run_dir, previous, full, selected, posterior)
        agent_kwargs, max_length, posterior = _resumed(
            run_dir, previous, agent, agent_kwargs, max_length, posterior
        )
    config, agent_config = agent_configuration(agent, agent_kwargs, resume, asked)
    check_data(selected, posterior, agent_kwargs, asked)
    return _Job(
        run_dir, full, selected, posterior, max_length, config, agent_config, int(steps),
        int(seed), resume, progress,
    )  # fmt: skip


def _train_agent(
    agent: str,
    config: Any,
    agent_config: dict[str, Any],
    job: _Job,
    fitted: CrossFit,
    device: Any,
) -> dict[str, Any]:
    """Train ``agent`` (ours or an SB3 one) into the run directory; its summary."""
    common = {"progress": job.progress, "max_length": job.max_length}
    if agent.startswith("dqn"):
        from avemotion.agents.dqn.dqn import train_dqn

        return train_dqn(
            config, job.selected, job.steps, job.seed, job.run_dir, resume=job.resume,
            fitted=fitted, device=device, **common,
        )  # fmt: skip
    from avemotion.agents.sb3 import train_sb3

    sb3_options = {k: v for k, v in agent_config.items() if k in SB3_OPTIONS}
    return train_sb3(
        agent, job.selected, job.steps, job.seed, job.run_dir, device=str(device), **common,
        **sb3_options, **agent_config["algorithm_kwargs"],
    )  # fmt: skip


def _check_same_data(
    run_dir: Path,
    previous: dict[str, Any],
    full: FeatureStore,
    selected: FeatureStore,
    posterior: str,
) -> None:
    """Refuse to resume a run on other data than it was trained on: another store, another
    speaker selection, or a posterior model other than the one it chose."""
    record = previous.get("training") or {}
    where = run_dir / CONFIG
    if record.get("digest") not in (None, store_digest(full)):
        recorded = "the synthetic corpus" if record.get("synthetic") else record.get("store")
        raise ValueError(
            f"{where}: training.store: the run was trained on {recorded}, not {full.path}; "
            "resume it on the same store"
        )
    if record.get("train_speakers") not in (None, selected.speaker_set):
        raise ValueError(
            f"{where}: training.train_speakers: the run was trained on "
            f"{record['train_speakers']}, not {selected.speaker_set}; resume it on the same speakers"
        )
    chosen = (previous.get("posterior") or {}).get("name")
    if posterior != "auto" and chosen not in (None, posterior):
        raise ValueError(f"{where}: posterior: the run reads {chosen!r}, not {posterior!r}")


def _resumed(
    run_dir: Path,
    previous: dict[str, Any],
    agent: str,
    agent_kwargs: dict[str, Any],
    max_length: int,
    posterior: str,
) -> tuple[dict[str, Any], int, str]:
    """The options of a run being resumed: its saved ones, overridden by those given now;
    its T_max and posterior model. A different agent is refused."""
    max_length = int(previous.get("max_length") or max_length)
    if previous["agent"] != agent:
        raise ValueError(
            f"{run_dir}: agent: the run was trained with {previous['agent']!r}, not {agent!r}"
        )
    agent_kwargs = {**without_retired(previous["agent_config"]), **agent_kwargs}
    return agent_kwargs, max_length, previous.get("posterior", {}).get("name", posterior)


def _clear_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> None:
    """Create ``run_dir``; a non-empty one is kept to resume, replaced to overwrite, or
    refused."""
    if run_dir.exists() and any(run_dir.iterdir()) and not resume:
        if not overwrite:
            raise FileExistsError(
                f"{run_dir}: the run directory is not empty (resume or overwrite it, or choose another)"
            )
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)


def _fit_to_posterior(
    agent: str, job: _Job, fitted: CrossFit, selection: dict[str, Any]
) -> tuple[Any, dict[str, Any], bool]:
    """Our DQN's config settled on the fitted posterior model: ``stop_time_feature="auto"``
    resolved by the selection, and ``obs_mode="frame"`` when no front end holds this model
    (the agent then steps its log-posteriors). Returns the config, its dict and whether
    the agent reads posteriors (``posterior_input``)."""
    config = job.config
    if not agent.startswith("dqn"):
        return config, job.agent_config, False
    if config.stop_time_feature == "auto":
        time_feature = time_says_more(selection.get(fitted.model.name, {}))
        config = dataclasses.replace(config, stop_time_feature=time_feature)
    posterior_input = config.frontend == "posterior" and reads_posterior_store(fitted)
    if posterior_input:
        config = dataclasses.replace(config, obs_mode="frame")
    if config is job.config:
        return config, job.agent_config, posterior_input
    return config, dataclasses.asdict(config), posterior_input


def run_record(
    selected: FeatureStore,
    agent_config: dict[str, Any],
    max_length: int,
    fitted: CrossFit,
    posterior_input: bool,
) -> dict[str, Any]:
    """What a run's ``config.json`` records about its reward, data shape and posterior
    (besides the agent, budget, seed and training data)."""
    reward = RewardSpec.preset(
        agent_config.get("reward", "earliness"),
        wait_cost=agent_config.get("wait_cost"),
        earliness_weight=agent_config.get("earliness_weight"),
    )
    obs_size = {"frame": 1, "mean": 1, "frame+mean": 2}[agent_config["obs_mode"]] * selected.dim + 1
    record = {
        "reward": reward.as_dict(),
        "train_speakers": selected.speaker_set,
        "class_names": selected.class_names,
        "store_dim": selected.dim,
        "obs_dim": obs_size,
        "n_actions": selected.n_classes + 1,
        "steps_per_second": selected.steps_per_second,
        "max_length": max_length,
        "posterior": {"name": fitted.model.name, "folds": fitted.folds.as_record()},
        "agent_config": agent_config,
    }
    if posterior_input:
        k = selected.n_classes
        record.update(agent_input="posteriors", agent_store_dim=k, obs_dim=k + 1)
    return record


def fit_posterior(
    store: FeatureStore,
    run_dir: Path,
    agent_config: dict[str, Any],
    posterior: str = "auto",
    status: dict[str, str] | None = None,
    allow_untuned: bool = False,
) -> tuple[CrossFit, dict[str, Any]]:
    """Cross-fit the run's posterior model on the training speakers (``"auto"``: chosen
    among the candidates by inner cross-validation on them), save it, and tune the non-RL
    stopping rules on its out-of-fold posteriors (the same our DQN learns on). The fit is
    read from the posterior cache when it holds it (``status["cache"]``: hit or miss).
    Prints the folds used and every candidate or rule left unscored or untuned; refuses,
    before saving anything, when no rule can be tuned unless ``allow_untuned``.
    Returns the fit and the selection's scores per candidate (empty when not selected)."""
    check_posterior_name(posterior)
    fitted, scores = choose_posterior(store, agent_config, posterior, status)
    untuned: list[str] = []
    rules = tune_rules(fitted.posteriors, untuned)
    for line in [fitted.folds.line(len(store.speaker_set)), *selection_lines(scores), *untuned]:
        say(line)
    if len(untuned) == len(TUNED_RULES) and not allow_untuned:
        raise ValueError(
            f"{store.path}: no stopping rule can be tuned on the training posteriors (every "
            "value of every grid scores the same); give --allow-untuned to train anyway"
        )
    save_posterior_model(fitted.model, run_dir / POSTERIOR)
    write_json_atomic(
        run_dir / RULES,
        {
            "posterior": fitted.model.name,
            "folds": fitted.folds.as_record(),
            "selection": scores,
            "untuned": untuned,
            **rules.as_dict(),
        },
    )
    return fitted, scores


def say(line: str) -> None:
    """A line about what training did with the data (stderr: results stay on stdout)."""
    print(line, file=sys.stderr, flush=True)
