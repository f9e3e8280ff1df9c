"""The ``avemotion`` command. Each subcommand lives in its own module of this package and
exposes ``add_parser(subparsers)``; the modules parse arguments and call the library."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from avemotion.store import StoreError

# Module names under avemotion.cli, in the order ``avemotion --help`` lists them.
COMMANDS = (
    "info",
    "bench",
    "train_encoder",
    "evaluate_encoder",
    "extract",
    "adapt",
    "sweep",
    "stream",
    "train",
    "evaluate",
    "evaluate_turns",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avemotion", description="Online audio-visual emotion recognition."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"avemotion.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (StoreError, FileNotFoundError, FileExistsError, ValueError) as error:
        print(f"avemotion {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
