"""Compare the methods of a leave-one-speaker-out experiment: Markdown table, CSV and plots.

    python experiments/compare.py results/loso-synthetic

Writes into that directory: ``comparison.md``, ``comparison.csv``, ``wins.json``,
``missing.json`` (every (fold, seed, method) result not found, with the reason; also listed
under the table), ``confusion_matrices.png`` (summed over folds and seeds, rows normalised),
``accuracy_vs_earliness.png`` (our DQN's wait-bias sweep and curve runs, the threshold and
fixed-fraction sweeps) and ``training_curves.png``.

For each seed, accuracy and earliness are pooled over every held-out clip of every fold and
HM is computed from them; the table shows their mean ± std over seeds, and the mean ± std
of the per-fold HM over all (fold, seed) pairs. ``wins.json`` and the note under the table
hold the paired per-fold comparison of our DQN with the best other stopping rule: for each
fold, the mean HM over seeds of each.

Results of one method recorded under other settings (steps, store, agent config; see
:data:`POOLED`) are refused in one line before anything is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from avemotion.evaluation.plots import (  # noqa: E402
    plot_confusion_matrices,
    plot_training_curves,
)
from avemotion.evaluation.report import (  # noqa: E402
    check_pooled,
    wins_against_best,
    write_comparison,
)
from avemotion.metrics import harmonic_mean  # noqa: E402

METRICS = (
    "accuracy",
    "earliness",
    "harmonic_mean",
    "fold_hm",
    "mean_decision_s",
    "env_steps_per_s",
)
NOT_RULES = ("full_clip",)
"""Rows that are no stopping rule (for the paired comparison)."""
SAME_POSTERIOR = "same posterior"
POOLED = ("agent", "steps", "store_digest", "agent_config")
"""What every result of one method must share to be pooled: the ``settings`` its
``eval.json`` records (experiments/loso.py writes them)."""
WHERE = ("fold", "seed")
"""What a result's directory fixes, and its settings must name alike."""
Report = dict[str, Any]
"""A method's result on a (fold, seed), with ``kind``, ``fold``, ``seed`` (agents: ``run_dir``)."""
Methods = dict[str, list[Report]]
Table = dict[str, dict[str, Any]]
"""Per method: :func:`aggregate` of its reports."""
Missing = list[dict[str, Any]]
Sweep = dict[float, list[tuple[float, float, int]]]
"""Per parameter value of a sweep: (earliness, accuracy, clips) of each (fold, seed)."""


def kind_of(name: str) -> str:
    """What a row reads: the run's posterior model, or (named apart) something else."""
    if name.startswith("aeon"):
        return "own posterior (1-NN on raw prefixes)"
    if name.startswith("sb3"):
        return "raw store"
    return SAME_POSTERIOR


def fold_dirs(root: Path, folds: list[str] | None) -> list[Path]:
    """The fold directories under ``root`` (only ``folds`` if given), by name."""
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such directory (the --out of experiments/loso.py)")
    dirs = sorted(p for p in root.iterdir() if p.is_dir())
    return [fold for fold in dirs if folds is None or fold.name in folds]


def collect(root: Path, folds: list[str] | None = None) -> Methods:
    """Per-method lists of (fold, seed) reports: agents' eval.json and baselines.json entries."""
    methods: Methods = defaultdict(list)
    for fold in fold_dirs(root, folds):
        for seed_dir in sorted(fold.glob("seed*")):
            where = {"fold": fold.name, "seed": int(seed_dir.name[len("seed") :])}
            for eval_path in sorted(seed_dir.glob("*/eval.json")):
                name = eval_path.parent.name
                run = {"kind": kind_of(name), "run_dir": str(eval_path.parent)}
                methods[name].append({**json.loads(eval_path.read_text()), **run, **where})
            baselines = seed_dir / "baselines.json"
            if baselines.is_file():
                for name, report in json.loads(baselines.read_text())["reports"].items():
                    methods[name].append({**report, "kind": kind_of(name), **where})
    if not methods:
        raise FileNotFoundError(f"{root}: no fold results (run experiments/loso.py first)")
    return methods


def check_settings(methods: Methods) -> int:
    """Refuse, in one line naming the file and the field, to pool results of one method
    recorded under other settings (:data:`POOLED`), or lying in another fold or seed
    directory than their settings name (:func:`~avemotion.evaluation.report.check_pooled`).
    Returns how many results record no settings (written before loso.py recorded them).
    The rules' rows come from the first agent's run of each (fold, seed), so checking the
    agents checks them."""
    return sum(
        check_pooled(
            [
                (Path(r["run_dir"]) / "eval.json", r.get("settings"), {k: r[k] for k in WHERE})
                for r in reports
                if "run_dir" in r
            ],
            POOLED,
        )
        for reports in methods.values()
    )


def missing_results(root: Path, methods: Methods, folds: list[str] | None = None) -> Missing:
    """Every (fold, seed, method) the table lacks, with the reason: a requested fold or a
    seed directory that does not exist, a run directory without ``eval.json`` (unfinished or
    failed) or missing, a ``baselines.json`` missing or without that rule. Seeds are those
    of any fold; agents are the run directories (with or without ``eval.json``) of any seed,
    rules the entries of any ``baselines.json``."""
    present = fold_dirs(root, folds)
    seed_dirs = {fold.name: sorted(d for d in fold.glob("seed*") if d.is_dir()) for fold in present}
    seeds = sorted({int(d.name[len("seed") :]) for dirs in seed_dirs.values() for d in dirs})
    agents = {Path(r["run_dir"]).name for rs in methods.values() for r in rs if "run_dir" in r}
    agents |= {
        p.name for dirs in seed_dirs.values() for d in dirs for p in d.iterdir() if p.is_dir()
    }
    rules = sorted(set(methods) - agents)
    every = sorted(agents) + rules
    found: Missing = []

    def add(fold: str, seed: int | None, method: str, reason: str) -> None:
        found.append({"fold": fold, "seed": seed, "method": method, "reason": reason})

    for fold in sorted(set(folds or ()) - {f.name for f in present}):
        add(fold, None, "*", f"no fold directory {root / fold}")
    for fold in present:
        if not seed_dirs[fold.name]:
            add(fold.name, None, "*", f"{fold}: no seed* directory (not a fold of loso.py?)")
            continue
        for seed in seeds:
            seed_dir = fold / f"seed{seed}"
            if not seed_dir.is_dir():
                for method in every:
                    add(fold.name, seed, method, f"no seed directory {seed_dir}")
                continue
            for method in sorted(agents):
                run = seed_dir / method
                if not run.is_dir():
                    add(fold.name, seed, method, f"no run directory {run}")
                elif not (run / "eval.json").is_file():
                    add(fold.name, seed, method, f"{run}: no eval.json (unfinished or failed run)")
            baselines = seed_dir / "baselines.json"
            reports = json.loads(baselines.read_text())["reports"] if baselines.is_file() else None
            for method in rules:
                if reports is None:
                    add(fold.name, seed, method, f"no {baselines}")
                elif method not in reports:
                    add(fold.name, seed, method, f"not in {baselines}")
    return found


def missing_lines(missing: Missing) -> list[str]:
    """One line per missing (fold, seed, method): ``fold P3, seed 1, dqn: reason``."""
    return [
        f"fold {m['fold']}, "
        + (f"seed {m['seed']}, " if m["seed"] is not None else "every seed, ")
        + ("every method" if m["method"] == "*" else m["method"])
        + f": {m['reason']}"
        for m in missing
    ]


def pool(reports: list[Report]) -> tuple[float, float, float]:
    """Clip-weighted accuracy and earliness of some fold reports, and the HM of those."""
    n = np.array([r["n_clips"] for r in reports], dtype=float)
    accuracy = float(np.average([r["accuracy"] for r in reports], weights=n))
    earliness = float(np.average([r["earliness"] for r in reports], weights=n))
    return accuracy, earliness, harmonic_mean(accuracy, earliness)


def aggregate(reports: list[Report]) -> dict[str, Any]:
    """Per seed: pooled over folds; then mean ± std over seeds (fold HM: over fold × seed)."""
    seeds = sorted({r["seed"] for r in reports})
    per_seed = np.array([pool([r for r in reports if r["seed"] == s]) for s in seeds])
    fold_hm = np.array([r["harmonic_mean"] for r in reports])
    rates = [r["training"]["env_steps_per_s"] for r in reports if "training" in r]
    n = np.array([r["n_clips"] for r in reports], dtype=float)
    decision = float(np.average([r["mean_decision_s"] for r in reports], weights=n))
    speed = (float(np.mean(rates)), float(np.std(rates))) if rates else (float("nan"),) * 2
    row: dict[str, Any] = {
        "folds": len({r["fold"] for r in reports}),
        "seeds": len(seeds),
        "n_clips": int(n.sum() / len(seeds)),
        "confusion_matrix": np.sum([np.array(r["confusion_matrix"]) for r in reports], axis=0),
        "class_names": reports[0]["class_names"],
        "mean_decision_s": (decision, float("nan")),
        "env_steps_per_s": speed,
        "fold_hm": (float(fold_hm.mean()), float(fold_hm.std())),
    }
    for i, name in enumerate(("accuracy", "earliness", "harmonic_mean")):
        row[name] = (float(per_seed[:, i].mean()), float(per_seed[:, i].std()))
    return row


def compare_to_best(methods: Methods, table: Table, ours: str = "dqn") -> dict[str, Any] | None:
    """Paired per-fold HM (mean over seeds) of ``ours`` against the best other stopping
    rule by the table's mean HM."""
    others = [m for m in table if m != ours and m not in NOT_RULES and not m.startswith("dqn-")]
    if ours not in methods or not others:
        return None
    best = max(others, key=lambda m: table[m]["harmonic_mean"][0])
    entries = [{**r, "method": m} for m in (ours, best) for r in methods[m]]
    wins = wins_against_best(entries, ours, best=best)
    if wins is not None:  # this file's names for the per-fold values
        wins["ours_hm"], wins["best_other_hm"] = (
            wins.pop("ours_values"),
            wins.pop("best_other_values"),
        )
    return wins


def write_tables(
    out: Path,
    table: Table,
    kinds: dict[str, str],
    wins: dict[str, Any] | None,
    missing: Missing | None = None,
) -> None:
    """``comparison.md`` / ``comparison.csv`` through the writer the sweep uses too."""
    rows = []
    for m in sorted(table, key=lambda m: -table[m]["harmonic_mean"][0]):
        t = table[m]
        row: dict[str, Any] = {
            "method": m,
            "kind": kinds[m],
            "n_folds": t["folds"],
            "n_seeds": t["seeds"],
            "n_clips": t["n_clips"],
        }
        for c in METRICS:
            row[f"{c}_mean"], row[f"{c}_std"] = t[c]
        rows.append(row)
    folds = max(t["folds"] for t in table.values())
    seeds = max(t["seeds"] for t in table.values())
    note = (
        f"{folds} held-out speaker folds x {seeds} seeds; accuracy, earliness and HM pooled "
        "over the clips of every fold, mean ± std over seeds; fold_hm: mean ± std over "
        "(fold, seed). Every row reads the same posterior model and trains on the same reward."
    )
    if wins is not None:
        note += (
            f"\n\nPaired per-fold HM (mean over seeds), {wins['ours']} vs {wins['best_other']}: "
            f"{wins['wins']} wins, {wins['ties']} ties, {wins['losses']} losses over "
            f"{len(wins['folds'])} folds."
        )
    if missing:
        note += (
            f"\n\nNot in the table ({len(missing)} missing fold/seed/method result(s); "
            "also in missing.json):\n\n" + "\n".join(f"- {line}" for line in missing_lines(missing))
        )
    write_comparison(rows, out / "comparison", metrics=METRICS, note=note)


def title(method: str, row: dict[str, Any]) -> str:
    """A confusion matrix's title: the method, its accuracy and earliness."""
    return f"{method}\nacc {row['accuracy'][0]:.2f}, earliness {row['earliness'][0]:.2f}"


def pooled_curve(sweep: Sweep) -> tuple[list[float], list[float]]:
    """A sweep's earliness and accuracy at each parameter value in order, clip-weighted."""
    points = [np.array(sweep[value]) for value in sorted(sweep)]
    earliness = [np.average(p[:, 0], weights=p[:, 2]) for p in points]
    return earliness, [np.average(p[:, 1], weights=p[:, 2]) for p in points]


def rule_sweeps(root: Path, folds: list[str] | None) -> dict[str, Sweep]:
    """Each stopping rule's sweep over its parameter (the ``curves`` of every baselines.json)."""
    sweeps: dict[str, Sweep] = defaultdict(lambda: defaultdict(list))
    for fold in fold_dirs(root, folds):
        for path in sorted(fold.glob("seed*/baselines.json")):
            data = json.loads(path.read_text())
            n = data["reports"]["threshold"]["n_clips"]
            for name, points in data["curves"].items():
                for p in points:
                    sweeps[name][p["parameter"]].append((p["earliness"], p["accuracy"], n))
    return sweeps


def plot_curves(
    out: Path, methods: Methods, table: Table, root: Path, folds: list[str] | None = None
) -> None:
    """``accuracy_vs_earliness.png``: our DQN's sweeps, the stopping rules' sweeps, the rest."""
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    runs: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for m, reports in methods.items():
        curve = reports[0].get("curve")
        if curve is not None:
            point = (curve["value"], table[m]["earliness"][0], table[m]["accuracy"][0])
            runs[curve["parameter"]].append(point)
    levels: Sweep = defaultdict(list)
    for report in methods.get("dqn", []):
        for p in report.get("bias_sweep", []):
            levels[p["level"]].append((p["earliness"], p["accuracy"], report["n_clips"]))
    if levels:
        ax.plot(*pooled_curve(levels), "-", label="our DQN (wait-bias sweep)")
    for parameter, points in runs.items():
        _, e, a = zip(*sorted(points, key=lambda p: p[1]))
        ax.plot(e, a, "o-", label=f"our DQN ({parameter} sweep)")
        for c, ei, ai in points:
            ax.annotate(f"{c:g}", (ei, ai), fontsize=6)
    for name, sweep in rule_sweeps(root, folds).items():
        ax.plot(*pooled_curve(sweep), ".--", label=f"{name} sweep")
    for m, t in table.items():
        if not m.startswith(("dqn-wait", "dqn-ew")) and m not in ("threshold", "fixed_fraction"):
            ax.plot(t["earliness"][0], t["accuracy"][0], "x")
            ax.annotate(m, (t["earliness"][0], t["accuracy"][0]), fontsize=6)
    ax.set(xlabel="earliness (fraction of the clip observed)", ylabel="accuracy")
    ax.set(xlim=(0, 1.05), ylim=(0, 1.0))
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_earliness.png", dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("root", help="output directory of experiments/loso.py")
    parser.add_argument("--folds", nargs="+", help="only these folds (default: every fold)")
    parser.add_argument("--out", help="where to write the table and plots (default: ROOT)")
    args = parser.parse_args(argv)
    root, out = Path(args.root), Path(args.out or args.root)
    try:  # before anything is written: a missing ROOT, no results or mixed settings
        methods = collect(root, args.folds)
        unrecorded = check_settings(methods)
    except (FileNotFoundError, ValueError) as error:
        print(f"compare: error: {error}", file=sys.stderr)
        return 2
    if unrecorded:
        print(
            f"{unrecorded} result(s) record no settings (written before loso.py did): not checked"
        )
    out.mkdir(parents=True, exist_ok=True)
    table = {m: aggregate(reports) for m, reports in methods.items()}
    kinds = {m: reports[0]["kind"] for m, reports in methods.items()}
    wins = compare_to_best(methods, table)
    missing = missing_results(root, methods, args.folds)
    write_tables(out, table, kinds, wins, missing)
    (out / "missing.json").write_text(json.dumps(missing, indent=1))
    if wins is not None:
        (out / "wins.json").write_text(json.dumps(wins, indent=1))
    best_first = sorted(table, key=lambda m: -table[m]["harmonic_mean"][0])
    plot_confusion_matrices(
        out / "confusion_matrices.png",
        {
            m: (table[m]["confusion_matrix"], table[m]["class_names"], title(m, table[m]))
            for m in best_first
        },
    )
    plot_curves(out, methods, table, root, args.folds)
    runs = {m: [Path(r["run_dir"]) for r in rs if "run_dir" in r] for m, rs in methods.items()}
    plot_training_curves(out / "training_curves.png", runs)
    print((out / "comparison.md").read_text())
    if missing:
        listed = out / "missing.json"
        print(f"{len(missing)} fold/seed/method result(s) missing, listed in {listed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
