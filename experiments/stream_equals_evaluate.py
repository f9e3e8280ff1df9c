"""Stream equals evaluate, measured: train a run with each posterior model on the training
speakers, then give every held-out clip's decision twice, from ``avemotion evaluate``'s
sweep of its store row and from streaming its audio alone through ``OnlineRecognizer``,
and count the clips on which both name the same class at the same step.

    python experiments/stream_equals_evaluate.py --store STORE --root ../shared/data/ravdess-speech-16k \\
        --out /tmp/stream-eq
    python experiments/stream_equals_evaluate.py --synthetic --out /tmp/stream-eq-synthetic

It also checks the cap (docs/online.md): an utterance, and in ``evaluate`` a clip, is
answered by its T_max-th step (the run's longest training clip), so no posterior model
keeps more than T_max steps. ``decisions_changed_by_the_cap`` counts the held-out clips
whose decision or step differs from a sweep without the cap
(``answer_by_max_length=False``). ``--synthetic`` (the default job's store, no media)
measures that count alone.
Prints one JSON object (last line); each run is kept under ``--out`` and reused.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from avemotion.evaluation.evaluate import sweep_run
from avemotion.online.streaming import clip_decisions
from avemotion.store import FeatureStore
from avemotion.training.run_dir import read_run_config
from avemotion.training.train import train

POSTERIORS = ("running-mean-softmax", "prefix-shape-softmax", "prefix-nearest-neighbour")
RAVDESS_HELDOUT = ["Actor_15", "Actor_16", "Actor_17", "Actor_18"]
SYNTHETIC_HELDOUT = ["S07", "S08"]


def trained(
    store: FeatureStore, held_out: list[str], posterior: str, out: Path, steps: int, seed: int
) -> Path:
    """The run of ``posterior`` on every speaker but ``held_out`` (reused when complete)."""
    run_dir = out / (posterior if seed == 0 else f"{posterior}-seed{seed}")
    if (run_dir / "summary.json").is_file():
        return run_dir
    return train(
        "dqn", store, steps, seed, run_dir, exclude_speakers=held_out, posterior=posterior,
        overwrite=True, progress=False,
    )  # fmt: skip


def update_microseconds(run_dir: Path, test: FeatureStore, t_max: int) -> dict[str, float]:
    """Median time (µs, 5 passes) of the run's posterior model's ``update`` over the first
    and the last 10 of ``t_max`` steps (held-out rows, clip after clip): flat when the
    cost of a step does not grow with the prefix."""
    from avemotion.posterior import load_posterior_model

    stream = load_posterior_model(run_dir / "posterior.npz").stream()
    rows = np.vstack([test.clip(i).frames for i in range(test.n_clips)])[:t_max]
    passes = []
    for _ in range(5):
        stream.reset()
        seconds = []
        for row in rows:
            start = time.perf_counter()
            stream.update(row)
            seconds.append(time.perf_counter() - start)
        passes.append(seconds)
    median = np.median(np.asarray(passes), axis=0) * 1e6
    return {
        "first_10": round(float(median[:10].mean()), 1),
        "last_10": round(float(median[-10:].mean()), 1),
    }


def measure(
    store: FeatureStore,
    held_out: list[str],
    posterior: str,
    out: Path,
    steps: int,
    audio: dict[str, Path] | None,
    seed: int = 0,
) -> dict[str, Any]:
    run_dir = trained(store, held_out, posterior, out, steps, seed)
    test = store.subset(speakers=held_out)
    t_max = int(read_run_config(run_dir)["max_length"])
    predictions, observed = sweep_run(run_dir, test)
    free, free_steps = sweep_run(run_dir, test, answer_by_max_length=False)
    result: dict[str, Any] = {
        "run": str(run_dir),
        "n_clips": test.n_clips,
        "t_max": t_max,
        "held_out_clips_longer_than_t_max": int((test.lengths > t_max).sum()),
        "uncapped_decisions_after_t_max": int((free_steps > t_max).sum()),
        "decisions_changed_by_the_cap": int(
            ((free != predictions) | (free_steps != observed)).sum()
        ),
        "evaluate_accuracy": round(float((predictions == test.labels).mean()), 4),
        "update_microseconds": update_microseconds(run_dir, test, t_max),
    }
    if audio is None:
        return result
    start = time.perf_counter()
    online = clip_decisions(run_dir, [audio[clip_id] for clip_id in test.clip_ids])
    same = [(int(p), int(s)) == o for p, s, o in zip(predictions, observed, online)]
    result.update(
        stream_seconds=round(time.perf_counter() - start, 1),
        same_decision_and_step=int(sum(same)),
        agreement=round(float(np.mean(same)), 4),
        differing=[
            {
                "clip": test.clip_ids[i],
                "evaluate": [int(predictions[i]), int(observed[i])],
                "stream": list(online[i]),
            }
            for i in np.flatnonzero(~np.asarray(same))
        ],
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--store", help="a RAVDESS store extracted by avemotion (e.g. experiments/ravdess_audio.py)"
    )
    parser.add_argument(
        "--root", default="../shared/data/ravdess-speech-16k", help="its audio files"
    )
    parser.add_argument(
        "--synthetic", action="store_true", help="the default job's synthetic store (no media)"
    )
    parser.add_argument("--out", required=True, help="where the runs are written (and reused)")
    parser.add_argument("--posteriors", nargs="+", default=list(POSTERIORS))
    parser.add_argument("--steps", type=int, default=150_000, help="env steps per run")
    parser.add_argument("--seed", type=int, default=0, help="the runs' seed")
    args = parser.parse_args(argv)
    if args.synthetic == bool(args.store):
        parser.error("give exactly one of --store and --synthetic")
    if args.synthetic:
        from avemotion.envs.synthetic import synthetic_store

        store, held_out, audio = synthetic_store(), SYNTHETIC_HELDOUT, None
    else:
        from avemotion.encoders.datasets import list_corpus

        store, held_out = FeatureStore.open(args.store), RAVDESS_HELDOUT
        audio = {
            item.clip_id: Path(item.path)
            for item in list_corpus("ravdess", args.root, "audio").items
        }
        missing = sorted(set(store.subset(speakers=held_out).clip_ids) - set(audio))
        if missing:
            parser.error(
                f"{args.root}: no audio for {len(missing)} held-out clips, e.g. {missing[0]}"
            )
    out = Path(args.out)
    results = {}
    for posterior in args.posteriors:
        results[posterior] = measure(
            store, held_out, posterior, out / "runs", args.steps, audio, args.seed
        )
        print(
            posterior, {k: v for k, v in results[posterior].items() if k != "differing"}, flush=True
        )
    print(
        json.dumps(
            {
                "store": str(store.path),
                "held_out": held_out,
                "seed": args.seed,
                "posteriors": results,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
