"""Build multi-turn recordings with turn-level labels from RAVDESS clips.

One recording per actor (a conversation with one speaker): the actor's clips in a seeded
order, joined with pauses of 0.4–2.0 s and white noise 30 dB below the recording's level
(:func:`avemotion.benchmarks.conversation.join_utterances`). Writes ``OUT/Actor_NN.flac``
and ``OUT/Actor_NN.csv`` (columns ``start,end,label,clip_id,speaker``; a turn spans its
whole clip) for ``avemotion stream --turns`` and ``avemotion evaluate-turns``:

    python experiments/make_conversation.py --root ../shared/data/ravdess-speech-16k \
        --actors 15 16 17 18 --out /tmp/conversations --seed 0

Prints one JSON object: per recording its duration and turn count.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import soundfile

from avemotion.benchmarks.conversation import (
    PAUSE_S,
    SNR_DB,
    Utterance,
    join_utterances,
    write_labels,
)
from avemotion.encoders.datasets import list_corpus
from avemotion.encoders.media import AUDIO_RATE, load_audio


def actor_utterances(root: str, actor: str, clips: int | None, seed: int) -> list[Utterance]:
    """The clips of ``actor`` (all, or ``clips`` of them) in a seeded order."""
    corpus = list_corpus("ravdess", root, "audio")
    items = [item for item in corpus.items if item.speaker == actor]
    if not items:
        raise ValueError(f"--actors: no clips of {actor} under {root}")
    order = np.random.default_rng(seed).permutation(len(items))[: clips or len(items)]
    return [
        Utterance(load_audio(items[i].path), items[i].label, items[i].clip_id, actor) for i in order
    ]


def build(
    root: str, actors: list[str], out: Path, seed: int, clips: int | None, snr_db: float
) -> dict[str, dict[str, float]]:
    """Write one recording + label file per actor; return their durations and turn counts."""
    out.mkdir(parents=True, exist_ok=True)
    made = {}
    for index, actor in enumerate(actors):
        utterances = actor_utterances(root, actor, clips, seed + index)
        audio, rows = join_utterances(utterances, seed + index, PAUSE_S, snr_db)
        soundfile.write(out / f"{actor}.flac", audio, AUDIO_RATE)
        write_labels(out / f"{actor}.csv", rows)
        made[actor] = {"seconds": round(len(audio) / AUDIO_RATE, 2), "turns": len(rows)}
        print(f"wrote {out / actor}.flac and .csv ({len(rows)} turns)", file=sys.stderr)
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="../shared/data/ravdess-speech-16k")
    parser.add_argument("--actors", nargs="+", type=int, default=[15, 16, 17, 18])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clips", type=int, help="clips per actor (default: all)")
    parser.add_argument("--snr-db", type=float, default=SNR_DB)
    args = parser.parse_args(argv)
    if args.clips is not None and args.clips < 1:
        parser.error(f"--clips: expected >= 1, got {args.clips}")
    actors = [f"Actor_{a:02d}" for a in args.actors]
    made = build(args.root, actors, args.out, args.seed, args.clips, args.snr_db)
    print(json.dumps({"out": str(args.out), "seed": args.seed, "recordings": made}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
