"""``avemotion bench WHAT``: benchmarks, printed as one JSON object (the last line of stdout)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

WHAT = {
    "agents": "our DQN beside SB3's DQN on the same store and budget, one process: env-steps/s "
    "and the wall clock of the whole train (posterior cache cold, then warm)",
    "env": "AVEmotion-v0 steps/s beside CartPole-v1, and the vector env at 1/64/1024 envs",
    "extract": "extract --ray on a local Ray at --workers counts over --clips RAVDESS clips "
    "(synthetic without it): clips/s with and without start-up, speedup, overheads apart",
    "faces": "the Haar face search on real face clips: faces found, box jitter, zero-shot "
    "mini-Xception accuracy, ms per frame",
    "fuzz": "random actions and seeds over --steps env steps; exits 1 on any broken invariant",
    "pipeline": "online pipeline per-stage times, real-time factor and p95 step latency on AV input",
    "turns": "an hour of synthetic conversation through stream --turns: resident memory at the "
    "start and the end, real-time factor (--quick: 5 minutes)",
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="run a benchmark and print JSON",
        description="; ".join(f"{k}: {v}" for k, v in WHAT.items()),
    )
    parser.add_argument("what", choices=sorted(WHAT))
    parser.add_argument(
        "--quick", action="store_true", help="env, pipeline: fewer repeats (noisier figures)"
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="fuzz: steps per env kind (1e6); agents: budget (50k)",
    )
    parser.add_argument("--features", default=None, help="agents: store (default: synthetic)")
    parser.add_argument("--seed", type=int, default=0, help="agents, fuzz: random seed")
    parser.add_argument(
        "--root",
        default=None,
        help="faces: MEAD folder (default mead-video in $AVEMOTION_SHARED_DATA or ../shared/data); "
        "extract: RAVDESS folder (default ravdess-speech-16k there)",
    )
    parser.add_argument(
        "--workers", type=int, nargs="+", default=None, help="extract: worker counts (1 2)"
    )
    parser.add_argument("--clips", type=int, default=None, help="extract: clips (200)")
    parser.add_argument(
        "--encoder",
        default=None,
        help="extract: encoder directory (default: a seeded VGGish audio branch)",
    )
    parser.add_argument(
        "--weights", default=None, help="faces: the mini-Xception HDF5 (default ../shared/models)"
    )
    parser.add_argument(
        "--plot", default=None, metavar="PNG", help="pipeline: also draw the stage bar chart here"
    )
    parser.add_argument(
        "--seconds", type=float, default=None, help="turns: audio to stream (3600; --quick 300)"
    )
    parser.add_argument(
        "--run",
        default=None,
        help="turns: a trained audio run (default: the untrained default shape)",
    )
    parser.add_argument("--json", action="store_true", help="accepted for symmetry: output is JSON")
    parser.set_defaults(func=run)


OPTIONS = {
    "agents": ("steps", "features", "seed"),
    "env": ("quick",),
    "extract": ("workers", "clips", "root", "encoder"),
    "faces": ("root", "weights"),
    "fuzz": ("steps", "seed"),
    "pipeline": ("quick", "plot"),
    "turns": ("quick", "seconds", "seed", "run"),
}
"""The options each benchmark reads (``--json`` is accepted by all)."""

DEFAULTS = {"quick": False, "steps": None, "features": None, "seed": 0, "root": None}
DEFAULTS.update(weights=None, plot=None, workers=None, clips=None, encoder=None)
DEFAULTS.update(seconds=None, run=None)


def check_options(args: argparse.Namespace) -> None:
    """Refuse, in one line, an option the chosen benchmark would silently ignore."""
    for name, default in DEFAULTS.items():
        if getattr(args, name) != default and name not in OPTIONS[args.what]:
            flag = "--" + name.replace("_", "-")
            takes = ", ".join(f"--{o}" for o in OPTIONS[args.what])
            raise ValueError(f"{flag}: bench {args.what} does not read it (it reads {takes})")


def run(args: argparse.Namespace) -> int:
    check_options(args)
    if args.plot:  # before the minutes-long benchmark, not after it
        from avemotion.plotting import check_plot_suffix

        check_plot_suffix(args.plot)
    result, status = _run_benchmark(args)
    if args.what == "faces":
        _print_file_account(args, result)
    print(json.dumps(result), flush=True)
    if args.plot:  # after the result is out: a figure that fails cannot lose it
        from avemotion.benchmarks.pipeline_plot import plot_stages

        plot_stages(result, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return status


def _run_benchmark(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    """The chosen benchmark's result and the exit status (1: fuzz broke an invariant)."""
    if args.what == "env":
        from avemotion.benchmarks.env_speed import run_env_benchmark

        return run_env_benchmark(quick=args.quick), 0
    if args.what == "turns":
        from avemotion.benchmarks.turns import run_turns_benchmark

        seconds = args.seconds if args.seconds is not None else (300.0 if args.quick else 3600.0)
        if seconds <= 0:
            raise ValueError(f"--seconds: expected > 0, got {seconds}")
        return run_turns_benchmark(seconds, args.run, args.seed), 0
    if args.what == "pipeline":
        from avemotion.benchmarks.pipeline import run_pipeline_benchmark

        return run_pipeline_benchmark(quick=args.quick), 0
    if args.what == "agents":
        from avemotion.benchmarks.agents import bench_agents

        steps = _positive(args.steps, 50_000)
        return bench_agents(args.features, steps=steps, seed=args.seed), 0
    if args.what == "extract":
        from avemotion.benchmarks.extract_speed import run_extract_benchmark

        workers = args.workers or [1, 2]
        return run_extract_benchmark(workers, args.clips or 200, args.root, args.encoder), 0
    if args.what == "faces":
        from avemotion.benchmarks.faces import run_faces_benchmark
        from avemotion.encoders.mini_xception import default_weights_path
        from avemotion.shared import shared_data_root

        weights = args.weights or str(default_weights_path())
        root = args.root or str(shared_data_root() / "mead-video")
        return run_faces_benchmark(root, weights), 0
    from avemotion.benchmarks.fuzz import run_fuzz

    result = run_fuzz(steps=_positive(args.steps, 1_000_000), seed=args.seed)
    return result, 1 if result["violations"] else 0


def _print_file_account(args: argparse.Namespace, result: dict[str, Any]) -> None:
    """On stderr (stdout holds only the JSON), as extract prints it: the corpus's files seen
    = kept + skipped, then each skipped file with its reason."""
    from avemotion.encoders.corpus_files import summary_line

    print(summary_line(result["root"], result["files"]), file=sys.stderr)
    for line in result["skipped"]:
        print(f"  skipped {line}", file=sys.stderr)


def _positive(steps: int | None, default: int) -> int:
    if steps is None:
        return default
    if steps < 1:
        raise ValueError(f"--steps: expected a positive number, got {steps}")
    return steps
