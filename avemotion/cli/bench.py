"""``avemotion bench WHAT``: speed benchmarks, printed as one JSON object (last line of stdout)."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="run a speed benchmark and print JSON")
    parser.add_argument(
        "what", choices=["env"], help="env: AVEmotion-v0 steps/s beside CartPole-v1"
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer steps (a smoke run, noisier figures)"
    )
    parser.add_argument(
        "--json", action="store_true", help="accepted for symmetry; the output is always JSON"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.what == "env":
        from avemotion.benchmarks.env_speed import run_env_benchmark

        result = run_env_benchmark(quick=args.quick)
    print(json.dumps(result))
    return 0
