"""Voice activity: which 32 ms frames of a 16 kHz stream hold speech, and where turns begin
and end.

Two frame detectors share one interface (``score(frame) -> float`` in [0, 1], ``reset()``):

- :class:`EnergyDetector`: the frame's level against a tracked noise floor (no model);
- :class:`SileroDetector`: Silero VAD's speech probability (the MIT-licensed ONNX model that
  ships inside the ``silero-vad`` wheel; nothing is downloaded).

:class:`TurnTracker` turns frame scores into turns with hysteresis: a turn starts after
``onset_s`` of speech frames and ends after ``hangover_s`` without one; a turn shorter than
``min_turn_s`` of speech is dropped (and counted), one longer than ``max_turn_s`` is cut
there, so no turn holds unbounded audio. :func:`detect_turns` runs it over a whole signal.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from avemotion.encoders.media import AUDIO_RATE

FRAME_SAMPLES = 512
"""Samples per VAD frame (32 ms at 16 kHz): Silero's frame; the energy detector uses the
same frames so the two are compared frame for frame."""
FRAME_S = FRAME_SAMPLES / AUDIO_RATE


class EnergyDetector:
    """Speech where the frame's level exceeds the noise floor by ``margin_db`` and
    ``min_db`` (dBFS). The floor follows quieter frames at once and rises by at most
    ``rise_db_per_s`` (so several seconds of speech barely lift it)."""

    name = "energy"

    def __init__(
        self, margin_db: float = 12.0, min_db: float = -55.0, rise_db_per_s: float = 1.5
    ) -> None:
        self.margin_db, self.min_db = float(margin_db), float(min_db)
        self.rise_db = float(rise_db_per_s) * FRAME_S
        self.reset()

    def reset(self) -> None:
        self.floor_db: float | None = None

    def score(self, frame: np.ndarray) -> float:
        x = np.asarray(frame, dtype=np.float64)
        level = 10.0 * math.log10(float(np.mean(x * x)) + 1e-12)
        floor = level if self.floor_db is None else min(level, self.floor_db + self.rise_db)
        self.floor_db = floor
        return float(level >= floor + self.margin_db and level >= self.min_db)


class SileroDetector:
    """Silero VAD's speech probability per frame, from the model inside the ``silero-vad``
    package: its ONNX file through ONNX Runtime (one thread), or its TorchScript file (the
    same network, about 10x slower) when ONNX Runtime is absent. Raises ``ValueError``
    naming the extra to install when the package is absent."""

    name = "silero"

    def __init__(self) -> None:
        import importlib.util

        import torch

        if importlib.util.find_spec("silero_vad") is None:
            raise ValueError(
                "--vad silero: the silero-vad package is not installed: pip install -e '.[vad]' "
                "(or use --vad energy)"
            )
        from silero_vad import load_silero_vad

        threads = torch.get_num_threads()
        onnx = importlib.util.find_spec("onnxruntime") is not None
        self.model = load_silero_vad(onnx=onnx)
        torch.set_num_threads(threads)  # importing silero_vad sets torch to one thread
        self._torch = torch

    def reset(self) -> None:
        self.model.reset_states()

    def score(self, frame: np.ndarray) -> float:
        x = self._torch.from_numpy(np.ascontiguousarray(frame, dtype=np.float32))
        with self._torch.no_grad():
            return float(self.model(x, AUDIO_RATE))


DETECTORS = {"energy": EnergyDetector, "silero": SileroDetector}


def make_detector(name: str) -> EnergyDetector | SileroDetector:
    """The frame detector called ``name`` (``energy`` or ``silero``)."""
    if name not in DETECTORS:
        raise ValueError(f"--vad: expected one of {', '.join(DETECTORS)}, got {name!r}")
    return DETECTORS[name]()


@dataclass(frozen=True)
class TurnConfig:
    """How frame scores become turns (seconds; pauses between turns are >= 0.4 s)."""

    threshold: float = 0.5
    """A frame is speech when its score is at least this (starting a turn)."""
    keep_threshold: float = 0.35
    """Inside a turn a frame still counts as speech down to this (Silero's own hysteresis)."""
    onset_s: float = 0.064
    """Speech needed to start a turn (2 frames): one loud click starts none."""
    hangover_s: float = 0.3
    """Non-speech that ends a turn: longer than a pause inside a sentence, shorter than the
    shortest pause between turns."""
    min_turn_s: float = 0.25
    """Turns with less speech than this are dropped as noise bursts (and counted)."""
    max_turn_s: float = 30.0
    """A turn is cut here, so one never holds unbounded audio."""

    def frames(self, seconds: float) -> int:
        return max(1, round(seconds / FRAME_S))


@dataclass
class TurnEvent:
    """A turn began (``kind="start"``) or ended (``"end"``), at frame boundaries."""

    kind: str
    start_s: float
    """Start of the turn's first speech frame."""
    end_s: float | None = None
    """End of its last speech frame (``end`` events only)."""
    dropped: bool = False
    """An ``end`` event of a turn too short to count (see ``min_turn_s``)."""
    heard_s: float = 0.0
    """The end of the frame that completed the event: the audio heard when it was known."""


class TurnTracker:
    """Frame scores → turn start and end events, by hysteresis (see :class:`TurnConfig`).

    ``push(samples)`` takes audio in any chunking and returns the events it completes; frame
    times count from the stream's start (``skip`` moves the clock over a gap). The start
    event comes ``onset_s`` after the turn's first speech frame; the end event ``hangover_s``
    after its last one.
    """

    def __init__(self, detector: EnergyDetector | SileroDetector, config: TurnConfig) -> None:
        self.detector, self.config = detector, config
        self.onset_frames = config.frames(config.onset_s)
        self._hangover = config.frames(config.hangover_s)
        self._max = config.frames(config.max_turn_s)
        self._pending = np.zeros(0, dtype=np.float32)
        self.frame = 0
        """Frames scored so far (the clock, in frames)."""
        self.dropped = 0
        """Turns dropped as shorter than ``min_turn_s``."""
        self._reset_turn()

    def _reset_turn(self) -> None:
        self.in_turn = False
        self._run = 0  # consecutive speech frames before a start
        self._first = 0  # the turn's (or candidate's) first speech frame
        self._last = 0  # the turn's last speech frame
        self._speech = 0  # speech frames in the turn

    def time_s(self, frame: int) -> float:
        return frame * FRAME_S

    def push(self, samples: np.ndarray) -> list[TurnEvent]:
        """Score the complete frames of ``samples`` (with any left from the last call)."""
        data = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32)])
        whole = len(data) // FRAME_SAMPLES * FRAME_SAMPLES
        self._pending = data[whole:]
        events: list[TurnEvent] = []
        for offset in range(0, whole, FRAME_SAMPLES):
            event = self._step(self.detector.score(data[offset : offset + FRAME_SAMPLES]))
            if event is not None:
                events.append(event)
        return events

    def _step(self, score: float) -> TurnEvent | None:
        index, self.frame = self.frame, self.frame + 1
        if not self.in_turn:
            self._run = self._run + 1 if score >= self.config.threshold else 0
            if self._run == 1:
                self._first = index
            if self._run < self.onset_frames:
                return None
            self.in_turn, self._last, self._speech = True, index, self._run
            return TurnEvent("start", self.time_s(self._first), heard_s=self.time_s(index + 1))
        if score >= self.config.keep_threshold:
            self._last, self._speech = index, self._speech + 1
        if index - self._last >= self._hangover or index + 1 - self._first >= self._max:
            return self._end(index + 1)
        return None

    def _end(self, heard: int) -> TurnEvent:
        dropped = self._speech * FRAME_S < self.config.min_turn_s
        self.dropped += dropped
        event = TurnEvent(
            "end",
            self.time_s(self._first),
            self.time_s(self._last + 1),
            dropped=dropped,
            heard_s=self.time_s(heard),
        )
        self._reset_turn()
        return event

    def finish(self) -> list[TurnEvent]:
        """End of stream: close a turn in progress (its end is its last speech frame)."""
        self._pending = np.zeros(0, dtype=np.float32)
        return [self._end(self.frame)] if self.in_turn else []

    def skip_to(self, time_s: float) -> list[TurnEvent]:
        """A gap in the stream (a corrupt stretch left out): close the turn in progress and
        move the clock to the frame boundary nearest ``time_s``; the detector starts afresh."""
        events = self.finish()
        self._reset_turn()
        self.frame = max(self.frame, round(time_s / FRAME_S))
        self.detector.reset()
        return events


def detect_turns(
    audio: np.ndarray,
    detector: EnergyDetector | SileroDetector,
    config: TurnConfig | None = None,
    chunk: int = 1600,
) -> list[tuple[float, float]]:
    """The ``(start_s, end_s)`` of every turn kept in ``audio`` (16 kHz mono), streamed in
    ``chunk``-sample pieces exactly as a live stream is."""
    tracker = TurnTracker(detector, config or TurnConfig())
    detector.reset()
    events: list[TurnEvent] = []
    for offset in range(0, len(audio), chunk):
        events += tracker.push(audio[offset : offset + chunk])
    events += tracker.finish()
    return _kept(events)


def _kept(events: Iterable[TurnEvent]) -> list[tuple[float, float]]:
    return [(e.start_s, e.end_s) for e in events if e.kind == "end" and not e.dropped]  # type: ignore[misc]
