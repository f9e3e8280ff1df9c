"""Driving a :class:`~avemotion.online.turns.TurnStreamer` from a source until it ends.

:func:`sound_file_stretches` reads a 16 kHz sound file block by block and, where a stretch
cannot be decoded, names it (its start and end time) and goes on after it, so one corrupt
stretch costs only its own turns. :func:`run_turns` pulls a source to its end; a source
that breaks for good (a capture device that disappears, a container that cannot go on) ends
the run with the turn in progress answered and the error in the summary.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from avemotion.encoders.media import AUDIO_RATE, MediaError
from avemotion.online.alignment import StreamError
from avemotion.online.sources import AUDIO_BLOCK, MediaChunk, file_chunks
from avemotion.online.turns import Skipped, Turn, TurnStreamer

RESYNC_S = 0.1
"""After a read error the file is reopened this far on, until a block decodes again."""


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def sound_file_stretches(path: str | os.PathLike[str]) -> Iterator[MediaChunk | Skipped]:
    """The audio of a 16 kHz sound file in 0.1 s chunks, with a :class:`Skipped` for each
    stretch that could not be decoded (the reading resumes ``RESYNC_S`` steps further on).
    Files soundfile cannot read at 16 kHz go through :func:`file_chunks` (PyAV), which
    stops at the first break."""
    import soundfile

    path = Path(path)
    try:
        info = soundfile.info(str(path))
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        info = None
    if info is None or info.samplerate != AUDIO_RATE:
        yield from file_chunks(None, path, False, True)
        return
    handle = soundfile.SoundFile(str(path))
    position, bad_from = 0, None
    try:
        while position < info.frames:
            try:
                if bad_from is not None:
                    handle.close()
                    handle = soundfile.SoundFile(str(path))
                    handle.seek(position)
                block = handle.read(AUDIO_BLOCK, dtype="float32", always_2d=True)
            except (soundfile.LibsndfileError, RuntimeError) as error:
                if bad_from is None:
                    bad_from, reason = position, _one_line(error)
                position += round(RESYNC_S * AUDIO_RATE)
                continue
            if not len(block):
                break
            if bad_from is not None:
                yield Skipped(
                    bad_from / AUDIO_RATE,
                    position / AUDIO_RATE,
                    f"{path}: corrupt audio ({reason})",
                )
                bad_from = None
            position += len(block)
            yield MediaChunk(position / AUDIO_RATE, audio=block.mean(axis=1))
        if bad_from is not None:
            end = min(position, info.frames) / AUDIO_RATE
            yield Skipped(bad_from / AUDIO_RATE, end, f"{path}: corrupt audio ({reason})")
    finally:
        handle.close()


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
                done = streamer.skip(chunk.start_s, chunk.end_s, chunk.reason)
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
        error = _one_line(broken)
    for turn in streamer.finish():
        emit(turn)
    summary = streamer.summary()
    return summary if error is None else {**summary, "error": error}
