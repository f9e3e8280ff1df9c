"""Driving a :class:`~avemotion.online.turns.TurnStreamer` from a source until it ends.

:func:`sound_file_stretches` reads a sound file (any rate libsndfile reads, resampled to
16 kHz as extraction resamples it, :mod:`avemotion.online.sound_files`) and, where a stretch
cannot be decoded, names it (its start and end time) and goes on after it, so one corrupt
stretch costs only its own turns; other containers go through
:func:`~avemotion.online.container_stretches.container_stretches`, which does the same for
what FFmpeg reports. :func:`run_turns` pulls a source to its end; a source that breaks for
good (a capture device that disappears, a container that cannot be read on) ends the run
with the turn in progress answered and the error in the summary.
"""

from __future__ import annotations

import heapq
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from avemotion.encoders.media import MediaError, one_line
from avemotion.online.alignment import StreamError
from avemotion.online.chunks import MediaChunk, Skipped
from avemotion.online.container_stretches import container_stretches
from avemotion.online.sound_files import sound_file_blocks, sound_file_info
from avemotion.online.sources import stream_files
from avemotion.online.turns import Turn, TurnStreamer


def sound_file_stretches(path: str | os.PathLike[str]) -> Iterator[MediaChunk | Skipped]:
    """The audio of a sound file in 16 kHz chunks of about 0.1 s, each stretch that could
    not be decoded named and skipped (:func:`~avemotion.online.sound_files.sound_file_blocks`).
    Ogg files, and files libsndfile cannot read, go through :func:`container_stretches`
    (PyAV): libsndfile skips a damaged Ogg page without an error, so the later audio would
    come early, while the page's timestamps show it."""
    path = Path(path)
    info = sound_file_info(path)
    if info is None or info.format == "OGG":  # libsndfile drops a bad Ogg page unsaid
        return container_stretches(path, False, True)
    return sound_file_blocks(path, info)


def turn_file_stretches(
    video: str | os.PathLike[str] | None, audio: str | os.PathLike[str] | None, need_video: bool
) -> Iterator[MediaChunk | Skipped]:
    """A turn stream's files (the audio of ``audio``, else of ``video``; the frames of
    ``video`` when the run needs them), merged in stream-time order, damaged stretches
    named and skipped. Raises :class:`MediaError` for a missing file or track."""
    video_path, audio_path = stream_files(video, audio, need_video, True)
    assert audio_path is not None
    if video_path is None:
        return sound_file_stretches(audio_path)
    if audio_path == video_path:
        return container_stretches(video_path, True, True)
    return heapq.merge(
        container_stretches(video_path, True, False),
        sound_file_stretches(audio_path),
        key=lambda chunk: chunk.end_s,
    )


def run_turns(
    streamer: TurnStreamer,
    chunks: Iterator[MediaChunk | Skipped],
    realtime: bool = False,
    on_turn: Callable[[Turn], None] | None = None,
    on_skip: Callable[[Skipped], None] | None = None,
) -> dict[str, Any]:
    """Stream ``chunks`` to their end; report each turn as it is answered; return the
    summary (with ``error`` when the source broke for good)."""
    emit = on_turn or (lambda turn: None)
    start = time.monotonic()
    error = None
    try:
        for chunk in chunks:
            if isinstance(chunk, Skipped):
                done = streamer.skip(chunk.start_s, chunk.end_s, chunk.reason, chunk.track)
                if on_skip is not None:
                    on_skip(chunk)
            else:
                if realtime:
                    delay = start + chunk.end_s - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                if chunk.frames is not None:
                    streamer.feed_video(chunk.frames, chunk.times or [], chunk.fps)
                done = streamer.feed_audio(chunk.audio) if chunk.audio is not None else []
            for turn in done:
                emit(turn)
    except (MediaError, StreamError) as broken:
        error = one_line(broken)
    for turn in streamer.finish():
        emit(turn)
    summary = streamer.summary()
    return summary if error is None else {**summary, "error": error}
