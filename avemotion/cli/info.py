"""``avemotion info STORE``: print a store's summary (``--features STORE`` too, the
spelling every other command uses)."""

from __future__ import annotations

import argparse
import json

from avemotion.store import FeatureStore


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("info", help="print a feature store's summary")
    parser.add_argument(
        "store", nargs="?", default=None, help="store directory (default: the synthetic corpus)"
    )
    parser.add_argument(
        "--features", default=None, help="store directory, as the other commands name it"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.store is not None and args.features is not None:
        raise ValueError("store: give it once, as STORE or as --features STORE")
    args.store = args.store if args.store is not None else args.features
    if args.store is None:
        from avemotion.envs.synthetic import synthetic_store

        store = synthetic_store()
    else:
        store = FeatureStore.open(args.store)
    summary = store.summary()
    if args.json:
        print(json.dumps(summary))
        return 0
    width = max(len(k) for k in summary)
    for key, value in summary.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, list):
            value = f"{len(value)}: " + ", ".join(map(str, value))
        print(f"{key:<{width}}  {value}")
    return 0
