"""Speaker adaptation on held-out RAVDESS actors: accuracy against the number of earlier
clips of the speaker, adapted (avemotion.adaptation) and unadapted.

    python experiments/speaker_adaptation.py \
        --store ~/.cache/avemotion/stores/ravdess-audio-embedding \
        --temporal-store ~/.cache/avemotion/stores/ravdess-audio \
        --out results/speaker-adaptation --plot docs/speaker_adaptation.png

Whole-clip classifier: logistic regression (standardised inputs, C = 1, never tuned) on the
per-clip mean and std of the step embeddings, trained on actors 01-14 and scored on 15-18.
For each seed of the random order, the whole store is adapted causally against actors
01-14 (``avemotion adapt --order random --seed S`` with ``--reference-speakers`` 01-14):
each training clip with its own speaker's earlier clips, exactly as a test clip. Then:

- ``causal``: every held-out clip at its own place in the seeded order (the targets' figure);
- ``at k``: every held-out clip as if it came after k other clips of its speaker (the first
  k of a seeded permutation of the speaker's other clips; "all" = every other clip). The
  estimator depends on a clip's earlier clips only through their moments, so the adapted
  mean + std features are computed from per-clip moments without rewriting the store.

Unadapted figures use the raw features of the same clips. With ``--temporal-store``, our DQN
is also trained (``avemotion.training.train.train``) on the temporal store of actors 01-14,
unadapted and adapted with each seed, and evaluated on 15-18 (``evaluate_run`` with the
non-RL stopping rules, which read the same run's posterior of the same, adapted or not,
store); its per-clip decisions are grouped by the number of earlier clips in the order.
Writes the figures (``--json``) and the plot, after the whole-clip stage and again after
the DQN; prints a summary (last line).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from avemotion.adaptation.estimator import clip_moments, normaliser
from avemotion.adaptation.transform import adapt_store, fit_spec, speaker_sequences
from avemotion.store import FeatureStore
from avemotion.training.train import DEFAULT_STEPS

TRAIN = [f"Actor_{i:02d}" for i in range(1, 15)]
TEST = [f"Actor_{i:02d}" for i in range(15, 19)]
KS = (0, 1, 3, 5, 10, 20, "all")
DQN_BUCKETS = ((0, 0), (1, 4), (5, 19), (20, 39), (40, 10_000))


def clip_features(means: np.ndarray, squares: np.ndarray, mu: Any = 0.0, var: Any = 1.0):
    """Mean and std over a clip's steps of ``(x - mu) / sqrt(var)``, from its moments."""
    within = np.maximum(squares - means**2, 0.0)
    return np.concatenate([(means - mu) / np.sqrt(var), np.sqrt(within / var)], axis=-1)


def by_earlier(correct: np.ndarray, earlier: np.ndarray) -> dict[str, float]:
    """Accuracy of the clips grouped by their number of earlier clips (non-empty groups)."""
    groups = {f"{lo}-{hi}": (earlier >= lo) & (earlier <= hi) for lo, hi in DQN_BUCKETS}
    return {name: float(correct[rows].mean()) for name, rows in groups.items() if rows.any()}


def classifier(x: np.ndarray, y: np.ndarray):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000))
    return model.fit(x, y)


def moments_of(store: FeatureStore) -> tuple[np.ndarray, np.ndarray]:
    pairs = [clip_moments(store.clip(i).frames) for i in range(store.n_clips)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def causal_features(store: FeatureStore, spec, means, squares, order_seed: int):
    """Features of every clip adapted at its place in the seeded random order."""
    x = np.empty((store.n_clips, 2 * store.dim))
    earlier = np.empty(store.n_clips, dtype=np.int64)
    for rows in speaker_sequences(store, "random", order_seed):
        sum_m, sum_q = np.zeros(store.dim), np.zeros(store.dim)
        for position, i in enumerate(rows):
            mu, var = normaliser(spec.population, spec.prior, position, sum_m, sum_q)
            x[i], earlier[i] = clip_features(means[i], squares[i], mu, var), position
            sum_m, sum_q = sum_m + means[i], sum_q + squares[i]
    return x, earlier


def features_at_k(store: FeatureStore, spec, means, squares, k: Any, seed: int) -> np.ndarray:
    """Every clip adapted as if after ``k`` other clips of its speaker (seeded choice)."""
    rng = np.random.default_rng(seed)
    x = np.empty((store.n_clips, 2 * store.dim))
    for i in range(store.n_clips):
        others = np.flatnonzero(store.speaker_index == store.speaker_index[i])
        others = rng.permutation(others[others != i])
        chosen = others if k == "all" else others[:k]
        mu, var = normaliser(
            spec.population, spec.prior, len(chosen), means[chosen].sum(0), squares[chosen].sum(0)
        )
        x[i] = clip_features(means[i], squares[i], mu, var)
    return x


def written_store_accuracy(
    full: FeatureStore, train: FeatureStore, test: FeatureStore, seed: int, path: Path
) -> float:
    """Accuracy of the classifier on the store adapt_store writes (``--order random``)."""
    adapted = adapt_store(full, train, path, "random", seed, overwrite=True)
    a_train = adapted.subset(speakers=train.speaker_set)
    a_test = adapted.subset(speakers=test.speaker_set)
    model = classifier(clip_features(*moments_of(a_train)), a_train.labels)
    return float((model.predict(clip_features(*moments_of(a_test))) == a_test.labels).mean())


def whole_clip(
    store_path: str, seeds: list[int], split: tuple[list, list], work: Path
) -> dict[str, Any]:
    full = FeatureStore.open(store_path)
    train, test = full.subset(speakers=split[0]), full.subset(speakers=split[1])
    in_train = np.isin(full.speaker_index, train.speaker_index)
    in_test = np.isin(full.speaker_index, test.speaker_index)
    all_m, all_q = moments_of(full)
    tr_m, tr_q, te_m, te_q = all_m[in_train], all_q[in_train], all_m[in_test], all_q[in_test]
    raw = classifier(clip_features(tr_m, tr_q), train.labels)
    raw_correct = raw.predict(clip_features(te_m, te_q)) == test.labels
    result: dict[str, Any] = {"unadapted": float(raw_correct.mean()), "seeds": {}}
    for seed in seeds:
        spec, scores = fit_spec(train, "random", seed)
        # the order is a permutation of the whole store's clips, as `avemotion adapt` draws it
        x_all, earlier_all = causal_features(full, spec, all_m, all_q, seed)
        model = classifier(x_all[in_train], train.labels)
        x_test, earlier = x_all[in_test], earlier_all[in_test]
        correct = model.predict(x_test) == test.labels
        at_k = {}
        for k in KS:
            x_k = features_at_k(test, spec, te_m, te_q, k, seed)
            at_k[str(k)] = float((model.predict(x_k) == test.labels).mean())
        result["seeds"][str(seed)] = {
            "causal": float(correct.mean()),
            "at_k": at_k,
            "prior_median": {
                "kappa": float(np.median(spec.prior.kappa)),
                "nu": float(np.median(spec.prior.nu)),
            },
            "prior_scores": scores,
            "causal_by_earlier": by_earlier(correct, earlier),
        }
        if seed == seeds[0]:  # the same figure from the store `avemotion adapt` writes
            result["seeds"][str(seed)]["causal_from_written_store"] = written_store_accuracy(
                full, train, test, seed, work / f"embedding-adapted-seed{seed}"
            )
    causal = [s["causal"] for s in result["seeds"].values()]
    result["causal_mean"], result["causal_std"] = float(np.mean(causal)), float(np.std(causal))
    result["at_k_mean"] = {
        str(k): float(np.mean([s["at_k"][str(k)] for s in result["seeds"].values()])) for k in KS
    }
    result["at_k_std"] = {
        str(k): float(np.std([s["at_k"][str(k)] for s in result["seeds"].values()])) for k in KS
    }
    return result


def dqn(
    temporal: str,
    seeds: list[int],
    steps: int,
    work: Path,
    split: tuple[list, list],
    stream_root: str | None = None,
) -> dict[str, Any]:
    """Our DQN on the unadapted and adapted temporal stores (actors 01-14 -> 15-18)."""
    from avemotion.adaptation.transform import earlier_clips
    from avemotion.evaluation.evaluate import evaluate_run, sweep_agent
    from avemotion.training.run_dir import load_agent
    from avemotion.training.train import train

    full = FeatureStore.open(temporal)
    out: dict[str, Any] = {}
    for seed in seeds:
        runs = {"unadapted": full}
        adapted_path = work / f"temporal-adapted-seed{seed}"
        runs["adapted"] = adapt_store(
            full, full.subset(speakers=split[0]), adapted_path, "random", seed, overwrite=True
        )
        for name, store in runs.items():
            started = time.perf_counter()
            run_dir = train(
                "dqn", store, steps, seed, work / f"dqn-{name}-seed{seed}", speakers=split[0],
                overwrite=True, progress=False,
            )  # fmt: skip
            report = evaluate_run(run_dir, store, speakers=split[1], baselines=True, aeon=False)
            test = store.subset(speakers=split[1])
            predictions, _ = sweep_agent(load_agent(run_dir), test)
            earlier = earlier_clips(runs["adapted"].subset(speakers=split[1]))
            correct = predictions == test.labels
            keys = ("accuracy", "earliness", "harmonic_mean")
            out.setdefault(name, {})[str(seed)] = {key: report[key] for key in keys} | {
                "rules": {
                    rule: {key: value[key] for key in keys}
                    for rule, value in report["baselines"].items()
                },
                "seconds": round(time.perf_counter() - started, 1),
                "accuracy_by_earlier": by_earlier(correct, earlier),
            }
            print(name, seed, out[name][str(seed)], flush=True)
            if name == "adapted" and seed == seeds[0] and stream_root:
                check = stream_check(run_dir, store, full, split[1][0], stream_root, 5)
                out["stream_check"] = check
                print("stream check", check, flush=True)
    for name in ("unadapted", "adapted"):
        runs = list(out[name].values())
        for key in ("accuracy", "earliness", "harmonic_mean"):
            out[f"{name}_{key}_mean"] = float(np.mean([r[key] for r in runs]))
            out[f"{name}_{key}_std"] = float(np.std([r[key] for r in runs]))
            for rule in runs[0]["rules"]:
                values = [r["rules"][rule][key] for r in runs]
                out[f"{name}_{rule}_{key}_mean"] = float(np.mean(values))
    return out


def stream_check(
    run_dir: Path, adapted: FeatureStore, raw: FeatureStore, speaker: str, root: str, n: int
) -> dict[str, Any]:
    """Stream the first ``n`` clips of ``speaker`` (in the adapted store's order) from their
    audio files with a speaker state; compare the rows the agent reads with the store's.

    Returns the largest absolute difference of the adapted rows, and of the raw rows (the
    encoder's own streaming error, which the normalisation scales by 1 / std)."""
    from avemotion.encoders.media import load_audio
    from avemotion.online.recognizer import OnlineRecognizer

    block = adapted.meta["adaptation"]
    index = adapted.speaker_names.index(speaker)
    sequences = speaker_sequences(adapted, block["order"], block["seed"] or 0)
    order = next(rows for rows in sequences if adapted.speaker_index[rows[0]] == index)[:n]
    state = run_dir / "speaker-state.json"
    state.unlink(missing_ok=True)
    recognizer = OnlineRecognizer.from_run(run_dir, speaker_state=state)
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    adapt_step = recognizer.speaker.step

    def recorded(row: np.ndarray) -> np.ndarray:
        seen.append((row, adapt_step(row)))
        return seen[-1][1]

    recognizer.speaker.step = recorded
    adapted_error = raw_error = 0.0
    earlier = []
    for i in order:
        recognizer.reset()
        seen.clear()
        recognizer.feed_audio(load_audio(Path(root) / f"{adapted.clip_ids[i]}.flac"))
        earlier.append(recognizer.finish()["speaker_state"]["earlier_utterances"])
        online_raw, online = (np.stack(x) for x in zip(*seen))
        raw_error = max(raw_error, float(np.abs(online_raw - raw.clip(i).frames).max()))
        adapted_error = max(adapted_error, float(np.abs(online - adapted.clip(i).frames).max()))
    recognizer.close()
    return {
        "speaker": speaker,
        "clips": [adapted.clip_ids[i] for i in order],
        "earlier_utterances": earlier,
        "max_abs_error_adapted_rows": adapted_error,
        "max_abs_error_raw_rows": raw_error,
    }


def plot(result: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clip = result["whole_clip"]
    labels = [str(k) for k in KS]
    x = np.arange(len(labels))
    per_seed = np.array([[s["at_k"][k] for k in labels] for s in clip["seeds"].values()])
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.errorbar(x, per_seed.mean(0), yerr=per_seed.std(0), marker="o", capsize=3, label="adapted")
    ax.axhline(clip["unadapted"], color="grey", ls="--", label="unadapted")
    if "dqn" in result:
        d = result["dqn"]
        for name, colour in (("adapted", "C2"), ("unadapted", "C3")):
            ax.axhline(
                d[f"{name}_accuracy_mean"],
                color=colour,
                ls=":",
                label=f"our DQN, {name} (all clips; earliness {d[f'{name}_earliness_mean']:.2f}, "
                f"HM {d[f'{name}_harmonic_mean_mean']:.3f})",
            )
    ax.set_xticks(x, labels)
    ax.set_xlabel("earlier clips of the speaker")
    ax.set_ylabel("whole-clip accuracy, actors 15-18")
    ax.set_title(f"RAVDESS speaker adaptation ({len(per_seed)} order seeds, mean ± std)")
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def code_version() -> dict[str, Any]:
    """The git commit of the code, and the package files changed since it (the agents change
    often; figures name the code they came from)."""
    import subprocess

    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return ""

    changed = git("status", "--porcelain", "--untracked-files=no", "avemotion").splitlines()
    return {"commit": git("rev-parse", "HEAD"), "changed": [line[3:] for line in changed]}


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse in one line what would be ignored (the DQN stage's options without
    ``--temporal-store``), a test speaker also trained on, a negative seed or budget."""
    if not args.temporal_store:
        for flag, value in (("--dqn-steps", args.dqn_steps), ("--stream-root", args.stream_root)):
            if value is not None:
                raise ValueError(f"{flag}: only read by the DQN stage; give --temporal-store too")
    both = sorted(set(args.train_speakers) & set(args.test_speakers))
    if both:
        raise ValueError(f"--test-speakers: {both} also in --train-speakers; must be held out")
    if any(seed < 0 for seed in args.seeds):
        raise ValueError(f"--seeds: expected integers >= 0, got {args.seeds}")
    if args.dqn_steps is not None and args.dqn_steps < 1:
        raise ValueError(f"--dqn-steps: expected a positive integer, got {args.dqn_steps}")


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except (ValueError, FileNotFoundError, FileExistsError) as error:  # StoreError is one
        print(f"speaker_adaptation: error: {error}", file=sys.stderr)
        return 2


def run(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    home = Path.home() / ".cache/avemotion/stores"
    parser.add_argument("--store", default=str(home / "ravdess-audio-embedding"))
    parser.add_argument("--temporal-store", help="also train our DQN on this store")
    parser.add_argument("--train-speakers", nargs="+", default=TRAIN)
    parser.add_argument("--test-speakers", nargs="+", default=TEST)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--dqn-steps", type=int, help="with --temporal-store (default: as `avemotion train`)"
    )
    parser.add_argument(
        "--stream-root",
        help="with --temporal-store, a corpus folder (RAVDESS): stream 5 held-out clips of the "
        "first seed's adapted run with a speaker state and compare the rows with the adapted store",
    )
    parser.add_argument(
        "--out", default="results/speaker-adaptation", help="work directory (stores, runs)"
    )
    parser.add_argument("--json", default="docs/speaker_adaptation.json", help="the figures")
    parser.add_argument("--plot", default="docs/speaker_adaptation.png")
    args = parser.parse_args(argv)
    check_arguments(args)  # before anything is written
    steps = DEFAULT_STEPS if args.dqn_steps is None else args.dqn_steps
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    split = (args.train_speakers, args.test_speakers)
    result: dict[str, Any] = {"store": args.store, "train": split[0], "test": split[1]}
    result["code"] = code_version()
    result["whole_clip"] = whole_clip(args.store, args.seeds, split, out)
    for stage in ("whole_clip", "dqn"):
        if stage == "dqn" and args.temporal_store:
            result["dqn"] = dqn(
                args.temporal_store, args.seeds, steps, out, split, args.stream_root
            )
        result["seconds"] = round(time.perf_counter() - started, 1)
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1))
        plot(result, args.plot)
    clip = result["whole_clip"]
    summary = {
        "unadapted": clip["unadapted"],
        "causal_random_order": [clip["causal_mean"], clip["causal_std"]],
        "at_k_mean": clip["at_k_mean"],
        "at_k_std": clip["at_k_std"],
    }
    if "dqn" in result:
        summary["dqn"] = {k: v for k, v in result["dqn"].items() if k.endswith(("_mean", "_std"))}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
