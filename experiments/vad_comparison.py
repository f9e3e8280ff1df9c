"""Silero VAD against the energy detector: turn precision/recall (overlap matching) and cost.

Runs both frame detectors through the same :class:`~avemotion.online.vad.TurnTracker` on
(a) a synthetic conversation (voiced tones, pauses 0.4–2.0 s, light noise) and (b) the
recordings ``experiments/make_conversation.py`` wrote (RAVDESS clips joined the same way):

    python experiments/make_conversation.py --out /tmp/conversations
    python experiments/vad_comparison.py --recordings /tmp/conversations

Prints one JSON object: per detector, hangover and input, precision, recall, and
milliseconds of CPU per second of audio (one thread), and the recordings pooled
(``recordings``: every matched turn counts once). ``--hangovers`` compares turn-end
hangovers (choose them on training speakers' recordings, never on the test speakers').
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

from avemotion.benchmarks.conversation import Utterance, join_utterances, synthetic_utterance
from avemotion.encoders.media import AUDIO_RATE
from avemotion.online.turn_metrics import match_turns, read_labels
from avemotion.online.vad import TurnConfig, detect_turns, make_detector


def synthetic_recording(seed: int, turns: int = 60) -> tuple[np.ndarray, list[tuple[float, float]]]:
    rng = np.random.default_rng(seed)
    utterances = [
        Utterance(synthetic_utterance(rng, rng.uniform(1.0, 4.0)), "", f"u{i}", "synthetic")
        for i in range(turns)
    ]
    audio, rows = join_utterances(utterances, seed)
    return audio, [(float(r["start"]), float(r["end"])) for r in rows]


def measure(
    name: str, hangover: float, audio: np.ndarray, truth: list[tuple[float, float]]
) -> dict[str, float]:
    detector = make_detector(name)
    start = time.process_time()
    found = detect_turns(audio, detector, TurnConfig(hangover_s=hangover))
    cpu = time.process_time() - start
    pairs = match_turns(found, truth)
    return {
        "detected": len(found),
        "labelled": len(truth),
        "matched": len(pairs),
        "precision": round(len(pairs) / max(1, len(found)), 4),
        "recall": round(len(pairs) / max(1, len(truth)), 4),
        "cpu_ms_per_audio_s": round(1000 * cpu / (len(audio) / AUDIO_RATE), 3),
    }


def pooled(rows: list[dict[str, float]]) -> dict[str, float]:
    """Precision and recall over several recordings, every turn counted once."""
    found, labelled = sum(r["detected"] for r in rows), sum(r["labelled"] for r in rows)
    matched = sum(r["matched"] for r in rows)
    return {
        "detected": found,
        "labelled": labelled,
        "precision": round(matched / max(1, found), 4),
        "recall": round(matched / max(1, labelled), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recordings", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--hangovers", type=float, nargs="+", default=[TurnConfig().hangover_s], metavar="S"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    inputs = {"synthetic": synthetic_recording(args.seed)}
    for csv_file in sorted(args.recordings.glob("*.csv")):
        audio = soundfile.read(csv_file.with_suffix(".flac"), dtype="float32")[0]
        truth = [(r["start"], r["end"]) for r in read_labels(csv_file)]
        inputs[csv_file.stem] = (audio, truth)
    if len(inputs) == 1:
        parser.error(f"--recordings: no .csv + .flac pairs in {args.recordings}")
    result: dict[str, dict] = {}
    for name in ("energy", "silero"):
        for hangover in args.hangovers:
            rows = {key: measure(name, hangover, *value) for key, value in inputs.items()}
            rows["recordings"] = pooled([v for k, v in rows.items() if k != "synthetic"])
            result[f"{name} {hangover}"] = rows
            print(f"{name} {hangover}: {rows['recordings']}", file=sys.stderr)
    print(json.dumps({"seed": args.seed, "detectors": result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
