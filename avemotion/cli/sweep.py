"""``avemotion sweep``: every (fold x agent x seed) as a Ray Tune trial, locally or on a cluster."""

from __future__ import annotations

import argparse
import json
import sys


def _int_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"expected a JSON object ({error})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="run (fold x agent x seed) trials on Ray Tune and write DIR/results.json",
        description="Train and evaluate every (fold x agent x seed) as a Ray Tune trial "
        "(needs the ray extra: pip install 'avemotion[ray]'). Writes DIR/results.json "
        "(one entry per trial and the mean ± std table) and DIR/comparison.md/.csv.",
    )
    parser.add_argument(
        "--features",
        default=None,
        metavar="STORE",
        help="feature store directory, memory-mapped by each worker (default: the synthetic corpus)",
    )
    parser.add_argument(
        "--agents", required=True, help="comma-separated agent names, e.g. dqn,sb3-ppo"
    )
    parser.add_argument(
        "--seeds", type=_int_list, default=[0], help="comma-separated seeds (default: 0)"
    )
    parser.add_argument(
        "--folds", default="loso", help="'loso' (one fold per speaker) or 'speakers:A,B;C,D'"
    )
    parser.add_argument("--steps", type=int, required=True, help="training env steps per trial")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument(
        "--address",
        default=None,
        help="Ray cluster address ('auto', 'ray://host:10001'); default: a local Ray",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted sweep in DIR, skipping finished trials",
    )
    parser.add_argument(
        "--cpus-per-trial",
        type=int,
        default=1,
        help="CPUs (and torch threads) per trial, at least 1 (default: 1)",
    )
    parser.add_argument(
        "--num-cpus",
        type=int,
        default=None,
        help="CPUs of the local Ray instance (default: all); not with --address",
    )
    parser.add_argument(
        "--agent-kwargs",
        type=_json_object,
        default={},
        help="JSON object of agent options, checked for every agent before Ray starts, "
        "e.g. '{\"learning_rate\": 0.001}'",
    )
    parser.add_argument("--quiet", action="store_true", help="no Ray Tune progress table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from avemotion.sweep import SweepError, run_sweep

    agents = [name.strip() for name in args.agents.split(",") if name.strip()]
    try:
        results = run_sweep(
            args.features,
            agents,
            args.seeds,
            args.folds,
            args.steps,
            args.out,
            address=args.address,
            resume=args.resume,
            cpus_per_trial=args.cpus_per_trial,
            num_cpus=args.num_cpus,
            agent_kwargs=args.agent_kwargs,
            verbose=0 if args.quiet else 1,
        )
    except SweepError as error:  # trials failed (not bad input): status 1, as a crash
        print(f"avemotion sweep: error: {error}", file=sys.stderr)
        return 1
    from avemotion.evaluation.report import comparison_markdown

    print(comparison_markdown(results["table"]), end="")
    print(f"{len(results['trials'])} trials -> {args.out}/results.json")
    return 0
