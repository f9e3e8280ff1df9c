"""Driving a :class:`~avemotion.online.turns.TurnStreamer` from a source until it ends.

:func:`sound_file_stretches` reads a sound file (any rate libsndfile reads, resampled to
16 kHz as extraction resamples it) block by block and, where a stretch cannot be decoded,
names it (its start and end time) and goes on after it, so one corrupt stretch costs only
its own turns; other containers go through
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

import numpy as np

from avemotion.encoders.media import AUDIO_RATE, MediaError
from avemotion.online.alignment import StreamError
from avemotion.online.block_resampler import BlockResampler
from avemotion.online.container_stretches import container_stretches
from avemotion.online.sources import AUDIO_BLOCK, MediaChunk, one_line, stream_files
from avemotion.online.turns import Skipped, Turn, TurnStreamer

RESYNC_S = 0.1
"""After a read error the file is reopened this far on, until a block decodes again."""


def sound_file_stretches(path: str | os.PathLike[str]) -> Iterator[MediaChunk | Skipped]:
    """The audio of a sound file in 16 kHz chunks of about 0.1 s, with a :class:`Skipped`
    for each stretch that could not be decoded (the reading resumes ``RESYNC_S`` further
    on, the resampling afresh). Ogg files, and files libsndfile cannot read, go through
    :func:`container_stretches` (PyAV): libsndfile skips a damaged Ogg page without an
    error, so the later audio would come early, while the page's timestamps show it."""
    import soundfile

    path = Path(path)
    try:
        info = soundfile.info(str(path))
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        info = None
    if info is None or info.format == "OGG":  # libsndfile drops a bad Ogg page unsaid
        yield from container_stretches(path, False, True)
        return
    rate = info.samplerate
    block, resync = round(AUDIO_BLOCK * rate / AUDIO_RATE), round(RESYNC_S * rate)
    resampler = BlockResampler(rate)
    handle = soundfile.SoundFile(str(path))
    position, bad_from, reason = 0, None, ""
    try:
        while position < info.frames:
            try:
                if bad_from is not None:
                    handle.close()
                    handle = soundfile.SoundFile(str(path))
                    handle.seek(position)
                samples = handle.read(block, dtype="float32", always_2d=True)
            except (soundfile.LibsndfileError, RuntimeError) as error:
                if bad_from is None:
                    bad_from, reason = position, one_line(error)
                position += resync
                continue
            if not len(samples):
                break
            if bad_from is not None:
                yield from _audio(bad_from / rate, resampler.flush())
                resampler = BlockResampler(rate)
                yield Skipped(bad_from / rate, position / rate, f"{path}: corrupt audio ({reason})")
                bad_from = None
            position += len(samples)
            yield from _audio(position / rate, resampler.push(samples.mean(axis=1)))
        yield from _audio(min(position, info.frames) / rate, resampler.flush())
        if bad_from is not None:
            end = min(position, info.frames) / rate
            yield Skipped(bad_from / rate, end, f"{path}: corrupt audio ({reason})")
        elif position < info.frames:
            reached, declared = position / rate, info.frames / rate
            reason = f"audio truncated: it stops at {reached:.2f} s of {declared:.2f} s"
            yield Skipped(reached, declared, f"{path}: {reason}")
    finally:
        handle.close()


def _audio(end_s: float, samples: np.ndarray) -> Iterator[MediaChunk]:
    if len(samples):
        yield MediaChunk(end_s, audio=samples)


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
