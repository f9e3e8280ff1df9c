"""Sound files (anything libsndfile reads) as a stream: 0.1 s blocks, resampled to 16 kHz
as extraction resamples them (:class:`~avemotion.online.block_resampler.BlockResampler`).

:func:`sound_file_blocks` names each stretch that cannot be decoded with a
:class:`~avemotion.online.chunks.Skipped` and reads on after it (a turn stream goes on);
:func:`sound_file_chunks` is the same reading for one clip, which stops at the first break
with :class:`~avemotion.encoders.media.MediaError`, as extraction refuses such a file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from avemotion.encoders.media import AUDIO_RATE, MediaError, one_line
from avemotion.online.block_resampler import BlockResampler
from avemotion.online.chunks import MediaChunk, Skipped

AUDIO_BLOCK = 1600
"""Samples per chunk at 16 kHz (0.1 s); a file at another rate is read in blocks of the
same duration."""
RESYNC_S = 0.1
"""After a read error the file is reopened this far on, until a block decodes again."""


def sound_file_info(path: str | os.PathLike[str]) -> Any | None:
    """libsndfile's description of ``path``, or ``None`` when it cannot read the file."""
    import soundfile

    try:
        return soundfile.info(str(path))
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        return None


def sound_file_blocks(path: Path, info: Any) -> Iterator[MediaChunk | Skipped]:
    """The audio of ``path`` (described by ``info``) in 16 kHz chunks of about 0.1 s, with a
    :class:`Skipped` for each stretch that could not be decoded (the reading resumes
    ``RESYNC_S`` further on, the resampling afresh) and for a missing end."""
    import soundfile

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


def sound_file_chunks(path: Path) -> Iterator[MediaChunk] | None:
    """The chunks of a sound file for one clip, stopping with :class:`MediaError` at the
    first stretch that cannot be decoded (after the chunks before it); ``None`` when
    libsndfile cannot read the file."""
    info = sound_file_info(path)
    if info is None:
        return None

    def chunks() -> Iterator[MediaChunk]:
        for chunk in sound_file_blocks(path, info):
            if isinstance(chunk, Skipped):
                raise MediaError(f"{chunk.reason}, from {chunk.start_s:.2f} s")
            yield chunk

    return chunks()


def _audio(end_s: float, samples: np.ndarray) -> Iterator[MediaChunk]:
    if len(samples):
        yield MediaChunk(end_s, audio=samples)
