"""Driving a recognizer from a media source: pacing, decode timing, errors mid-stream.

:func:`run_stream` pulls chunks from a source (:mod:`avemotion.online.sources`), feeds them
to an :class:`~avemotion.online.recognizer.OnlineRecognizer` and reports every step once it
is final (an undecided step is held back until the next one arrives, since the stream's end
may still turn it into the forced answer). With ``realtime`` a chunk is fed no earlier than
its stream time after the start, as a live source would deliver it. When the source breaks
mid-stream, :class:`StreamInterrupted` carries the error and the summary of the steps
decided before the break.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from avemotion.encoders.media import MediaError
from avemotion.online.alignment import StreamError
from avemotion.online.recognizer import OnlineRecognizer, StepResult
from avemotion.online.sources import MediaChunk


class StreamInterrupted(StreamError):
    """The stream broke before its end; ``summary`` holds what was decided before."""

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = summary


def run_stream(
    recognizer: OnlineRecognizer,
    chunks: Iterator[MediaChunk],
    realtime: bool = False,
    on_step: Callable[[StepResult], None] | None = None,
    stop_reading_on_decision: bool = False,
) -> dict[str, Any]:
    """Stream ``chunks`` through ``recognizer``; return its summary (see ``finish``).

    ``stop_reading_on_decision`` stops pulling the source once the agent has answered (a
    live device); otherwise the rest is read only to count the stream's steps.
    """
    emit = on_step or (lambda step: None)
    held: list[StepResult] = []
    start = time.monotonic()

    def report(results: list[StepResult]) -> None:
        for result in results:
            while held:
                emit(held.pop())
            if result.action == 0:
                held.append(result)
            else:
                emit(result)

    iterator = iter(chunks)
    try:
        while True:
            with recognizer.times.stage("decode"):
                chunk = next(iterator, None)
            if chunk is None:
                break
            if realtime and not recognizer.decided:
                delay = start + chunk.end_s - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            if chunk.frames is not None:
                report(recognizer.feed_video(chunk.frames, chunk.times or [], chunk.fps))
            if chunk.audio is not None:
                report(recognizer.feed_audio(chunk.audio))
            if recognizer.decided and stop_reading_on_decision:
                break
    except (MediaError, StreamError) as error:
        for result in held:
            emit(result)
        raise StreamInterrupted(str(error), recognizer.summary()) from None
    summary = recognizer.finish()
    for result in held:
        emit(result)
    return summary


def clip_decisions(
    run_dir: str | os.PathLike[str], audio_files: Iterable[str | os.PathLike[str]]
) -> list[tuple[int, int]]:
    """``(class index, steps observed)`` of each audio file streamed alone through the run
    (a new utterance each): what ``avemotion evaluate`` gives each clip's store row
    (:func:`~avemotion.evaluation.evaluate.sweep_run`)."""
    from avemotion.encoders.media import load_audio

    recognizer = OnlineRecognizer.from_run(run_dir)
    decisions = []
    try:
        for path in audio_files:
            recognizer.new_utterance()
            recognizer.feed_audio(load_audio(path))
            summary = recognizer.finish()
            prediction = recognizer.class_names.index(summary["decision"])
            decisions.append((prediction, summary["decision_step"] + 1))
    finally:
        recognizer.close()
    return decisions
