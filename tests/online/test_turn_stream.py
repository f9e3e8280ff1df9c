"""Sound files of any rate in a turn stream: extraction's samples block by block, and a
corrupt stretch named within one 0.1 s read block of the damaged frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from avemotion.encoders.media import load_audio
from avemotion.online.chunks import Skipped
from avemotion.online.turn_stream import sound_file_stretches


def signal(rate: int, seconds: float = 8.0) -> np.ndarray:
    rng = np.random.default_rng(rate)
    t = np.arange(round(seconds * rate)) / rate
    voice = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(np.pi * t))
    return (voice + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def stream(path: Path) -> tuple[list[np.ndarray], list[Skipped]]:
    """The audio between skipped stretches (one array per stretch of good audio), and the
    stretches."""
    pieces: list[list[np.ndarray]] = [[]]
    skipped = []
    for chunk in sound_file_stretches(path):
        if isinstance(chunk, Skipped):
            skipped.append(chunk)
            pieces.append([])
        else:
            assert chunk.audio is not None and len(chunk.audio) <= 1600 + 160
            pieces[-1].append(chunk.audio)
    return [np.concatenate(p) if p else np.zeros(0, np.float32) for p in pieces], skipped


@pytest.mark.parametrize("rate, name", [(22050, "talk.wav"), (44100, "talk.flac")])
def test_intact_files_give_extractions_samples(
    damaged_media: Any, tmp_path: Path, rate: int, name: str
) -> None:
    path = damaged_media.write(tmp_path / name, signal(rate), rate)
    (audio,), skipped = stream(path)
    assert skipped == []
    extracted = load_audio(path)  # the whole file resampled at once
    assert len(audio) == len(extracted) == 8 * 16000
    np.testing.assert_allclose(audio, extracted, atol=1e-4)


@pytest.mark.parametrize("rate", [22050, 44100])
def test_damaged_flac_frames_are_named_and_the_rest_kept(
    damaged_media: Any, tmp_path: Path, rate: int
) -> None:
    """Frames 25–27 (4096 samples each) of a FLAC file overwritten after their headers:
    libFLAC fails them (bad checksums); the stretch named starts within the 0.1 s read
    block before the first one and ends within 0.1 s after the last, the audio on both
    sides is extraction's, and the audio after it starts at the stretch's end."""
    intact = damaged_media.write(tmp_path / "intact.flac", signal(rate), rate)
    path = tmp_path / "talk.flac"
    path.write_bytes(intact.read_bytes())
    frames = damaged_media.packets(path)
    damaged_media.overwrite(path, [(pos + 16, pos + size) for _, pos, size in frames[25:28]])
    start, end = frames[25][0], frames[28][0]  # 25·4096/rate … 28·4096/rate s
    assert (start, end) == pytest.approx((25 * 4096 / rate, 28 * 4096 / rate))
    (before, after), (skipped,) = stream(path)
    assert skipped.reason.startswith(f"{path}: corrupt audio (") and skipped.track == "audio"
    assert start - 0.1 <= skipped.start_s <= start and end <= skipped.end_s <= end + 0.1
    extracted = load_audio(intact)
    first, resume = round(skipped.start_s * 16000), round(skipped.end_s * 16000)
    assert len(before) == first and len(after) == len(extracted) - resume
    edge = 32  # the resampler's zero padding at a cut reaches this far
    np.testing.assert_allclose(before[:-edge], extracted[: first - edge], atol=1e-4)
    np.testing.assert_allclose(after[edge:], extracted[resume + edge :], atol=1e-4)


def test_a_truncated_flac_names_its_missing_end(damaged_media: Any, tmp_path: Path) -> None:
    """A 44.1 kHz FLAC file cut at 60 % of its bytes: the stretch from the read block with
    the first incomplete frame to the declared end (8 s) is named."""
    path = damaged_media.write(tmp_path / "talk.flac", signal(44100), 44100)
    frames = damaged_media.packets(path)
    data = path.read_bytes()
    cut = int(len(data) * 0.6)
    path.write_bytes(data[:cut])
    broken = next(t for t, pos, size in frames if pos + size > cut)  # first incomplete frame
    (before, _), (skipped,) = stream(path)
    assert skipped.reason.startswith(f"{path}: corrupt audio (")
    assert broken - 0.1 <= skipped.start_s <= broken and skipped.end_s == 8.0
    assert len(before) == round(skipped.start_s * 16000)
