"""Choosing the Whisper branch's causal schedule on training speakers only.

Each choice (re-encoding hop, window cap, which frames are pooled;
:mod:`avemotion.encoders.whisper_schedule`) is scored by inner speaker folds within the
training actors (default RAVDESS actors 01-14, two folds of 7; actors 15-18 are never
read): the branch's head (:class:`~avemotion.encoders.whisper_branch.WhisperAudioNet`,
the ``train-encoder`` defaults) is trained on one fold and scored on the other, 3 seeds,
for whole-clip accuracy (mean log-posterior over voiced steps) and the accuracy after the
first 30 % and 50 % of each clip (steps up to there only). The encoder's cost is measured
as encoder seconds per second of audio, one torch thread per worker.

Every distinct audio span is encoded once for all choices, and each choice's pooled
features go into the package's feature cache (:mod:`avemotion.encoders.whisper_cache`), so
a later ``train-encoder`` with the chosen schedule reads them instead of encoding again.

    python experiments/whisper_schedule.py --root ../shared/data/ravdess-speech-16k

Prints one JSON object (last line).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from typing import Any

import numpy as np
import torch

from avemotion.encoders.datasets import Item, list_corpus
from avemotion.encoders.frontend import n_steps
from avemotion.encoders.loops import ClipBatch, fit_windows, window_log_probs
from avemotion.encoders.media import AUDIO_RATE, load_audio
from avemotion.encoders.steps import StepConfig, clip_steps
from avemotion.encoders.train_config import TrainConfig
from avemotion.encoders.whisper_branch import (
    WhisperAudioNet,
    WhisperFeatures,
    whisper_section,
)
from avemotion.encoders.whisper_schedule import WhisperSchedule, encoding_spans, pool_layers
from avemotion.speakers import speaker_folds

CHOICES = {
    "hop 0.5 s, window 3 s, all frames": WhisperSchedule(0.5, 3.0, 0.0),
    "hop 0.5 s, window 3 s, last 1 s": WhisperSchedule(0.5, 3.0, 1.0),
    "hop 0.5 s, window 8 s, all frames": WhisperSchedule(0.5, 8.0, 0.0),
    "hop 1.0 s, window 3 s, all frames": WhisperSchedule(1.0, 3.0, 0.0),
}
"""The schedules compared (window 8 s holds every RAVDESS utterance whole: the growing
prefix)."""
TRAINING_ACTORS = [f"Actor_{i:02d}" for i in range(1, 15)]
SEEDS = (0, 1, 2)
FRACTIONS = (0.3, 0.5)

_WORKER: dict[str, Any] = {}


def _sections(variant: str, names: list[str], precision: str) -> dict[str, dict[str, Any]]:
    base = {**whisper_section(variant), "precision": precision}
    return {name: {**base, **CHOICES[name].as_dict()} for name in names}


def _init(variant: str, names: list[str], precision: str) -> None:
    torch.set_num_threads(1)
    features = {
        n: WhisperFeatures(s, 10.0) for n, s in _sections(variant, names, precision).items()
    }
    _WORKER.update(features=features, encoder=next(iter(features.values())).encoder)


@torch.inference_mode()
def _fill(item: Item) -> dict[str, float]:
    """Encode every distinct span of one clip once; cache each choice's pooled features;
    return each choice's encoder seconds and the clip's (``_seconds``; nothing when every
    choice was cached already)."""
    from avemotion.encoders.whisper import log_mel
    from avemotion.encoders.whisper_cache import clip_key

    audio = load_audio(item.path)
    count = n_steps(len(audio))
    key = clip_key(audio, count)
    if all(f.cache.get(key) is not None for f in _WORKER["features"].values()):
        return {}  # every choice already cached (an earlier, interrupted fill)
    outputs: dict[tuple[int, int], tuple[torch.Tensor, float]] = {}
    cost: dict[str, float] = {}
    for name, features in _WORKER["features"].items():
        spans = encoding_spans(count, 10.0, features.schedule)
        pooled = []
        cost[name] = 0.0
        for span in spans:
            if span not in outputs:
                started = time.perf_counter()
                mel = log_mel(audio[span[0] : span[1]])
                out = _WORKER["encoder"].layer_outputs(mel[None])[:, 0]
                outputs[span] = (out, time.perf_counter() - started)
            out, seconds = outputs[span]
            cost[name] += seconds
            pooled.append(pool_layers(out, features.schedule.pool_frames).half())
        if features.cache.get(key) is None:
            features.cache.put(key, torch.stack(pooled))
    cost["_seconds"] = len(audio) / AUDIO_RATE
    return cost


def _scores(net: WhisperAudioNet, batch: ClipBatch) -> dict[str, float]:
    log_probs, clip_of = window_log_probs(net, "audio", batch, None)  # type: ignore[arg-type]
    voiced_steps = [np.flatnonzero(v) for v in batch.voiced]
    found = {"whole_clip": [], **{f"after_{f}": [] for f in FRACTIONS}}
    for c, steps in enumerate(voiced_steps):
        rows = log_probs[clip_of == c]
        found["whole_clip"].append(rows.mean(0).argmax() == batch.labels[c])
        total = len(batch.voiced[c])
        for f in FRACTIONS:
            upto = int(np.sum(steps < max(1, int(np.ceil(f * total)))))
            found[f"after_{f}"].append(rows[: max(1, upto)].mean(0).argmax() == batch.labels[c])
    return {k: float(np.mean(v)) for k, v in found.items()}


def score_choice(name: str, section: dict[str, Any], items: list[Item]) -> dict[str, Any]:
    """Inner-fold scores of one schedule (its features read from the cache)."""
    features = WhisperFeatures(section, 10.0)
    clips = [clip_steps(i, True, False, StepConfig(10.0), whisper=features) for i in items]
    classes = sorted({c.item.label for c in clips})
    folds = speaker_folds([c.item.speaker for c in clips], 2)
    runs = []
    for seed in SEEDS:
        for fold in folds:
            train = [c for c in clips if c.item.speaker not in fold]
            test = [c for c in clips if c.item.speaker in fold]
            torch.manual_seed(seed)
            net = WhisperAudioNet(len(classes), section)
            config = TrainConfig(modality="audio", audio_variant=section["variant"], seed=seed)
            batch = ClipBatch.build(train, None, tuple(classes))  # type: ignore[arg-type]
            fit_windows(net, "audio", batch, None, config)  # type: ignore[arg-type]
            runs.append(_scores(net, ClipBatch.build(test, None, tuple(classes))))  # type: ignore[arg-type]
    summary = {k: round(float(np.mean([r[k] for r in runs])), 4) for k in runs[0]}
    summary["whole_clip_sd"] = round(float(np.std([r["whole_clip"] for r in runs])), 4)
    summary["encoder_runs_while_scoring"] = features.encoder_runs
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="../shared/data/ravdess-speech-16k")
    parser.add_argument("--variant", default="whisper-base")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--actors", nargs="+", default=TRAINING_ACTORS)
    parser.add_argument("--choices", nargs="+", type=int, help="indices into CHOICES (default all)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "int8"))
    parser.add_argument(
        "--fill-only",
        action="store_true",
        help="only fill the feature cache of the choices (e.g. for the recipe's other clips)",
    )
    parser.add_argument(
        "--repetitions",
        nargs="+",
        default=["01", "02"],
        help="RAVDESS repetitions to use (01 alone halves the cost)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    items = [
        i
        for i in list_corpus("ravdess", args.root, "audio").items
        if i.speaker in args.actors and i.path.stem.split("-")[5] in args.repetitions
    ]
    seconds = sum(len(load_audio(i.path)) for i in items) / AUDIO_RATE
    started = time.perf_counter()
    names = [list(CHOICES)[i] for i in args.choices] if args.choices else list(CHOICES)
    cost = {name: 0.0 for name in [*names, "_seconds"]}
    context = multiprocessing.get_context("spawn")
    initargs = (args.variant, names, args.precision)
    with context.Pool(args.workers, initializer=_init, initargs=initargs) as pool:
        for done, clip_cost in enumerate(pool.imap_unordered(_fill, items, chunksize=4)):
            for name, value in clip_cost.items():
                cost[name] += value
            if done % 100 == 0:
                print(f"encoded {done}/{len(items)} clips", flush=True)
    fill_seconds = time.perf_counter() - started
    encoded = max(cost.pop("_seconds"), 1e-9)  # audio encoded in this run (not cached before)
    sections = _sections(args.variant, names, args.precision)
    result: dict[str, Any] = {
        "precision": args.precision,
        "actors": sorted(set(args.actors)),
        "repetitions": args.repetitions,
        "clips": len(items),
        "audio_seconds": round(seconds, 1),
        "fill_seconds": round(fill_seconds, 1),
        "choices": {},
    }
    for name in names:
        if args.fill_only:
            result["choices"][name] = {
                "encoder_seconds_per_audio_second": round(cost[name] / encoded, 4)
            }
            continue
        scores = score_choice(name, sections[name], items)
        scores["encoder_seconds_per_audio_second"] = round(cost[name] / encoded, 4)
        result["choices"][name] = scores
        print(name, scores, flush=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
