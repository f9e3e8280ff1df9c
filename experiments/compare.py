"""Compare the methods of a leave-one-speaker-out experiment: Markdown table, CSV and plots.

    python experiments/compare.py results/loso-synthetic

Writes into that directory: ``comparison.md``, ``comparison.csv``, ``confusion_matrices.png``
(summed over folds, rows normalised), ``accuracy_vs_earliness.png`` (our DQN across
earliness weights or wait costs, the threshold and fixed-fraction sweeps) and ``training_curves.png``. Accuracy and
earliness are pooled over all held-out clips of all folds; HM is computed from them.
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

from avemotion.agents.metrics import harmonic_mean  # noqa: E402
from avemotion.agents.report import write_comparison
from avemotion.agents.training_log import read_log  # noqa: E402

COLUMNS = (
    "method",
    "kind",
    "folds",
    "n_clips",
    "accuracy",
    "earliness",
    "harmonic_mean",
    "mean_fold_hm",
    "mean_decision_s",
    "balanced_accuracy",
    "env_steps_per_s",
)


def collect(root: Path, folds: list[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Per-method lists of fold reports (agents' eval.json and baselines.json entries),
    from every fold directory or only ``folds``."""
    methods: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for fold in sorted(p for p in root.iterdir() if p.is_dir()):
        if folds is not None and fold.name not in folds:
            continue
        for eval_path in sorted(fold.glob("*/eval.json")):
            report = json.loads(eval_path.read_text())
            methods[eval_path.parent.name].append(
                {**report, "kind": "rl", "run_dir": str(eval_path.parent)}
            )
        baselines = fold / "baselines.json"
        if baselines.is_file():
            for name, report in json.loads(baselines.read_text())["reports"].items():
                methods[name].append({**report, "kind": "baseline"})
    if not methods:
        raise FileNotFoundError(f"{root}: no fold results (run experiments/loso.py first)")
    return methods


def pooled(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Clip-weighted accuracy and earliness over folds, HM of those, and summed confusion."""
    n = np.array([r["n_clips"] for r in reports], dtype=float)
    accuracy = float(np.average([r["accuracy"] for r in reports], weights=n))
    earliness = float(np.average([r["earliness"] for r in reports], weights=n))
    rates = [r["training"]["env_steps_per_s"] for r in reports if "training" in r]
    return {
        "folds": len(reports),
        "n_clips": int(n.sum()),
        "accuracy": accuracy,
        "earliness": earliness,
        "harmonic_mean": harmonic_mean(accuracy, earliness),
        "mean_fold_hm": float(np.mean([r["harmonic_mean"] for r in reports])),
        "mean_decision_s": float(np.average([r["mean_decision_s"] for r in reports], weights=n)),
        "balanced_accuracy": float(np.mean([r["balanced_accuracy"] for r in reports])),
        "env_steps_per_s": float(np.mean(rates)) if rates else float("nan"),
        "confusion_matrix": np.sum([np.array(r["confusion_matrix"]) for r in reports], axis=0),
        "class_names": reports[0]["class_names"],
    }


def write_tables(root: Path, table: dict[str, dict[str, Any]], kinds: dict[str, str]) -> None:
    """``comparison.md`` and ``comparison.csv`` through the writer the sweep uses too."""
    rows = []
    for m in sorted(table, key=lambda m: -table[m]["harmonic_mean"]):
        t = table[m]
        row: dict[str, Any] = {
            "method": m,
            "kind": kinds[m],
            "n_folds": t["folds"],
            "n_clips": t["n_clips"],
        }
        row.update({f"{c}_mean": t[c] for c in COLUMNS[4:]})  # pooled values: no std
        rows.append(row)
    folds = max(t["folds"] for t in table.values())
    clips = max(t["n_clips"] for t in table.values())
    note = (
        f"{folds} held-out speaker folds, {clips} clips; accuracy and earliness pooled over clips."
    )
    write_comparison(rows, root / "comparison", metrics=COLUMNS[4:], note=note)


def plot_confusions(root: Path, table: dict[str, dict[str, Any]]) -> None:
    methods = sorted(table, key=lambda m: -table[m]["harmonic_mean"])
    cols = min(4, len(methods))
    rows = (len(methods) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.4 * rows), squeeze=False)
    for ax, m in zip(axes.flat, methods):
        matrix = table[m]["confusion_matrix"].astype(float)
        matrix = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        names = table[m]["class_names"]
        ax.imshow(matrix, vmin=0, vmax=1, cmap="Blues")
        for i in range(len(names)):
            for j in range(len(names)):
                ax.text(
                    j,
                    i,
                    f"{matrix[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if matrix[i, j] > 0.5 else "black",
                )
        ax.set_xticks(range(len(names)), names, rotation=60, fontsize=6)
        ax.set_yticks(range(len(names)), names, fontsize=6)
        ax.set_title(
            f"{m}\nacc {table[m]['accuracy']:.2f}, earliness {table[m]['earliness']:.2f}",
            fontsize=8,
        )
    for ax in list(axes.flat)[len(methods) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(root / "confusion_matrices.png", dpi=120)
    plt.close(fig)


def plot_curves(
    out: Path,
    methods: dict[str, list[dict[str, Any]]],
    table: dict[str, dict[str, Any]],
    root: Path,
    folds: list[str] | None = None,
) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    sweeps: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for m, reports in methods.items():
        curve = reports[0].get("curve")
        if curve is None and m.startswith("dqn-wait"):  # runs written before "curve" existed
            curve = {"parameter": "wait cost", "value": reports[0]["wait_cost"]}
        if curve is not None:
            point = (curve["value"], table[m]["earliness"], table[m]["accuracy"])
            sweeps[curve["parameter"]].append(point)
    levels: dict[float, list[tuple[float, float, int]]] = defaultdict(list)
    for report in methods.get("dqn", []):
        for point in report.get("bias_sweep", []):
            levels[point["level"]].append(
                (point["earliness"], point["accuracy"], report["n_clips"])
            )
    if levels:
        pooled_points = [np.array(levels[level]) for level in sorted(levels)]
        ax.plot(
            [np.average(p[:, 0], weights=p[:, 2]) for p in pooled_points],
            [np.average(p[:, 1], weights=p[:, 2]) for p in pooled_points],
            "-",
            label="our DQN (wait-bias sweep)",
        )
    for parameter, points in sweeps.items():
        _, e, a = zip(*sorted(points, key=lambda p: p[1]))
        ax.plot(e, a, "o-", label=f"our DQN ({parameter} sweep)")
        for c, ei, ai in points:
            ax.annotate(f"{c:g}", (ei, ai), fontsize=6)
    curves: dict[str, dict[float, list[tuple[float, float, int]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for fold in sorted(p for p in root.iterdir() if p.is_dir()):
        if folds is not None and fold.name not in folds:
            continue
        path = fold / "baselines.json"
        if not path.is_file():
            continue
        data = json.loads(path.read_text())
        n = data["reports"]["threshold"]["n_clips"]
        for name, points in data["curves"].items():
            for point in points:
                curves[name][point["parameter"]].append((point["earliness"], point["accuracy"], n))
    for name, by_parameter in curves.items():
        xs, ys = [], []
        for parameter in sorted(by_parameter):
            values = np.array(by_parameter[parameter])
            xs.append(np.average(values[:, 0], weights=values[:, 2]))
            ys.append(np.average(values[:, 1], weights=values[:, 2]))
        ax.plot(xs, ys, ".--", label=f"{name} sweep")
    for m, t in table.items():
        if not m.startswith(("dqn-wait", "dqn-ew")) and m not in ("threshold", "fixed_fraction"):
            ax.plot(t["earliness"], t["accuracy"], "x")
            ax.annotate(m, (t["earliness"], t["accuracy"]), fontsize=6)
    ax.set_xlabel("earliness (fraction of the clip observed)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1.05)
    ax.set_ylim(0, 1.0)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_earliness.png", dpi=120)
    plt.close(fig)


def plot_training(root: Path, methods: dict[str, list[dict[str, Any]]]) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for m, reports in sorted(methods.items()):
        logs = [
            read_log(Path(r["run_dir"]))
            for r in reports
            if r.get("kind") == "rl" and (Path(r["run_dir"]) / "training_log.csv").is_file()
        ]
        logs = [log for log in logs if log and len(log.get("env_steps", [])) > 0]
        if not logs:
            continue
        for ax, key in zip(axes, ("episode_return", "harmonic_mean")):
            grid = np.unique(np.concatenate([log["env_steps"] for log in logs]))
            values = np.nanmean(
                [np.interp(grid, log["env_steps"], log[key]) for log in logs], axis=0
            )
            ax.plot(grid, values, label=m)
            ax.set_xlabel("environment steps")
            ax.set_ylabel(f"training {key.replace('_', ' ')}")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(root / "training_curves.png", dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("root", help="output directory of experiments/loso.py")
    parser.add_argument(
        "--folds", nargs="+", default=None, help="only these folds (default: every fold)"
    )
    parser.add_argument(
        "--out", default=None, help="where to write the table and plots (default: ROOT)"
    )
    args = parser.parse_args(argv)
    root = Path(args.root)
    out = Path(args.out) if args.out else root
    out.mkdir(parents=True, exist_ok=True)
    methods = collect(root, args.folds)
    table = {m: pooled(reports) for m, reports in methods.items()}
    kinds = {m: reports[0]["kind"] for m, reports in methods.items()}
    write_tables(out, table, kinds)
    plot_confusions(out, table)
    plot_curves(out, methods, table, root, args.folds)
    plot_training(out, methods)
    print((out / "comparison.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
