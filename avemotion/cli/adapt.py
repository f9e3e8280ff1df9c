"""``avemotion adapt``: write a speaker-adapted copy of a feature store.

Each clip is normalised with statistics of its speaker's earlier clips only (store order or a
seeded random order), shrunk toward the reference store's population; no label is read.
Adapt the training store with itself as reference and the test store against the training
store, so that both go through the same transform. Prints one JSON object (last line).
"""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "adapt",
        help="speaker-adapt a feature store causally (no labels), against a reference store",
        description="Normalise every clip with its speaker's earlier clips, shrunk toward the "
        "reference population (docs/adaptation.md). Writes a store with the same clips, "
        "labels and speakers; meta.json records the method, the reference checksum and the order.",
    )
    parser.add_argument("--features", required=True, help="store to adapt")
    parser.add_argument(
        "--reference",
        required=True,
        help="store giving the population statistics and the prior (the training store)",
    )
    parser.add_argument("--out", required=True, help="adapted store to write")
    parser.add_argument(
        "--order",
        choices=("store", "random"),
        default="store",
        help="order in which a speaker's clips arrive (default: the store's order)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of --order random (default 0)")
    for which, what in (("features", "adapt"), ("reference", "use as reference")):
        parser.add_argument(
            f"--{which}-speakers",
            nargs="+",
            metavar="NAME",
            help=f"{what} only these speakers of --{which}",
        )
        parser.add_argument(
            f"--{which}-exclude-speakers",
            nargs="+",
            metavar="NAME",
            help=f"do not {what} these speakers of --{which}",
        )
    parser.add_argument(
        "--prior",
        nargs=2,
        type=float,
        metavar=("KAPPA", "NU"),
        help="prior strengths in clips (default: chosen by leave-one-speaker-out predictive "
        "likelihood on the reference speakers)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from avemotion.adaptation.estimator import Prior
    from avemotion.adaptation.transform import adapt_store
    from avemotion.envs.core import resolve_store

    if args.seed is not None and args.order != "random":
        raise ValueError("--seed: only --order random draws an order (the store order has none)")
    seed = 0 if args.seed is None else args.seed
    features = resolve_store(args.features, args.features_speakers, args.features_exclude_speakers)
    reference = resolve_store(
        args.reference, args.reference_speakers, args.reference_exclude_speakers
    )
    prior = Prior(*args.prior) if args.prior else None
    store = adapt_store(
        features, reference, args.out, args.order, seed, prior, overwrite=args.overwrite
    )
    block = store.meta["adaptation"]
    print(
        json.dumps(
            {
                "out": str(store.path),
                "clips": store.n_clips,
                "speakers": store.speaker_set,
                "method": block["method"],
                "prior_median": {k: float(np.median(v)) for k, v in block["prior"].items()},
                "prior_scores": block["prior_scores"],
                "reference_checksum": block["reference_checksum"],
                "reference_speakers": block["reference_speakers"],
                "order": block["order"],
                "seed": block["seed"],
            }
        )
    )
    return 0
