"""Leave-one-speaker-out comparison of agents and baselines on one feature store.

For every held-out speaker (fold), each agent trains on the other speakers with the same
step budget and seed, and is evaluated greedily on the held-out speaker's clips, each
once. The non-RL baselines are fitted on the same training speakers. Optionally our DQN
is also trained at several fixed earliness weights (its reward's trade-off, without the
wait-bias tuning) or with the env's reward at several wait costs, which gives its
accuracy-vs-earliness curve.

    python experiments/loso.py --out results/loso-synthetic --steps 100000
    python experiments/compare.py results/loso-synthetic

Layout of OUT (resumable: a fold/agent whose ``eval.json`` exists is skipped)::

    OUT/<speaker>/<agent>/            a run directory + eval.json
    OUT/<speaker>/dqn-ew<w>/          curve runs of our DQN (with --earliness-weights)
    OUT/<speaker>/dqn-wait<c>/        curve runs of our DQN on the env reward (--wait-costs)
    OUT/<speaker>/baselines.json      baseline reports + threshold/fraction curves
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avemotion.agents.baselines import baseline_curves, evaluate_baselines, fit_baselines
from avemotion.agents.evaluate import evaluate_run
from avemotion.agents.run_dir import read_summary
from avemotion.agents.runner import AGENTS, train
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
    parser.add_argument("--steps", type=int, default=100_000, help="env steps per agent and fold")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--wait-cost", type=float, default=0.02, help="env wait cost of every RL agent"
    )
    parser.add_argument(
        "--wait-costs",
        type=float,
        nargs="*",
        default=[],
        help="extra runs of our DQN on the env's reward at these wait costs (a curve)",
    )
    parser.add_argument(
        "--earliness-weights",
        type=float,
        nargs="*",
        default=[],
        help="extra runs of our DQN at these fixed earliness weights, untuned (a curve)",
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


def run_fold(args: argparse.Namespace, store, speaker: str, dqn_options: dict) -> None:
    fold_dir = Path(args.out) / speaker
    fold_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(agent, agent, {}, None) for agent in args.agents]
    jobs += [
        (f"dqn-wait{c:g}", "dqn", {"reward": "env", "wait_cost": c}, ("wait cost", c))
        for c in args.wait_costs
    ]
    jobs += [
        (f"dqn-ew{w:g}", "dqn", {"earliness_weight": w, "tune_wait_bias": False}, ("w", w))
        for w in args.earliness_weights
    ]
    for name, agent, curve_options, curve in jobs:
        eval_path = fold_dir / name / "eval.json"
        if eval_path.is_file():
            continue
        options = dict(dqn_options) if agent.startswith("dqn") else {}
        options = {"wait_cost": args.wait_cost, **options, **curve_options}
        run = train(
            agent,
            store,
            args.steps,
            args.seed,
            fold_dir / name,
            exclude_speakers=[speaker],
            overwrite=True,
            progress=False,
            **options,
        )
        result = evaluate_run(run, store, speakers=[speaker])
        result["training"] = read_summary(run)
        if name == "dqn":
            result["bias_sweep"] = dqn_bias_sweep(run, store.subset(speakers=[speaker]))
        result["wait_cost"] = options["wait_cost"]
        if curve is not None:
            result["curve"] = {"parameter": curve[0], "value": curve[1]}
        write_json_atomic(eval_path, result)
    baselines_path = fold_dir / "baselines.json"
    if not baselines_path.is_file():
        train_store = store.subset(exclude_speakers=[speaker])
        test_store = store.subset(speakers=[speaker])
        reports = evaluate_baselines(train_store, test_store, seed=args.seed, aeon=not args.no_aeon)
        curves = baseline_curves(fit_baselines(train_store), test_store)
        write_json_atomic(baselines_path, {"reports": reports, "curves": curves})


def dqn_bias_sweep(run: Path, test) -> list[dict[str, float]]:
    """Our DQN's accuracy-vs-earliness curve on the held-out clips: its greedy policy with
    the wait bias swept (the tuned bias is one point of it), as the baselines' θ and x are
    swept."""
    from avemotion.agents.run_dir import read_run_config
    from avemotion.agents.runner import load_agent
    from avemotion.agents.stop_tuning import bias_sweep
    from avemotion.envs.core import ObservationLayout

    agent = load_agent(run)
    if not hasattr(agent.network, "wait_bias"):
        return []
    config = read_run_config(run)
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
    for speaker in tqdm(folds, desc="folds", unit="fold"):
        run_fold(args, store, speaker, parse_options(args.set))
    print(f"{len(folds)} folds in {time.perf_counter() - start:.0f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
