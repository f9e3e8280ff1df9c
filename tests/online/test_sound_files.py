"""One clip's sound file as a stream (``file_chunks``): any rate libsndfile reads gives
extraction's samples, and the stream stops at a corrupt stretch, naming the file and when."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from avemotion.encoders.media import MediaError, load_audio
from avemotion.online.sound_files import sound_file_chunks
from avemotion.online.sources import file_chunks


def tone(rate: int, seconds: float = 4.0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    noise = 0.01 * np.random.default_rng(rate).standard_normal(len(t))
    return (0.3 * np.sin(2 * np.pi * 220 * t) + noise).astype(np.float32)


@pytest.mark.parametrize("rate, name", [(16000, "clip.flac"), (22050, "clip.wav")])
def test_a_clip_of_any_rate_streams_extractions_samples(
    damaged_media: Any, tmp_path: Path, rate: int, name: str
) -> None:
    path = damaged_media.write(tmp_path / name, tone(rate), rate)
    chunks = list(file_chunks(None, path, False, True))
    audio = np.concatenate([chunk.audio for chunk in chunks])
    extracted = load_audio(path)
    assert len(audio) == len(extracted) == 4 * 16000
    np.testing.assert_allclose(audio, extracted, atol=1e-4)
    assert chunks[-1].end_s == pytest.approx(4.0)  # the clock reaches the file's end


def test_a_clip_stops_at_its_corrupt_stretch(damaged_media: Any, tmp_path: Path) -> None:
    """Frames 10–11 (4096 samples each) of a 44.1 kHz FLAC overwritten: the clip's stream
    delivers the audio before them, then raises naming the file and the stretch's start
    (within the 0.1 s read block before 10 · 4096 / 44100 = 0.93 s)."""
    path = damaged_media.write(tmp_path / "clip.flac", tone(44100), 44100)
    frames = damaged_media.packets(path)
    damaged_media.overwrite(path, [(pos + 16, pos + size) for _, pos, size in frames[10:12]])
    delivered = []
    with pytest.raises(MediaError, match=r"clip\.flac: corrupt audio \(.*\), from 0\.[89]\d s"):
        for chunk in file_chunks(None, path, False, True):
            delivered.append(chunk.audio)
    start = 10 * 4096 / 44100
    assert start - 0.1 <= len(np.concatenate(delivered)) / 16000 <= start


def test_a_file_libsndfile_cannot_read_is_left_to_pyav(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp3"
    path.write_bytes(b"not a sound file")
    assert sound_file_chunks(path) is None
