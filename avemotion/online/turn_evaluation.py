"""The offline twin of ``stream --turns``: stream recordings with turn-level labels and
score them (:mod:`avemotion.online.turn_metrics`), each recording and pooled."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from avemotion.online.recognizer import OnlineRecognizer
from avemotion.online.turn_metrics import harmonic_mean, read_labels, score_turns
from avemotion.online.turn_stream import run_turns, sound_file_stretches
from avemotion.online.turns import TurnStreamer
from avemotion.online.vad import TurnConfig, TurnTracker, make_detector

Recording = tuple[Path, Path]
"""An audio file and its label CSV."""


def corpus_recordings(folder: str | os.PathLike[str]) -> tuple[list[Recording], list[str]]:
    """The ``NAME.csv`` files of ``folder`` with their audio (``NAME.flac`` or ``.wav``), and
    one line per CSV left out for want of audio."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"--corpus: {folder}: not a folder")
    found, unused = [], []
    for labels in sorted(folder.glob("*.csv")):
        audio = next(
            (p for p in (labels.with_suffix(".flac"), labels.with_suffix(".wav")) if p.is_file()),
            None,
        )
        if audio is None:
            unused.append(f"{labels}: no {labels.stem}.flac or .wav beside it")
        else:
            found.append((audio, labels))
    if not found:
        raise ValueError(f"--corpus: {folder}: no NAME.csv with NAME.flac or NAME.wav")
    return found, unused


def evaluate_turns(
    recognizer: OnlineRecognizer,
    recordings: Sequence[Recording],
    vad: str = "silero",
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Stream each recording through ``recognizer`` with detector ``vad``; score it against
    its labels; pool detection counts, answers and earliness over all recordings."""
    per_recording: dict[str, Any] = {}
    for audio, labels in recordings:
        rows = read_labels(labels)
        streamer = TurnStreamer(recognizer, TurnTracker(make_detector(vad), TurnConfig()))
        start = time.perf_counter()
        summary = run_turns(streamer, sound_file_stretches(audio))
        seconds = time.perf_counter() - start
        turns = [t.to_json() for t in streamer.turns]
        score = score_turns(turns, rows)
        score.update(
            real_time_factor=round(seconds / max(summary["stream_s"], 1e-9), 4),
            skipped=summary["skipped"],
            forced=summary["forced"],
        )
        if "error" in summary:
            score["error"] = summary["error"]
        truth = {i: rows[j] for i, j in score.pop("pairs")}
        score["turns"] = [
            {
                **turn,
                "true_label": truth[i]["label"] if i in truth else None,
                "clip_id": truth[i].get("clip_id") if i in truth else None,
            }
            for i, turn in enumerate(turns)
        ]
        per_recording[str(audio)] = score
        if progress is not None:
            progress(
                f"{audio}: {score['matched']}/{score['labelled']} turns matched, accuracy {score['accuracy']:.3f}"
            )
    return {"vad": vad, "pooled": pool(per_recording.values()), "recordings": per_recording}


def pool(scores: Any) -> dict[str, Any]:
    """Detection and answers pooled over recordings (every matched turn counts once)."""
    scores = list(scores)
    detected = sum(s["detected"] for s in scores)
    labelled = sum(s["labelled"] for s in scores)
    matched = sum(s["matched"] for s in scores)
    correct = sum(s["accuracy"] * s["matched"] for s in scores)
    early = sum(s["earliness"] * s["matched"] for s in scores)
    accuracy = correct / matched if matched else 0.0
    earliness = early / matched if matched else 1.0
    return {
        "detected": detected,
        "labelled": labelled,
        "matched": matched,
        "precision": matched / detected if detected else 0.0,
        "recall": matched / labelled if labelled else 0.0,
        "accuracy": accuracy,
        "earliness": earliness,
        "harmonic_mean": harmonic_mean(accuracy, earliness),
        "forced": sum(s["forced"] for s in scores),
    }
