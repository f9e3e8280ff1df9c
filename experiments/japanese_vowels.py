"""JapaneseVowels (shipped inside aeon): our DQN against aeon's early classifiers.

Builds two feature stores from aeon's train and test splits with ``FeatureStore.create``
(12 cepstral coefficients per step, 7–29 steps, 9 speakers as the classes), trains our
DQN on the train store, and reports it beside our threshold / fixed-fraction / full-clip
baselines and aeon's ProbabilityThreshold and TEASER (1-NN Euclidean, classification
points from 3 steps) on the test store. Earliness is measured against each series' true
length. The train clips are assigned round-robin to 4 groups in the store's speaker
field, so that our DQN's front end can be cross-fitted (the real speakers are the labels).

Needs the optional ``aeon`` package:

    python experiments/japanese_vowels.py --out results/japanese-vowels --steps 100000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from avemotion.atomic import write_json_atomic
from avemotion.evaluation.evaluate import evaluate_run
from avemotion.stopping.aeon import aeon_available
from avemotion.store import FeatureStore
from avemotion.training.run_dir import read_summary
from avemotion.training.train import train

GROUPS = 4


def build_stores(root: Path) -> tuple[FeatureStore, FeatureStore]:
    """The train and test stores of JapaneseVowels (written once under ``root``). The classes
    are the train split's, also when its store was written by an earlier (killed) run."""
    from aeon.datasets import load_japanese_vowels

    stores: list[FeatureStore] = []
    classes: list[str] | None = None
    for split in ("train", "test"):
        path = root / f"japanese-vowels-{split}"
        if (path / "meta.json").is_file():
            stores.append(FeatureStore.open(path))
            classes = classes or [n.removeprefix("speaker") for n in stores[-1].class_names]
            continue
        x, y = load_japanese_vowels(split=split)
        y = np.asarray(y).astype(str)
        classes = classes or sorted(set(y.tolist()), key=int)
        unknown = sorted(set(y.tolist()) - set(classes))
        if unknown:
            raise ValueError(f"JapaneseVowels {split}: labels {unknown} are not in the train split")
        sequences = [np.asarray(series, dtype=np.float32).T for series in x]
        labels = [classes.index(label) for label in y]
        groups = [f"{split}{i % GROUPS}" for i in range(len(sequences))]
        meta = {
            "corpus": "JapaneseVowels (aeon)",
            "modality": "cepstrum",
            "steps_per_second": 1.0,
            "encoder": "none",
        }
        stores.append(
            FeatureStore.create(
                path,
                sequences,
                labels,
                groups,
                [f"speaker{c}" for c in classes],
                clip_ids=[f"{split}-{i:04d}" for i in range(len(sequences))],
                meta=meta,
            )
        )
    return stores[0], stores[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE", help="options of our DQN (JSON values)"
    )
    args = parser.parse_args(argv)
    if not aeon_available():
        print(
            "aeon is not installed: JapaneseVowels ships inside aeon (pip install aeon)",
            file=sys.stderr,
        )
        return 2
    from avemotion.cli.train import parse_options

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train_store, test_store = build_stores(out)
    run = train(
        "dqn",
        train_store,
        args.steps,
        args.seed,
        out / "dqn",
        overwrite=True,
        progress=False,
        **parse_options(args.set),
    )
    result = evaluate_run(run, test_store, baselines=True)
    result["training"] = read_summary(run)
    reports = {"dqn": result, **result.pop("baselines")}
    result.pop("baseline_curves")
    write_json_atomic(out / "results.json", reports)
    lines = ["| method | accuracy | earliness | HM |", "|---|---|---|---|"]
    for name, report in sorted(reports.items(), key=lambda item: -item[1]["harmonic_mean"]):
        lines.append(
            f"| {name} | {report['accuracy']:.3f} | {report['earliness']:.3f} | {report['harmonic_mean']:.3f} |"
        )
    table = (
        "\n".join(lines)
        + f"\n\n{test_store.n_clips} test series; our DQN: {args.steps} env steps, seed {args.seed}.\n"
    )
    (out / "comparison.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
