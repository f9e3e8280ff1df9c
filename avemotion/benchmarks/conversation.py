"""Multi-turn recordings with known turns: utterances joined with pauses and light noise.

:func:`join_utterances` lays utterances end to end with seeded pauses (0.4–2.0 s by
default) and adds white noise ``snr_db`` below the recording's level; it returns the audio
and one row per turn (``start``, ``end``, ``label`` and where the utterance came from).
:func:`synthetic_utterance` makes a voiced, syllable-modulated tone for recordings that
need no real speech (the memory benchmark, tests); ``experiments/make_conversation.py``
joins RAVDESS clips.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avemotion.encoders.media import AUDIO_RATE

PAUSE_S = (0.4, 2.0)
"""Pauses between utterances: uniform in this range (seconds)."""
SNR_DB = 30.0
"""Light background noise: white noise this far below the recording's RMS level."""
COLUMNS = ("start", "end", "label", "clip_id", "speaker")


@dataclass(frozen=True)
class Utterance:
    """One utterance to join: its samples (16 kHz mono) and what it is."""

    audio: np.ndarray
    label: str
    clip_id: str
    speaker: str


def join_utterances(
    utterances: Sequence[Utterance],
    seed: int,
    pause_s: tuple[float, float] = PAUSE_S,
    snr_db: float = SNR_DB,
) -> tuple[np.ndarray, list[dict[str, object]]]:
    """The recording (float32) and its turn rows; a pause also precedes the first turn."""
    if not utterances:
        raise ValueError("utterances: nothing to join")
    low, high = pause_s
    if not 0 < low <= high:
        raise ValueError(f"pause_s: expected 0 < low <= high, got {pause_s}")
    rng = np.random.default_rng(seed)
    pauses = rng.uniform(low, high, len(utterances))
    pieces, rows, at = [], [], 0
    for pause, utterance in zip(pauses, utterances):
        gap = round(pause * AUDIO_RATE)
        pieces += [np.zeros(gap, np.float32), np.asarray(utterance.audio, np.float32)]
        start = at + gap
        at = start + len(utterance.audio)
        rows.append(_row(start, at, utterance))
    pieces.append(np.zeros(round(pauses[0] * AUDIO_RATE), np.float32))
    audio = np.concatenate(pieces)
    level = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
    noise = rng.standard_normal(len(audio)) * level * 10 ** (-snr_db / 20)
    return (audio + noise).astype(np.float32), rows


def _row(start: int, end: int, utterance: Utterance) -> dict[str, object]:
    return {
        "start": round(start / AUDIO_RATE, 4),
        "end": round(end / AUDIO_RATE, 4),
        "label": utterance.label,
        "clip_id": utterance.clip_id,
        "speaker": utterance.speaker,
    }


def write_labels(path: str | os.PathLike[str], rows: Sequence[dict[str, object]]) -> Path:
    """The turn-level label file: one row per turn, columns :data:`COLUMNS`."""
    path = Path(path)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def synthetic_utterance(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """A voiced-speech stand-in: harmonics of a gliding 100–250 Hz pitch, amplitude
    modulated at a syllable rate of about 4 Hz, with 50 ms fades (float32, about -20 dBFS)."""
    n = round(seconds * AUDIO_RATE)
    t = np.arange(n) / AUDIO_RATE
    f0 = rng.uniform(100, 250) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * t))
    phase = 2 * np.pi * np.cumsum(f0) / AUDIO_RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * rng.uniform(3, 5) * t + rng.uniform(0, np.pi))
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.05)
    audio = voice * syllables * fade
    return (0.1 * audio / (np.sqrt(np.mean(audio**2)) + 1e-12)).astype(np.float32)


def synthetic_conversation(
    seconds: float, seed: int, chunk_s: float = 0.1, turn_s: tuple[float, float] = (1.0, 4.0)
) -> Iterator[np.ndarray]:
    """An endless-looking conversation of synthetic utterances, pauses and light noise,
    generated ``chunk_s`` at a time for ``seconds`` (nothing longer than a turn is held)."""
    rng = np.random.default_rng(seed)
    chunk, total, pending = round(chunk_s * AUDIO_RATE), round(seconds * AUDIO_RATE), None
    done = 0
    while done < total:
        if pending is None or not len(pending):
            utterance = Utterance(synthetic_utterance(rng, rng.uniform(*turn_s)), "", "", "")
            audio, rows = join_utterances([utterance], int(rng.integers(2**31)))
            pending = audio[: round(float(rows[0]["end"]) * AUDIO_RATE)]  # one pause per turn
        take = min(chunk, total - done, len(pending))
        yield pending[:take]
        pending, done = pending[take:], done + take
