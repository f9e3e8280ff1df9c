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

Every input (folds, seeds, budget, each job's options) is checked before anything is
written. ``--set`` holds options of our DQN: it applies to the ``dqn*`` jobs (the curve runs
too) and is refused when no job trains our DQN.

Layout of OUT (resumable: a fold/seed/agent whose ``eval.json`` exists is skipped)::

    OUT/<speaker>/seed<s>/<agent>/          a run directory + eval.json
    OUT/<speaker>/seed<s>/dqn-ew<w>/        curve runs of our DQN (--earliness-weights)
    OUT/<speaker>/seed<s>/dqn-wait<c>/      curve runs on the "signed" reward (--wait-costs)
    OUT/<speaker>/seed<s>/baselines.json    the rules' reports + threshold/fraction curves

Each ``eval.json`` records its job's ``settings`` (agent, steps, seed, fold, the store's
digest, the agent config its options make). A finished one is reused only when they equal
the job asked for now (one written before they were recorded is refused: its settings would
be a guess); otherwise the run is refused in one line naming the file and the field, as it is when ``OUT/experiment.json`` holds another ``--steps``, ``--set``,
``--no-aeon`` or store: results of other settings are never pooled in one OUT.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avemotion.atomic import write_json_atomic
from avemotion.envs.core import resolve_store
from avemotion.evaluation.evaluate import evaluate_run
from avemotion.evaluation.report import refuse_difference
from avemotion.training.options import agent_configuration, check_data
from avemotion.training.run_dir import read_summary, store_digest
from avemotion.training.train import AGENTS, DEFAULT_STEPS, train

ALL_AGENTS = (
    "dqn",
    "sb3-dqn",
    "sb3-ppo",
    "sb3-a2c",
    "sb3-qrdqn",
    "sb3-recurrent-ppo",
    "sb3-maskable-ppo",
)
SETTINGS = ("agent", "steps", "seed", "fold", "store_digest", "agent_config")
"""What a finished ``eval.json`` must share with the job asked for to be reused."""
EXPERIMENT = ("steps", "dqn_options", "store_digest", "no_aeon")
"""What ``OUT/experiment.json`` must share with this run (``store`` for one written before
the digest was recorded; ``no_aeon``: whether the folds' baselines hold aeon's rules)."""
Job = tuple[str, str, dict, tuple | None]
"""(name, agent, curve options, (curve parameter, value) or None)."""


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


def fold_jobs(args: argparse.Namespace) -> list[Job]:
    """The jobs of every (held-out speaker, seed), in order (the first one's run also
    gives the fold's baselines)."""
    jobs: list[Job] = [(agent, agent, {}, None) for agent in args.agents]
    jobs += [
        (f"dqn-wait{c:g}", "dqn", {"reward": "signed", "wait_cost": c}, ("wait cost", c))
        for c in args.wait_costs
    ]
    jobs += [
        (f"dqn-ew{w:g}", "dqn", {"earliness_weight": w, "tune_wait_bias": False}, ("w", w))
        for w in args.earliness_weights
    ]
    return jobs


def job_options(agent: str, dqn_options: dict, curve_options: dict) -> dict:
    """A job's options: ``--set`` for our DQN's jobs, then its curve's."""
    return {**(dqn_options if agent.startswith("dqn") else {}), **curve_options}


def finished(seed_dir: Path, i: int, name: str) -> bool:
    """Whether job ``i`` of a (fold, seed) is done: its eval.json (the first job's also
    needs the fold's baselines.json)."""
    done = (seed_dir / name / "eval.json").is_file()
    return done and (i > 0 or (seed_dir / "baselines.json").is_file())


def normal(value):
    """``value`` as JSON reads it back (tuples become lists), to compare with a file."""
    return json.loads(json.dumps(value))


def plan(args: argparse.Namespace, store) -> tuple[list[str], dict, dict]:
    """Check every input before anything is written; return the folds, our DQN's options
    and each (fold, seed, job name)'s settings. Each refusal is one line naming the option."""
    from avemotion.cli.train import parse_options

    speakers = list(store.speaker_set)
    folds = list(args.folds) if args.folds is not None else speakers
    unknown = [fold for fold in folds if fold not in speakers]
    if unknown:
        raise ValueError(f"--folds: {unknown} not speakers of {store.path} (its: {speakers})")
    if len(speakers) < 2:
        raise ValueError(f"{store.path}: one speaker ({speakers}); nothing to train on")
    if any(seed < 0 for seed in args.seeds):
        raise ValueError(f"--seeds: expected integers >= 0, got {args.seeds}")
    if args.steps < 1:
        raise ValueError(f"--steps: expected a positive integer, got {args.steps}")
    jobs = fold_jobs(args)
    for flag, values in (
        ("--folds", folds),
        ("--seeds", args.seeds),
        ("jobs", [j[0] for j in jobs]),
    ):
        if len(set(values)) < len(values):
            raise ValueError(f"{flag}: {values} names one twice")
    dqn_options = parse_options(args.set)
    if dqn_options and not any(agent.startswith("dqn") for _, agent, _, _ in jobs):
        raise ValueError(
            f"--set: options of our DQN, and no job trains it (--agents {' '.join(args.agents)}, "
            "no --wait-costs or --earliness-weights)"
        )
    training = store.subset(exclude_speakers=[folds[0]])  # every fold trains on all but one
    digest, settings = store_digest(store), {}
    for name, agent, curve_options, _ in jobs:
        options = job_options(agent, dqn_options, curve_options)
        try:
            _, agent_config = agent_configuration(agent, dict(options), False)
            check_data(training, "auto", options, options)
        except ValueError as error:
            raise ValueError(f"job {name} ({agent}): {error}") from None
        for speaker in folds:
            for seed in args.seeds:
                settings[(speaker, seed, name)] = {
                    "agent": agent,
                    "steps": int(args.steps),
                    "seed": int(seed),
                    "fold": speaker,
                    "store": str(store.path),
                    "store_digest": digest,
                    "agent_config": normal(agent_config),
                }
    return folds, dqn_options, settings


def recorded_settings(eval_path: Path) -> dict:
    """The settings a finished job's eval.json records; one written before loso.py recorded
    them is refused (its settings would be a guess)."""
    try:
        result = json.loads(eval_path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{eval_path}: unreadable JSON ({error})") from None
    if "settings" not in result:
        raise ValueError(
            f"{eval_path}: settings: not recorded (written before loso.py recorded them); "
            "use another --out, or remove that result"
        )
    return result["settings"]


def check_experiment(out: Path, record: dict) -> None:
    """Refuse to add to ``OUT`` when its experiment.json holds other steps, --set options
    or store (compare.py pools every fold under OUT)."""
    from avemotion.cli.train import parse_options

    path = out / "experiment.json"
    if not path.is_file():
        return
    try:
        previous = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: unreadable JSON ({error})") from None
    fields = EXPERIMENT
    if "store_digest" not in previous:  # written before loso recorded them
        fields = ("steps", "dqn_options", "store")
        try:
            previous["dqn_options"] = parse_options(previous.get("set") or [])
        except ValueError:
            previous["dqn_options"] = previous.get("set")
    refuse_difference(path, previous, normal(record), fields)


def run_fold(
    args: argparse.Namespace, store, speaker: str, seed: int, dqn_options: dict, settings: dict
) -> None:
    """Train and evaluate every job of one (held-out speaker, seed) not finished yet."""
    seed_dir = Path(args.out) / speaker / f"seed{seed}"
    seed_dir.mkdir(parents=True, exist_ok=True)
    for i, (name, agent, curve_options, curve) in enumerate(fold_jobs(args)):
        eval_path = seed_dir / name / "eval.json"
        baselines_path = seed_dir / "baselines.json"
        if finished(seed_dir, i, name):
            continue  # main checked its settings
        options = job_options(agent, dqn_options, curve_options)
        run = train(
            agent,
            store,
            args.steps,
            seed,
            seed_dir / name,
            exclude_speakers=[speaker],
            overwrite=True,
            progress=False,
            **options,
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
        result["settings"] = settings[(speaker, seed, name)]
        if name == "dqn":
            result["bias_sweep"] = dqn_bias_sweep(run, store.subset(speakers=[speaker]))
        if curve is not None:
            result["curve"] = {"parameter": curve[0], "value": curve[1]}
        write_json_atomic(eval_path, result)


def dqn_bias_sweep(run: Path, test) -> list[dict[str, float]]:
    """Our DQN's accuracy-vs-earliness curve on the held-out clips: its greedy policy with
    the wait bias swept (the tuned bias is one point of it), as the baselines' θ and x are
    swept."""
    from avemotion.agents.dqn.stop_tuning import bias_sweep
    from avemotion.envs.core import ObservationLayout
    from avemotion.evaluation.evaluate import posterior_inputs
    from avemotion.training.run_dir import load_agent, read_run_config

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
    try:
        return run(args)
    except (ValueError, FileNotFoundError, FileExistsError) as error:  # StoreError is one
        print(f"loso: error: {error}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    """Check everything (inputs, OUT's earlier results), then run every fold x seed."""
    out, store = Path(args.out), resolve_store(args.features)
    folds, dqn_options, settings = plan(args, store)
    digest = store_digest(store)
    record = {
        "steps": args.steps,
        "dqn_options": dqn_options,
        "store_digest": digest,
        "no_aeon": bool(args.no_aeon),
    }
    check_experiment(out, {**record, "store": str(store.path)})
    for i, (name, *_) in enumerate(fold_jobs(args)):
        for speaker in folds:
            for seed in args.seeds:
                seed_dir = out / speaker / f"seed{seed}"
                if finished(seed_dir, i, name):
                    asked = settings[(speaker, seed, name)]
                    recorded = recorded_settings(seed_dir / name / "eval.json")
                    refuse_difference(seed_dir / name / "eval.json", recorded, asked, SETTINGS)
    out.mkdir(parents=True, exist_ok=True)  # every check is done: now write
    experiment = {**vars(args), **record, "folds": folds, "store": str(store.path)}
    write_json_atomic(out / "experiment.json", experiment)
    start = time.perf_counter()
    pairs = [(speaker, seed) for speaker in folds for seed in args.seeds]
    for speaker, seed in tqdm(pairs, desc="folds x seeds", unit="fold"):
        run_fold(args, store, speaker, seed, dqn_options, settings)
    print(
        f"{len(folds)} folds x {len(args.seeds)} seeds in {time.perf_counter() - start:.0f} s -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
