"""The 8 classification sets aeon ships offline: our DQN against every other stopping rule.

For each set (ACSF1, ArrowHead, BasicMotions, GunPoint, ItalyPowerDemand, JapaneseVowels,
OSULeaf, PickupGestureWiimoteZ; read from the files inside the installed aeon package,
nothing is downloaded) two feature stores are built from the standard train/test splits
(one step = one time point, all channels; clip ids ``train-0001`` / ``test-0001``), as a
user would build them: the sets have no speakers, so every train series is under one
speaker ``train`` and every test series under ``test``; ``avemotion train`` then
cross-fits on stratified clip folds (:func:`avemotion.folds.make_folds`). Then, for every
seed:

- our DQN, as ``avemotion train --features TRAIN`` trains it with its defaults
  (:func:`avemotion.training.train.train`), evaluated on the test store with
  :func:`avemotion.evaluation.evaluate.evaluate_run` and ``baselines=True``: the threshold,
  fixed-fraction, consecutive and full-clip rules on the run's own posterior model
  (tuned on the training speakers' out-of-fold posteriors), and aeon's ProbabilityThreshold
  and TEASER over 1-NN fitted on the train store;
- aeon's ProbabilityThreshold and TEASER over MiniRocket (extra rows, ``--no-minirocket``
  leaves them out), classification points from 9 steps (MiniRocket's minimum).

Each run records the posterior model its defaults chose on the train store (``rules.json``:
``posterior`` and the ``selection`` scores), the folds it cross-fitted on, and every rule
left untuned (``rules.json`` ``untuned``, ``summary.json`` ``stop_tuning.untuned``); the
posterior is named in the table, the folds and untuned rules under it. Earliness is
measured against each series' true length. Finished (set, seed) pairs are skipped on a
re-run with the same ``--steps`` (a pair run with ``--no-minirocket`` gets only its
MiniRocket rows added). The table (``etsc_benchmark.md``), ``results.json`` and
the plot are written from every finished pair (``--report-only``: from those alone,
training nothing and naming the pairs left out).

    python experiments/etsc_benchmark.py --out results/etsc-benchmark
    python experiments/etsc_benchmark.py --quick --out /tmp/etsc   # a smoke test

``--quick`` only fills what is not given: ``--sets``, ``--seeds`` and ``--steps`` given with
it are kept (it always leaves MiniRocket out).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from avemotion.atomic import write_json_atomic
from avemotion.stopping.aeon import aeon_available
from avemotion.store import FeatureStore
from avemotion.training.train import DEFAULT_STEPS

SETS = {
    "ACSF1": "load_acsf1",
    "ArrowHead": "load_arrow_head",
    "BasicMotions": "load_basic_motions",
    "GunPoint": "load_gunpoint",
    "ItalyPowerDemand": "load_italy_power_demand",
    "JapaneseVowels": "load_japanese_vowels",
    "OSULeaf": "load_osuleaf",
    "PickupGestureWiimoteZ": "load_pickup_gesture_wiimoteZ",
}
RULES = ("threshold", "fixed_fraction", "consecutive")
AEON = (
    "aeon_probability_threshold",
    "aeon_teaser",
    "aeon_probability_threshold_minirocket",
    "aeon_teaser_minirocket",
)
QUICK_SETS = ("ItalyPowerDemand", "GunPoint")
MINIROCKET_MIN_POINT = 9


def load_split(name: str, split: str) -> tuple[list[np.ndarray], np.ndarray]:
    """``([T_i, d] float32 arrays, raw labels)`` of one split, from aeon's shipped files."""
    import aeon.datasets as datasets

    with warnings.catch_warnings():  # ACSF1 and OSULeaf loaders are deprecated, still shipped
        warnings.simplefilter("ignore", FutureWarning)
        x, y = getattr(datasets, SETS[name])(split=split)
    return [np.asarray(series, dtype=np.float32).T for series in x], np.asarray(y).astype(str)


def class_order(labels: np.ndarray) -> list[str]:
    """Distinct labels, numerically when they all are integers."""
    names = sorted(set(labels.tolist()))
    return sorted(names, key=int) if all(n.lstrip("-").isdigit() for n in names) else names


def build_stores(name: str, root: Path) -> tuple[FeatureStore, FeatureStore]:
    """The train and test stores of set ``name`` (written once under ``root``), each under
    one speaker named after its split. The classes are the train split's, also when its
    store was written by an earlier (killed) run."""
    stores: list[FeatureStore] = []
    classes: list[str] | None = None
    for split in ("train", "test"):
        path = root / f"{name}-{split}"
        if (path / "meta.json").is_file():
            stores.append(FeatureStore.open(path))
            classes = classes or list(stores[-1].class_names)
            if stores[-1].speaker_set != [split]:
                raise ValueError(
                    f"{path}: speakers: {stores[-1].speaker_set}, expected [{split!r}] "
                    "(written by an older version of this script; remove it)"
                )
            continue
        sequences, raw = load_split(name, split.upper())
        classes = classes or class_order(raw)
        unknown = sorted(set(raw.tolist()) - set(classes))
        if unknown:
            raise ValueError(f"{name} {split}: labels {unknown} are not in the train split")
        meta = {"corpus": f"{name} (aeon)", "modality": "series", "steps_per_second": 1.0}
        stores.append(
            FeatureStore.create(
                path,
                sequences,
                [classes.index(label) for label in raw],
                [split] * len(sequences),
                classes,
                clip_ids=[f"{split}-{i + 1:04d}" for i in range(len(sequences))],
                meta=meta,
            )
        )
    return stores[0], stores[1]


def minirocket_rows(train: FeatureStore, test: FeatureStore, seed: int) -> dict[str, Any]:
    """aeon's ProbabilityThreshold and TEASER over MiniRocket (its defaults), fitted on
    ``train`` and reported on ``test``."""
    from aeon.classification.convolution_based import MiniRocketClassifier
    from aeon.classification.early_classification import TEASER, ProbabilityThresholdEarlyClassifier

    from avemotion.stopping.aeon import classification_points, fit_and_report, padded_panel

    length = int(max(train.lengths.max(), test.lengths.max(), MINIROCKET_MIN_POINT))
    points = [p for p in classification_points(length) if p >= MINIROCKET_MIN_POINT] or [length]
    x_train, x_test = padded_panel(train, length), padded_panel(test, length)
    reports = {}
    for name, kind in zip(AEON[2:], (ProbabilityThresholdEarlyClassifier, TEASER)):
        estimator = MiniRocketClassifier(random_state=seed)
        classifier = kind(estimator=estimator, classification_points=points, random_state=seed)
        reports[name] = fit_and_report(
            classifier, (x_train, x_test), train, test, points, "MiniRocket"
        )
    return reports


def run_seed(name: str, seed: int, steps: int, out: Path, minirocket: bool) -> dict[str, Any]:
    """Train our DQN on set ``name`` with ``seed`` and report every row on its test store."""
    from avemotion.evaluation.evaluate import evaluate_run
    from avemotion.training.run_dir import read_summary
    from avemotion.training.train import train

    train_store, test_store = build_stores(name, out / "stores")
    run = train(
        "dqn",
        train_store,
        steps,
        seed,
        out / name / f"run-seed{seed}",
        overwrite=True,
        progress=False,
    )
    result = evaluate_run(run, test_store, baselines=True)
    rows = {"dqn": {k: v for k, v in result.items() if k not in ("baselines", "baseline_curves")}}
    rows.update(result["baselines"])
    if minirocket:
        rows.update(minirocket_rows(train_store, test_store, seed))
    rules = json.loads((run / "rules.json").read_text())
    posterior = {"name": rules.get("posterior"), "selection": rules.get("selection", {})}
    training = read_summary(run)
    untuned = list(rules.get("untuned", []))
    if (training.get("stop_tuning") or {}).get("untuned"):
        untuned.append("wait bias")
    return {
        "set": name,
        "seed": seed,
        "steps": steps,
        "speakers": 1,
        "posterior": posterior,
        "folds": {"kind": rules["folds"]["kind"], "n": len(rules["folds"]["members"])},
        "untuned": untuned,
        "training": training,
        "rows": rows,
    }


def hm(rows: dict[str, Any], name: str) -> float | None:
    return float(rows[name]["harmonic_mean"]) if name in rows else None


def summarise(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per set: mean and std over seeds of every row's HM, the best aeon row (by mean)."""
    summary: dict[str, Any] = {}
    for name, entry in results.items():
        seeds = list(entry["seeds"].values())
        if not seeds:
            continue
        names = sorted({row for seed in seeds for row in seed["rows"]})
        stats = {}
        for row in names:
            values = [v for v in (hm(seed["rows"], row) for seed in seeds) if v is not None]
            stats[row] = {
                "mean": float(np.mean(values)),
                "std": float(np.std(values)),
                "n": len(values),
            }
        aeon = [row for row in AEON if row in stats]
        best = max(aeon, key=lambda row: stats[row]["mean"]) if aeon else None
        chosen = sorted({str(seed.get("posterior", {}).get("name")) for seed in seeds})
        folds = sorted({f"{s['folds']['n']} {s['folds']['kind']}" for s in seeds if "folds" in s})
        untuned = sorted(
            {f"{rule} (seed {s['seed']})" for s in seeds for rule in s.get("untuned", [])}
        )
        summary[name] = {
            "hm": stats,
            "best_aeon": best,
            "seeds": len(seeds),
            "posterior": chosen,
            "folds": folds,
            "untuned": untuned,
        }
    return summary


def cell(stats: dict[str, Any], row: str | None) -> str:
    if row is None or row not in stats:
        return "–"
    value = stats[row]
    return (
        f"{value['mean']:.3f}" if value["n"] == 1 else f"{value['mean']:.3f} ± {value['std']:.3f}"
    )


def markdown(summary: dict[str, Any], steps: int) -> str:
    """One table: per set our DQN, the run's rules and the best aeon row (HM mean ± std
    over seeds), the posterior model chosen; a mean row and our DQN's wins."""
    head = "| set | posterior | our DQN | threshold | fixed fraction | consecutive | best aeon |"
    lines = [head, "|" + "---|" * 7]
    means: dict[str, list[float]] = {}
    wins = 0
    for name, entry in summary.items():
        stats, best = entry["hm"], entry["best_aeon"]
        row = [name, ", ".join(entry["posterior"]), *(cell(stats, r) for r in ("dqn", *RULES))]
        row.append(f"{cell(stats, best)} ({best.removeprefix('aeon_')})" if best else "–")
        lines.append("| " + " | ".join(row) + " |")
        for key, r in (("dqn", "dqn"), *((r, r) for r in RULES), ("best_aeon", best)):
            if r in stats:
                means.setdefault(key, []).append(stats[r]["mean"])
        wins += bool(best and "dqn" in stats and stats["dqn"]["mean"] > stats[best]["mean"])
    mean_row = ["**mean**", ""] + [
        f"**{np.mean(means[k]):.3f}**" if k in means else "–" for k in ("dqn", *RULES, "best_aeon")
    ]
    lines.append("| " + " | ".join(mean_row) + " |")
    n_seeds = max((e["seeds"] for e in summary.values()), default=0)
    folds = "; ".join(f"{n} {', '.join(e['folds'])}" for n, e in summary.items() if e.get("folds"))
    untuned = [f"{n}: {', '.join(e['untuned'])}" for n, e in summary.items() if e.get("untuned")]
    return (
        "\n".join(lines)
        + "\n\nHarmonic mean of accuracy and earliness on each test split, mean ± std over "
        f"{n_seeds} seed(s); our DQN {steps} env steps. Our DQN beats the best aeon row on "
        f"{wins} of {len(summary)} sets.\n"
        + (f"\nCross-fitting folds: {folds}.\n" if folds else "")
        + f"\nRules left untuned (each printed by `avemotion train`): {'; '.join(untuned) or 'none'}.\n"
    )


def plot(summary: dict[str, Any], path: Path) -> None:
    """Bars per set: our DQN and the best aeon row, each ± std over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.0 * len(names)), 3.6))
    for k, label in enumerate(("our DQN", "best aeon")):
        stats = [
            summary[n]["hm"].get("dqn" if k == 0 else summary[n]["best_aeon"] or "", {})
            for n in names
        ]
        ax.bar(
            x + (k - 0.5) * 0.38,
            [s.get("mean", 0.0) for s in stats],
            0.38,
            yerr=[s.get("std", 0.0) for s in stats],
            label=label,
        )
    ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("harmonic mean (test)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, ncol=2, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="results/etsc-benchmark")
    parser.add_argument(
        "--sets",
        nargs="+",
        choices=list(SETS),
        metavar="SET",
        help=f"default: all 8 (with --quick: {' '.join(QUICK_SETS)})",
    )
    parser.add_argument(
        "--steps",
        type=int,
        help="our DQN's env steps per run (default: as `avemotion train`; with --quick: 300)",
    )
    parser.add_argument("--seeds", type=int, help="seeds 0..N-1 (default: 3; with --quick: 1)")
    parser.add_argument("--no-minirocket", dest="minirocket", action="store_false")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: write the table and plot from the finished pairs, naming the others",
    )
    parser.add_argument("--plot", default="docs/etsc_benchmark.png", help="PNG path ('' for none)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: no MiniRocket and, unless given, 2 small sets, 1 seed, 300 steps",
    )
    args = parser.parse_args(argv)
    if args.sets is None:  # --quick fills only what is not given, never overrides it
        args.sets = list(QUICK_SETS) if args.quick else list(SETS)
    if args.steps is None:
        args.steps = 300 if args.quick else DEFAULT_STEPS
    if args.seeds is None:
        args.seeds = 1 if args.quick else 3
    if args.quick:
        args.minirocket = False
    if args.steps < 1 or args.seeds < 1:
        parser.error("--steps and --seeds: expected positive integers")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if not aeon_available():
        print(
            "aeon is not installed: the 8 sets ship inside it (pip install aeon)", file=sys.stderr
        )
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    for name in args.sets:
        (out / name).mkdir(parents=True, exist_ok=True)
        results[name] = {"seeds": {}}
        for seed in range(args.seeds):
            path = out / name / f"seed{seed}.json"
            done = json.loads(path.read_text()) if path.is_file() else {}
            # a pair of an older version (4 round-robin speakers, no "speakers") is rerun
            finished = (done.get("steps"), done.get("speakers")) == (args.steps, 1)
            if args.report_only and not finished:
                print(f"[{name} seed {seed}] not finished: left out of the table", flush=True)
                continue
            if finished:
                if args.minirocket and not set(AEON[2:]) <= done["rows"].keys():
                    print(f"[{name} seed {seed}] done before: adding aeon over MiniRocket")
                    stores = build_stores(name, out / "stores")
                    done["rows"].update(minirocket_rows(*stores, seed))
                    write_json_atomic(path, done)
                else:
                    print(f"[{name} seed {seed}] done before: skipped", flush=True)
            else:
                print(f"[{name} seed {seed}] training our DQN ({args.steps} env steps)", flush=True)
                started = time.perf_counter()
                result = run_seed(name, seed, args.steps, out, args.minirocket)
                write_json_atomic(path, result)
                print(f"[{name} seed {seed}] {time.perf_counter() - started:.0f} s", flush=True)
            result = json.loads(path.read_text())
            results[name]["seeds"][str(seed)] = result
            print(f"[{name} seed {seed}] posterior: {result['posterior']['name']}", flush=True)
            shown = ", ".join(
                f"{k} {v['harmonic_mean']:.3f}"
                for k, v in result["rows"].items()
                if k != "full_clip"
            )
            print(f"[{name} seed {seed}] HM: {shown}", flush=True)
    summary = summarise(results)
    record = {"steps": args.steps, "summary": summary, "results": results}
    write_json_atomic(out / "results.json", record)
    table = markdown(summary, args.steps)
    (out / "etsc_benchmark.md").write_text(table)
    if args.plot:
        plot(summary, Path(args.plot))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
