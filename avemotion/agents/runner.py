"""Train any agent into a run directory, and load it back as a greedy per-step :class:`Agent`.

A run directory holds::

    RUN/
      config.json         agent name, step budget, seed, store and speaker selection,
                          the agent's full config, class names and sizes, and
                          ``max_length``: T_max of the time feature t / T_max (the
                          training selection's longest clip), which every env built
                          for this run (training, evaluation, online) uses
      model.pt|model.zip  the trained model (ours: a torch state dict; SB3: its zip)
      checkpoint.pt       ours only: the atomic checkpoint that ``resume`` continues
      training_log.csv    windowed training episodes: return, accuracy, earliness, HM, ...
      tensorboard/        the same scalars for TensorBoard
      summary.json        env steps, wall time and env-steps/s of the training
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from avemotion.agents.sb3 import SB3_AGENTS
from avemotion.envs.core import resolve_store
from avemotion.store import FeatureStore

AGENTS = ("dqn", "dqn-recurrent", *SB3_AGENTS)
SB3_OPTIONS = ("obs_mode", "wait_cost", "n_envs", "log_every", "progress")


def write_json_atomic(path: Path, value: Any) -> None:
    """Write JSON into a temporary sibling and rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(value, indent=1))
    os.replace(tmp, path)


def _store_reference(
    store: FeatureStore | str | os.PathLike[str] | None, resolved: FeatureStore
) -> str | None:
    return None if store is None else str(Path(resolved.path).resolve())


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
    **agent_kwargs: Any,
) -> Path:
    """Train ``agent`` for ``steps`` env steps on the selected speakers; return the run dir.

    ``agent`` is ``dqn`` (ours), ``dqn-recurrent`` (ours with a GRU over raw frames) or an
    SB3 name (``sb3-dqn``, ``sb3-ppo``, ...). ``agent_kwargs`` are fields of
    :class:`~avemotion.agents.dqn.DQNConfig` for ours; for SB3, ``obs_mode``, ``wait_cost``,
    ``n_envs``, ``log_every`` and keyword arguments of the SB3 class. ``resume`` continues
    our DQN from its checkpoint up to ``steps``; ``overwrite`` replaces an existing run.
    """
    if agent not in AGENTS:
        raise ValueError(f"agent: expected one of {list(AGENTS)}, got {agent!r}")
    if int(steps) < 1:
        raise ValueError(f"steps: expected a positive integer, got {steps}")
    run_dir = Path(out)
    if run_dir.exists() and any(run_dir.iterdir()) and not resume:
        if not overwrite:
            raise FileExistsError(
                f"{run_dir}: the run directory is not empty (resume or overwrite it, or choose another)"
            )
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    full = resolve_store(store)
    selected = resolve_store(full, speakers, exclude_speakers)
    progress = bool(agent_kwargs.pop("progress", True))
    max_length = int(selected.lengths.max())
    if resume and (run_dir / "config.json").is_file():
        previous = json.loads((run_dir / "config.json").read_text())
        max_length = int(previous.get("max_length") or max_length)
        if previous["agent"] != agent:
            raise ValueError(
                f"{run_dir}: agent: the run was trained with {previous['agent']!r}, not {agent!r}"
            )
        agent_kwargs = {**previous["agent_config"], **agent_kwargs}
    if agent.startswith("dqn"):
        from avemotion.agents.dqn import DQNConfig, train_dqn

        defaults = (
            {"recurrent": "gru", "obs_mode": "frame", "hidden": (128, 128)}
            if agent == "dqn-recurrent"
            else {}
        )
        config = DQNConfig.from_dict({**defaults, **agent_kwargs})
        agent_config = dataclasses.asdict(config)
    else:
        if resume:
            raise ValueError(f"resume: only our DQN can resume; {agent} runs start over")
        unknown_sb3 = {k: v for k, v in agent_kwargs.items() if k not in SB3_OPTIONS}
        known = {k: v for k, v in agent_kwargs.items() if k in SB3_OPTIONS}
        agent_config = {
            "obs_mode": "frame+mean",
            "wait_cost": 0.01,
            **known,
            "algorithm_kwargs": unknown_sb3,
        }
    obs_size = {"frame": 1, "mean": 1, "frame+mean": 2}[agent_config["obs_mode"]] * selected.dim + 1
    run_config = {
        "agent": agent,
        "steps": int(steps),
        "seed": int(seed),
        "store": _store_reference(store, full),
        "speakers": list(speakers) if speakers is not None else None,
        "exclude_speakers": list(exclude_speakers) if exclude_speakers else None,
        "train_speakers": selected.speaker_set,
        "n_train_clips": selected.n_clips,
        "class_names": selected.class_names,
        "store_dim": selected.dim,
        "obs_dim": obs_size,
        "n_actions": selected.n_classes + 1,
        "steps_per_second": selected.steps_per_second,
        "max_length": max_length,
        "agent_config": agent_config,
    }
    write_json_atomic(run_dir / "config.json", run_config)
    if agent.startswith("dqn"):
        summary = train_dqn(
            config,
            selected,
            int(steps),
            int(seed),
            run_dir,
            resume=resume,
            progress=progress,
            max_length=max_length,
        )
    else:
        from avemotion.agents.sb3 import train_sb3

        sb3_options = {k: v for k, v in agent_config.items() if k in SB3_OPTIONS}
        summary = train_sb3(
            agent,
            selected,
            int(steps),
            int(seed),
            run_dir,
            progress=progress,
            max_length=max_length,
            **sb3_options,
            **agent_config["algorithm_kwargs"],
        )
    write_json_atomic(run_dir / "summary.json", summary)
    return run_dir


def load_agent(run_dir: str | os.PathLike[str]) -> Any:
    """Load a trained run as a greedy :class:`~avemotion.agents.policy.Agent` (``reset``/``act``).

    The agent's ``max_length`` is the run's training T_max (None for runs that predate
    it), so that :func:`~avemotion.agents.evaluate.sweep_agent` builds its env with it.
    """
    from avemotion.agents.evaluate import read_run_config

    config = read_run_config(run_dir)
    if config["agent"].startswith("dqn"):
        from avemotion.agents.policy import load_dqn_agent

        agent: Any = load_dqn_agent(Path(run_dir), config)
    else:
        from avemotion.agents.sb3 import load_sb3_agent

        agent = load_sb3_agent(Path(run_dir), config)
    agent.max_length = int(config["max_length"]) if config.get("max_length") else None
    return agent


def read_summary(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """A run's ``summary.json`` (env steps, seconds, env-steps/s)."""
    return json.loads((Path(run_dir) / "summary.json").read_text())
