"""Speed of our DQN against SB3's DQN: env-steps/s on the same store and budget, in one run."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from avemotion.store import FeatureStore


def bench_agents(
    store: FeatureStore | str | os.PathLike[str] | None = None,
    steps: int = 50_000,
    seed: int = 0,
    agents: tuple[str, ...] = ("dqn", "sb3-dqn"),
    out: str | os.PathLike[str] | None = None,
    **dqn_options: Any,
) -> dict[str, Any]:
    """Train each agent for ``steps`` env steps on ``store`` and report env-steps/s.

    Returns ``{"steps": ..., "agents": {name: {"env_steps_per_s", "train_seconds",
    "env_steps"}}, "speedup_vs_sb3_dqn": ours / SB3's, "wall_speedup_vs_sb3_dqn": SB3's
    training seconds / ours including the front-end fit}`` (the ratios only when both ran).
    Runs go into ``out`` (a temporary directory by default, removed afterwards).
    """
    from avemotion.agents.run_dir import read_summary
    from avemotion.agents.runner import train

    results: dict[str, Any] = {"steps": int(steps), "agents": {}}
    with tempfile.TemporaryDirectory(prefix="avemotion-bench-") as tmp:
        root = Path(out) if out is not None else Path(tmp)
        for agent in agents:
            options = dqn_options if agent.startswith("dqn") else {}
            run_dir = train(
                agent, store, steps, seed, root / agent, overwrite=True, progress=False, **options
            )
            results["agents"][agent] = read_summary(run_dir)
    rates = {name: summary["env_steps_per_s"] for name, summary in results["agents"].items()}
    if "dqn" in rates and "sb3-dqn" in rates:
        results["speedup_vs_sb3_dqn"] = rates["dqn"] / rates["sb3-dqn"]
        # Whole training wall time, our DQN's front-end fitting and checkpoints included.
        ours, theirs = results["agents"]["dqn"], results["agents"]["sb3-dqn"]
        total = ours["train_seconds"] + ours.get("setup_seconds", 0.0)
        results["wall_speedup_vs_sb3_dqn"] = theirs["train_seconds"] / max(total, 1e-9)
    return results
