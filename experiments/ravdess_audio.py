"""The whole RAVDESS audio pipeline, timed: train the CPU-sized audio encoder on actors
01–14, train the temporal LSTM on its embeddings, and extract all 18 actors (embedding and
temporal levels), then report whole-clip accuracy on the held-out actors 15–18 and the
extraction speed as a multiple of real time.

    python experiments/ravdess_audio.py --root ../shared/data/ravdess-speech-16k \
        --encoder ~/.cache/avemotion/encoders/ravdess-audio \
        --store ~/.cache/avemotion/stores/ravdess-audio

Prints one JSON object (last line). Every stage is also an ``avemotion`` command; the
equivalent commands are printed first.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import soundfile

from avemotion.encoders.extract import ExtractConfig, extract
from avemotion.encoders.train import TrainConfig, train_encoder

HELDOUT = ["Actor_15", "Actor_16", "Actor_17", "Actor_18"]
TEMPORAL_INPUT = "embedding+posteriors+statistics"
"""The LSTM reads the branch embedding, its log-posteriors and the window's log-mel
statistics (chosen on validation actors 11-14 with training on 01-10; docs/encoders.md)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="../shared/data/ravdess-speech-16k")
    parser.add_argument(
        "--encoder", default=str(Path.home() / ".cache/avemotion/encoders/ravdess-audio")
    )
    parser.add_argument(
        "--store", default=str(Path.home() / ".cache/avemotion/stores/ravdess-audio")
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    held = " ".join(HELDOUT)
    print("equivalent commands:")
    print(
        f"  avemotion train-encoder --dataset ravdess --root {args.root} --modality audio --heldout {held} --out {args.encoder}"
    )
    print(
        f"  avemotion train-encoder --dataset ravdess --root {args.root} --modality temporal --init {args.encoder} --heldout {held} --epochs 20 --batch-size 32 --temporal-input {TEMPORAL_INPUT} --out {args.encoder}"
    )
    print(
        f"  avemotion extract --dataset ravdess --root {args.root} --encoder {args.encoder} --out {args.store}-embedding --level embedding --overwrite"
    )
    print(
        f"  avemotion extract --dataset ravdess --root {args.root} --encoder {args.encoder} --out {args.store} --level temporal --overwrite"
    )
    timings: dict[str, float] = {}
    started = time.perf_counter()
    audio = train_encoder(
        TrainConfig(
            dataset="ravdess",
            root=args.root,
            modality="audio",
            out=args.encoder,
            speaker=HELDOUT,
            seed=args.seed,
        )
    )
    timings["train_audio"] = time.perf_counter() - started
    mark = time.perf_counter()
    temporal = train_encoder(
        TrainConfig(
            dataset="ravdess",
            root=args.root,
            modality="temporal",
            init=[args.encoder],
            out=args.encoder,
            speaker=HELDOUT,
            seed=args.seed,
            num_epochs=20,
            batch_size=32,
            temporal_input=TEMPORAL_INPUT,
        )
    )
    timings["train_temporal"] = time.perf_counter() - mark
    seconds = sum(soundfile.info(str(p)).duration for p in Path(args.root).rglob("*.flac"))
    extracted = {}
    for level, out in (("embedding", f"{args.store}-embedding"), ("temporal", args.store)):
        mark = time.perf_counter()
        store, skipped = extract(
            ExtractConfig(
                "ravdess",
                args.root,
                args.encoder,
                out,
                level=level,
                workers=args.workers,
                overwrite=True,
            )
        )
        timings[f"extract_{level}"] = time.perf_counter() - mark
        extracted[level] = {
            "path": str(store.path),
            "clips": store.n_clips,
            "dim": store.dim,
            "skipped": len(skipped),
            "realtime_factor": round(seconds / timings[f"extract_{level}"], 1),
        }
    total = time.perf_counter() - started
    result = {
        "audio_seconds": round(seconds, 1),
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "total_s": round(total, 1),
        "audio_encoder_heldout": audio["metrics"],
        "temporal_heldout": temporal["metrics"],
        "stores": extracted,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
