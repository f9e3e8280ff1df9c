"""``avemotion train``: train an agent into a run directory (default: our DQN on the synthetic corpus)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from avemotion.device import add_device_argument

DEFAULT_TRAIN_SPEAKERS = ("S01", "S02", "S03", "S04", "S05", "S06")
DEFAULT_TEST_SPEAKERS = ("S07", "S08")


def add_speaker_arguments(parser: argparse.ArgumentParser) -> None:
    """``--speakers`` / ``--exclude-speakers``, shared by train and evaluate."""
    parser.add_argument(
        "--speakers", nargs="+", default=None, metavar="NAME", help="keep only these speakers"
    )
    parser.add_argument(
        "--exclude-speakers", nargs="+", default=None, metavar="NAME", help="drop these speakers"
    )


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from avemotion.training.train import AGENTS

    parser = subparsers.add_parser(
        "train",
        help="train an agent (with no arguments: our DQN on the synthetic corpus, then evaluate it)",
        description="Train an agent and write its run directory (model, config, training log, "
        "TensorBoard scalars). With no --features, trains on the synthetic corpus's speakers "
        "S01-S06 and evaluates on the held-out S07-S08.",
    )
    parser.add_argument(
        "--features",
        default=None,
        metavar="STORE",
        help="feature store (default: the synthetic corpus)",
    )
    parser.add_argument(
        "--agent", default="dqn", choices=AGENTS, help="agent to train (default: dqn, ours)"
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="environment steps (default: 150000)"
    )
    parser.add_argument(
        "--posterior",
        default="auto",
        metavar="MODEL",
        help="posterior model the run's non-RL rules and our DQN read: "
        f"{', '.join(POSTERIOR_NAMES)}, or auto (chosen on the training speakers by inner "
        "cross-validation; default). SB3 agents, and our DQN with --set frontend=raw, "
        "learn from the store's rows instead; the rules beside them still read it",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out",
        default=None,
        metavar="RUN",
        help="run directory (default: runs/<agent>-seed<seed>)",
    )
    add_speaker_arguments(parser)
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="agent options, e.g. wait_cost=0.02 hidden=[64,64] (values are JSON)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its checkpoint up to --steps",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing run directory"
    )
    parser.add_argument(
        "--no-eval",
        action="store_true",
        help="skip the evaluation after training: on S07-S08 in the default job, else on "
        "the store's speakers left out by --speakers / --exclude-speakers (if any)",
    )
    parser.add_argument(
        "--allow-untuned",
        action="store_true",
        help="train even when no stopping rule can be tuned on the training posteriors "
        "(every value of every grid scores the same); each untuned rule is still printed",
    )
    add_device_argument(parser)
    parser.set_defaults(func=run)


POSTERIOR_NAMES = (
    "running-mean-softmax",
    "store-logits",
    "prefix-shape-softmax",
    "prefix-nearest-neighbour",
    "prefix-minirocket",
)
"""The names of :data:`~avemotion.posterior.POSTERIOR_MODELS`, spelt out so that ``--help``
does not import torch (a test keeps them equal)."""

OWN_FLAGS = (
    "seed",
    "device",
    "posterior",
    "speakers",
    "exclude_speakers",
    "resume",
    "overwrite",
    "steps",
    "allow_untuned",
)
"""``train`` arguments that have a flag of their own (``--set`` would pass them twice)."""


def parse_options(pairs: list[str]) -> dict:
    """``KEY=VALUE`` pairs into a dict (JSON values; bare words stay strings)."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set: expected KEY=VALUE, got {pair!r}")
        if key in OWN_FLAGS:
            flag = "--" + key.replace("_", "-")
            raise ValueError(f"--set {key}: give it as {flag}, not as an agent option")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def run(args: argparse.Namespace) -> int:
    from avemotion.evaluation.evaluate import evaluate_run
    from avemotion.training.run_dir import read_summary
    from avemotion.training.train import DEFAULT_STEPS, train

    out = args.out or f"runs/{args.agent}-seed{args.seed}"
    if args.resume:
        _recorded_data(args, Path(out))
    default_job = args.features is None and args.speakers is None and args.exclude_speakers is None
    speakers = list(DEFAULT_TRAIN_SPEAKERS) if default_job else args.speakers
    steps = args.steps if args.steps is not None else DEFAULT_STEPS
    run_dir = train(
        args.agent,
        args.features,
        steps,
        args.seed,
        out,
        speakers=speakers,
        exclude_speakers=args.exclude_speakers,
        resume=args.resume,
        overwrite=args.overwrite,
        posterior=args.posterior,
        device=args.device,
        allow_untuned=args.allow_untuned,
        **parse_options(args.set),
    )
    summary = read_summary(run_dir)
    print(f"run: {run_dir}")
    if args.no_eval:
        held_out = []
    elif default_job:
        held_out = list(DEFAULT_TEST_SPEAKERS)
    else:
        held_out = left_out_speakers(args.features, run_dir)
    if held_out:
        result = evaluate_run(run_dir, args.features, speakers=held_out, baselines=True, aeon=False)
        print(f"held-out speakers {', '.join(held_out)}, {result['n_clips']} clips:")
        rows = [(f"{args.agent} (ours)" if args.agent.startswith("dqn") else args.agent, result)]
        rows += [(name, result["baselines"][name]) for name in ("threshold", "fixed_fraction")]
        for name, r in rows:
            print(
                f"  {name:<18} accuracy {r['accuracy']:.3f}, earliness {r['earliness']:.3f}, "
                f"harmonic mean {r['harmonic_mean']:.3f}, mean decision {r['mean_decision_s']:.2f} s"
            )
    print(
        f"env-steps/s: {summary['env_steps_per_s']:.0f} ({summary['env_steps']} steps in {summary['train_seconds']:.1f} s)"
    )
    return 0


def left_out_speakers(features: str | None, run_dir) -> list[str]:
    """The speakers of the store (``None``: the synthetic corpus) the run did not train on."""
    from avemotion.envs.core import resolve_store
    from avemotion.training.run_dir import read_run_config

    trained = set(read_run_config(run_dir).get("train_speakers") or ())
    return [s for s in resolve_store(features).speaker_set if s not in trained]


def _recorded_data(args: argparse.Namespace, run_dir: Path) -> None:
    """A run being resumed continues on the data it records: its store and speaker
    selection fill in what the command leaves out (the runner refuses any that differ)."""
    from avemotion.training.run_dir import CONFIG, read_run_config

    if not (run_dir / CONFIG).is_file():
        return  # nothing to resume: a fresh run
    record = read_run_config(run_dir).get("training") or {}
    if args.features is None and not record.get("synthetic", True):
        args.features = record.get("store")
    if args.speakers is None and args.exclude_speakers is None:
        args.speakers, args.exclude_speakers = (
            record.get("speakers"),
            record.get("exclude_speakers"),
        )
