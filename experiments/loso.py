"""Leave-one-speaker-out comparison of stopping rules on one feature store, over seeds.

For every held-out speaker (fold) and seed, each agent trains on the other speakers with
the same step budget, seed and env reward, and is evaluated greedily on the held-out
speaker's clips, each once. Every run cross-fits the same posterior model on the same
training speakers; the non-RL rules are read from the first agent's run (its posterior
model and tuned parameters, ``evaluate --baselines``), so every row of the table reads the
same posterior. Optionally our DQN is also trained at several fixed earliness weights
(untuned) or on the "signed" reward at several wait costs: curves, named apart.

    python experiments/loso.py --out results/loso-synthetic --steps 50000 --seeds 0 1 2
    python experiments/compare.py results/loso-synthetic

Layout of OUT (resumable: a fold/seed/agent whose ``eval.json`` exists is skipped)::

    OUT/<speaker>/seed<s>/<agent>/          a run directory + eval.json
    OUT/<speaker>/seed<s>/dqn-ew<w>/        curve runs of our DQN (--earliness-weights)
    OUT/<speaker>/seed<s>/dqn-wait<c>/      curve runs on the "signed" reward (--wait-costs)
    OUT/<speaker>/seed<s>/baselines.json    the rules' reports + threshold/fraction curves
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avemotion.agents.evaluate import evaluate_run
from avemotion.agents.run_dir import read_summary
from avemotion.agents.runner import AGENTS, DEFAULT_STEPS, train
from avemotion.atomic import write_json_atomic
from avemotion.envs.core import resolve_store

ALL_AGENTS = (
    "dqn",
    "sb3-dqn",
    "sb3-ppo",
    "sb3-a2c",
    "sb3-qrdqn",
    "sb3-recurrent-ppo",
    "sb3-maskable-ppo",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--features", default=None, help="feature store (default: the synthetic corpus)"
    )
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--agents", nargs="+", default=list(ALL_AGENTS), choices=AGENTS)
    parser.add_argument(
        "--steps",
        type=int,
        default=DEFAULT_STEPS,
        help="env steps per agent and fold (as `avemotion train`)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--wait-costs",
        type=float,
        nargs="*",
        default=[],
        help="extra runs of our DQN on the 'signed' reward at these wait costs (a curve)",
    )
    parser.add_argument(
        "--earliness-weights",
        type=float,
        nargs="*",
        default=[],
        help="extra runs of our DQN at these earliness weights, untuned (a curve)",
    )
    parser.add_argument(
        "--folds", nargs="+", default=None, help="held-out speakers (default: every speaker)"
    )
    parser.add_argument(
        "--no-aeon", action="store_true", help="skip aeon's early classifiers even when installed"
    )
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE", help="options of our DQN (JSON values)"
    )
    return parser.parse_args(argv)


def run_fold(args: argparse.Namespace, store, speaker: str, seed: int, dqn_options: dict) -> None:
    """Train and evaluate every job of one (held-out speaker, seed)."""
    seed_dir = Path(args.out) / speaker / f"seed{seed}"
    seed_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(agent, agent, {}, None) for agent in args.agents]
    jobs += [
        (f"dqn-wait{c:g}", "dqn", {"reward": "signed", "wait_cost": c}, ("wait cost", c))
        for c in args.wait_costs
    ]
    jobs += [
        (f"dqn-ew{w:g}", "dqn", {"earliness_weight": w, "tune_wait_bias": False}, ("w", w))
        for w in args.earliness_weights
    ]
    for i, (name, agent, curve_options, curve) in enumerate(jobs):
        eval_path = seed_dir / name / "eval.json"
        baselines_path = seed_dir / "baselines.json"
        if eval_path.is_file() and (i > 0 or baselines_path.is_file()):
            continue
        options = dict(dqn_options) if agent.startswith("dqn") else {}
        run = train(
            agent,
            store,
            args.steps,
            seed,
            seed_dir / name,
            exclude_speakers=[speaker],
            overwrite=True,
            progress=False,
            **{**options, **curve_options},
        )
        result = evaluate_run(
            run, store, speakers=[speaker], baselines=i == 0, aeon=not args.no_aeon
        )
        if i == 0:  # the rules of this fold: the first run's posterior model and parameters
            write_json_atomic(
                baselines_path,
                {"reports": result.pop("baselines"), "curves": result.pop("baseline_curves")},
            )
        result["training"] = read_summary(run)
        result["seed"], result["fold"] = seed, speaker
        if name == "dqn":
            result["bias_sweep"] = dqn_bias_sweep(run, store.subset(speakers=[speaker]))
        if curve is not None:
            result["curve"] = {"parameter": curve[0], "value": curve[1]}
        write_json_atomic(eval_path, result)


def dqn_bias_sweep(run: Path, test) -> list[dict[str, float]]:
    """Our DQN's accuracy-vs-earliness curve on the held-out clips: its greedy policy with
    the wait bias swept (the tuned bias is one point of it), as the baselines' θ and x are
    swept."""
    from avemotion.agents.evaluate import posterior_inputs
    from avemotion.agents.run_dir import read_run_config
    from avemotion.agents.runner import load_agent
    from avemotion.agents.stop_tuning import bias_sweep
    from avemotion.envs.core import ObservationLayout

    agent = load_agent(run)
    if not hasattr(agent.network, "wait_bias"):
        return []
    config = read_run_config(run)
    with tempfile.TemporaryDirectory(prefix="avemotion-sweep-") as tmp:
        if config.get("agent_input") == "posteriors":
            test = posterior_inputs(run, test, tmp)
        layout = ObservationLayout(test, agent.obs_mode, config.get("max_length"))
        return bias_sweep(agent.network, test, layout, levels=np.linspace(0.0, 1.0, 41))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from avemotion.cli.train import parse_options

    store = resolve_store(args.features)
    folds = args.folds or store.speaker_set
    Path(args.out).mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        Path(args.out) / "experiment.json", {**vars(args), "folds": folds, "store": str(store.path)}
    )
    start = time.perf_counter()
    pairs = [(speaker, seed) for speaker in folds for seed in args.seeds]
    for speaker, seed in tqdm(pairs, desc="folds x seeds", unit="fold"):
        run_fold(args, store, speaker, seed, parse_options(args.set))
    print(
        f"{len(folds)} folds x {len(args.seeds)} seeds in {time.perf_counter() - start:.0f} s -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
