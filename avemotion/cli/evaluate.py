"""``avemotion evaluate``: greedy evaluation of a run on every selected clip, once each."""

from __future__ import annotations

import argparse
import json
import sys

from avemotion.cli.train import add_speaker_arguments


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a trained run (accuracy, earliness, harmonic mean, ...)",
        description="Sweep every selected clip exactly once with the run's greedy policy. With "
        "--json the last line of stdout is one JSON object.",
    )
    parser.add_argument(
        "--run", required=True, metavar="RUN", help="run directory written by `avemotion train`"
    )
    parser.add_argument(
        "--features",
        default=None,
        metavar="STORE",
        help="feature store (default: the run's own training store, on the speakers the run "
        "left out, or the synthetic corpus for a run trained on it)",
    )
    add_speaker_arguments(parser)
    parser.add_argument(
        "--baselines",
        action="store_true",
        help="also report the non-RL rules (read from the run: tuned on its training speakers) "
        "and aeon's classifiers (fitted on the run's training clips)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object as the last line"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from avemotion.evaluation.evaluate import evaluate_run

    features, speakers = args.features, args.speakers
    if features is None:
        features, speakers = _own_store(args)
    result = evaluate_run(
        args.run,
        features,
        speakers=speakers,
        exclude_speakers=args.exclude_speakers,
        baselines=args.baselines,
    )
    if args.json:
        print(json.dumps(result))
        return 0
    rows = [(result["agent"], result)] + list(result.get("baselines", {}).items())
    print(f"{'method':<28} {'accuracy':>8} {'earliness':>9} {'HM':>6} {'decision s':>10}")
    for name, r in rows:
        print(
            f"{name:<28} {r['accuracy']:>8.3f} {r['earliness']:>9.3f} {r['harmonic_mean']:>6.3f} {r['mean_decision_s']:>10.2f}"
        )
    print(f"{result['n_clips']} clips of speakers {', '.join(result['speakers'])}")
    return 0


def _own_store(args: argparse.Namespace) -> tuple[str | None, list[str] | None]:
    """Without ``--features``: the store the run records it trained on (``None`` for the
    synthetic corpus) and, without a speaker selection, the speakers the run left out
    (said on stderr); a run that trained on every speaker of its store is refused."""
    from avemotion.cli.train import left_out_speakers
    from avemotion.training.run_dir import read_run_config

    record = read_run_config(args.run).get("training")
    if not record:
        raise ValueError(
            f"--features: {args.run} does not record its training store (trained before runs "
            "recorded it); give the store to evaluate on"
        )
    store = None if record.get("synthetic") else record.get("store")
    if args.speakers is not None or args.exclude_speakers:
        return store, args.speakers
    held_out = left_out_speakers(store, args.run)
    if not held_out:
        raise ValueError(
            f"--features: {args.run} trained on every speaker of its store "
            f"({store or 'the synthetic corpus'}); give the store to evaluate on"
        )
    where = store or "the synthetic corpus"
    print(
        f"evaluating on {where}, speakers the run left out: {', '.join(held_out)}", file=sys.stderr
    )
    return store, held_out
