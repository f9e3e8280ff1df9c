"""Speed of our DQN against SB3's DQN on the same store and budget, in one run: env-steps/s
of the training loops, and the wall-clock time a user waits for ``avemotion train``.

The wall clock counts all of :func:`~avemotion.training.train.train`: the posterior model's
selection and cross-fitting, the rule tuning, the agent's setup, training, checkpoints and
our DQN's wait-bias tuning. The posterior fit is cached per store, speaker selection and
options (:mod:`~avemotion.posterior.cache`), so it is paid once, not per run: our DQN is
timed twice, first with an empty cache (``cold``: the fit from nothing), then again at the
same seed with the fit cached (``warm``: what every further seed or rerun waits). SB3's DQN
runs last, with the fit cached, so its time holds no posterior fit, as SB3 alone needs
none: the cold ratio is the strictest. The cache is a temporary directory, so neither the
user's cache nor an earlier run makes the cold figure warm. CPU seconds (the process's) are
reported too: on a shared machine they move less with the load than the wall clock.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avemotion.store import FeatureStore

OURS, THEIRS = "dqn", "sb3-dqn"


def bench_agents(
    store: FeatureStore | str | os.PathLike[str] | None = None,
    steps: int = 50_000,
    seed: int = 0,
    agents: tuple[str, ...] = (OURS, THEIRS),
    out: str | os.PathLike[str] | None = None,
    warm: bool = True,
    **dqn_options: Any,
) -> dict[str, Any]:
    """Train each agent for ``steps`` env steps on ``store``; report speeds and wall clocks.

    Returns ``{"steps", "agents": {name: summary.json of its run}, "cache": ...}`` and,
    when both ran, ``speedup_vs_sb3_dqn`` (env-steps/s, ours / SB3's),
    ``wall_speedup_vs_sb3_dqn`` (SB3's whole ``train`` / ours with a cold posterior
    cache), ``wall_speedup_vs_sb3_dqn_warm`` (the same with ours warm) and the
    ``cpu_speedup_*`` twins. With ``warm``, our DQN's second run is in
    ``agents["dqn"]["warm"]``, with ``same_model``: whether its saved network equals the
    cold run's bit for bit (the cache must not change what is learnt). Runs go into
    ``out`` (a temporary directory by default, removed afterwards).
    """
    from avemotion.posterior.cache import posterior_cache_root
    from avemotion.training.run_dir import read_summary
    from avemotion.training.train import train

    results: dict[str, Any] = {
        "steps": int(steps),
        "agents": {},
        "cache": "ours: cold, then warm (same seed); SB3: warm (its time holds no posterior fit)",
    }
    with tempfile.TemporaryDirectory(prefix="avemotion-bench-") as tmp:
        root = Path(out) if out is not None else Path(tmp)
        with posterior_cache_root(Path(tmp) / "cache"):
            for agent in agents:
                options = dqn_options if agent.startswith("dqn") else {}
                run = train(
                    agent,
                    store,
                    steps,
                    seed,
                    root / agent,
                    overwrite=True,
                    progress=False,
                    **options,
                )
                results["agents"][agent] = read_summary(run)
                if agent == OURS and warm:
                    warm_dir = root / f"{agent}-warm"
                    again = train(
                        agent,
                        store,
                        steps,
                        seed,
                        warm_dir,
                        overwrite=True,
                        progress=False,
                        **options,
                    )
                    summary = read_summary(again)
                    results["agents"][agent]["warm"] = {
                        **{k: summary[k] for k in TIMES},
                        "same_model": same_model(run, again),
                    }
    results.update(ratios(results["agents"]))
    return results


TIMES = ("wall_seconds", "cpu_seconds", "posterior_seconds", "posterior_cache", "train_seconds")
"""What the warm rerun reports."""


def ratios(agents: dict[str, Any]) -> dict[str, float]:
    """SB3's figure over ours (times: SB3's over ours; env-steps/s: ours over SB3's)."""
    if OURS not in agents or THEIRS not in agents:
        return {}
    ours, theirs = agents[OURS], agents[THEIRS]
    found = {"speedup_vs_sb3_dqn": ours["env_steps_per_s"] / theirs["env_steps_per_s"]}
    for clock in ("wall", "cpu"):
        key = f"{clock}_seconds"
        found[f"{clock}_speedup_vs_sb3_dqn"] = theirs[key] / max(ours[key], 1e-9)
        if "warm" in ours:
            found[f"{clock}_speedup_vs_sb3_dqn_warm"] = theirs[key] / max(ours["warm"][key], 1e-9)
    return found


def same_model(run: Path, other: Path) -> bool:
    """Whether two runs saved the same network, tensor for tensor."""
    from avemotion.agents.dqn.dqn import MODEL_NAME

    a = torch.load(run / MODEL_NAME, weights_only=True)
    b = torch.load(other / MODEL_NAME, weights_only=True)
    return a.keys() == b.keys() and all(
        np.array_equal(a[k].numpy(), b[k].numpy(), equal_nan=True) for k in a
    )
