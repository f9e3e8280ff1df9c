"""Containers in a turn stream: damaged stretches named with their times and left out.

Damage FFmpeg reports is tested here on real files written with PyAV: audio packets that
fail to decode (AAC, FLAC with a bad checksum), Ogg pages dropped for a bad checksum (a
timestamp jump), video packets that fail to decode. Damage it conceals with neither an
error nor a timestamp jump (corrupt Opus or MP3 payloads, corrupt PCM samples, H.264
slices with bad bits) is played as decoded and cannot be named: it is not tested.
"""

from __future__ import annotations

import bisect
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from avemotion.encoders.media import load_audio
from avemotion.online.chunks import Skipped
from avemotion.online.container_stretches import AudioClock, container_stretches
from avemotion.online.sources import MediaChunk

RATE = 44100


def tone(seconds: float = 6.0, rate: int = RATE) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(np.pi * t))).astype(np.float32)


def read(path: Path, video: bool = False) -> tuple[np.ndarray, list[tuple[Skipped, int]], int]:
    """The audio of a container stream, its skipped stretches (each with the number of
    samples delivered before it) and its number of video frames."""
    audio, skipped, frames, samples = [], [], 0, 0
    for chunk in container_stretches(path, video, True):
        if isinstance(chunk, Skipped):
            skipped.append((chunk, samples))
        elif chunk.frames is not None:
            frames += 1
        else:
            audio.append(chunk.audio)
            samples += len(chunk.audio)
    return np.concatenate(audio), skipped, frames


def first_frame_time(path: Path) -> float:
    with av.open(str(path)) as container:
        return float(next(container.decode(audio=0)).time)


def frame(seconds: float, pts: float | None) -> Any:
    """A 16 kHz PyAV audio frame of ``seconds`` of silence at container time ``pts``."""
    out = av.AudioFrame.from_ndarray(
        np.zeros((1, round(seconds * 16000)), np.float32), format="flt", layout="mono"
    )
    out.sample_rate, out.time_base = 16000, Fraction(1, 16000)
    out.pts = None if pts is None else round(pts * 16000)
    return out


def test_timestamp_jumps_and_failed_packets_by_hand() -> None:
    """0.1 s frames at container times 1.0, 1.1 (the stream's origin is 1.0), then 1.5: a
    jump of 0.3 s past the clock (0.2 s), named 0.2–0.5 s, the clock moved to 0.5; a frame
    without a time continues at 0.6; one at 1.65 (0.05 s behind the clock's 0.7) is no
    gap; a packet fails at the clock's 0.8 s and the next good frame is at 2.0 (1.0 s);
    the track stops at 1.1 s of its declared 1.5 s."""
    clock = AudioClock(Path("talk.mkv"))
    out: list[MediaChunk | Skipped] = []
    for at in (1.0, 1.1, 1.5, None, 1.65):
        out += clock.frame(frame(0.1, at), at)
    clock.failed(av.error.InvalidDataError(1094995529, "Invalid data found"))
    out += clock.frame(frame(0.1, 2.0), 2.0)
    out += clock.end(1.5)
    skipped = [(s.start_s, s.end_s, s.reason) for s in out if isinstance(s, Skipped)]
    assert skipped == [
        (0.2, 0.5, "talk.mkv: corrupt audio (timestamps jump from 0.20 to 0.50 s, audio missing)"),
        (
            pytest.approx(0.8),
            1.0,
            "talk.mkv: corrupt audio ([Errno 1094995529] Invalid data found)",
        ),
        (pytest.approx(1.1), 1.5, "talk.mkv: audio track truncated: it stops at 1.10 s of 1.50 s"),
    ]
    chunks = [c for c in out if isinstance(c, MediaChunk)]
    assert sum(len(c.audio) for c in chunks) == 6 * 1600  # every frame decoded is kept
    assert [round(c.end_s, 6) for c in chunks] == [0.1, 0.2, 0.6, 0.7, 0.8, 1.1]


@pytest.fixture(scope="module")
def containers(tmp_path_factory: pytest.TempPathFactory, damaged_media: Any) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("containers")
    return {
        "mkv": damaged_media.write(folder / "flac.mkv", tone(), RATE, "flac"),
        "m4a": damaged_media.write(folder / "aac.m4a", tone(), RATE, "aac"),
        "ogg": damaged_media.write(folder / "opus.ogg", tone(rate=48000), 48000, "libopus"),
    }


@pytest.mark.parametrize("kind", ["mkv", "m4a", "ogg"])
def test_intact_containers_skip_nothing(containers: dict[str, Path], kind: str) -> None:
    audio, skipped, _ = read(containers[kind])
    assert skipped == []
    assert abs(len(audio) - len(load_audio(containers[kind]))) <= 1600  # extraction's length


@pytest.mark.parametrize(
    "kind, first, spans",
    [
        # FLAC frames whose bytes after the header are noise: their checksums fail
        ("mkv", 25, lambda pos, size: (pos + 16, pos + size)),
        # AAC packets (raw bytes inside the MP4) zeroed: the decoder refuses them
        ("m4a", 120, lambda pos, size: (pos, pos + size)),
    ],
)
def test_packets_that_fail_are_named_exactly(
    containers: dict[str, Path],
    damaged_media: Any,
    tmp_path: Path,
    kind: str,
    first: int,
    spans: Any,
) -> None:
    """Three packets damaged: the stretch from the first one's time to the next good
    packet's is skipped, the audio after it comes at its true time."""
    path = tmp_path / containers[kind].name
    path.write_bytes(containers[kind].read_bytes())
    packets = damaged_media.packets(path)
    damaged_media.overwrite(path, [spans(pos, size) for _, pos, size in packets[first : first + 3]])
    origin = first_frame_time(containers[kind])  # stream time 0: the first sample decoded
    start, end = packets[first][0] - origin, packets[first + 3][0] - origin
    intact, _, _ = read(containers[kind])
    audio, skipped, _ = read(path)
    ((got, before),) = skipped
    assert (got.start_s, got.end_s) == pytest.approx((start, end), abs=1e-3)
    assert got.reason.startswith(f"{path}: corrupt audio (") and got.track == "audio"
    # the samples before the stretch end at its start; those after it are the intact
    # file's from the stretch's end on (within 1 ms, Matroska's timestamp precision), once
    # the decoder and resampler have restarted (0.1 s)
    assert before == pytest.approx(start * 16000, abs=16)
    later = intact[round(end * 16000) + 1600 :][:16000]
    errors = [
        np.abs(audio[before + 1600 + lag :][: len(later)] - later).max() for lag in range(-16, 17)
    ]
    assert min(errors) < 0.02


def test_a_dropped_ogg_page_is_named_by_its_timestamp_jump(
    containers: dict[str, Path], damaged_media: Any, tmp_path: Path
) -> None:
    """Bytes of one Opus packet damaged: the Ogg demuxer drops the page holding it (bad
    checksum), and the packets on it, without an error; the timestamps jump over them and
    that stretch (the page's first packet's time to the next page's) is named, within one
    20 ms Opus frame: the demuxer gives the first packet after a lost page the time the
    page's first would have had, so the jump shows one packet late."""
    path = tmp_path / "opus.ogg"
    path.write_bytes(containers["ogg"].read_bytes())
    with av.open(str(path)) as container:  # each packet's time and page (by its position)
        pages = [(p.pts * p.time_base, p.pos) for p in container.demux(audio=0) if p.size]
    packets = damaged_media.packets(path)  # (time, data position, size), in the same order
    starts = sorted({pos for _, pos in pages})
    page = [bisect.bisect_right(starts, data) for _, data, _ in packets]
    k = len(packets) // 2
    damaged_media.overwrite(path, [(packets[k][1], packets[k][1] + packets[k][2])])
    lost = [i for i in range(len(packets)) if page[i] == page[k]]
    origin = first_frame_time(containers["ogg"])  # stream time 0: the first sample decoded
    start, end = packets[lost[0]][0] - origin, packets[lost[-1] + 1][0] - origin
    assert end - start > 0.5  # a page holds most of a second of Opus here: a real loss
    audio, skipped, _ = read(path)
    ((got, _),) = skipped
    assert got.reason.startswith(f"{path}: corrupt audio (timestamps jump from")
    assert (got.start_s, got.end_s) == pytest.approx((start, end), abs=0.021)
    intact, _, _ = read(containers["ogg"])
    assert len(audio) == pytest.approx(len(intact) - (end - start) * 16000, abs=16)


def test_video_packets_that_fail_are_named_without_touching_the_audio(
    damaged_media: Any, tmp_path: Path
) -> None:
    """The length prefixes of three H.264 packets (frames at 1.60, 1.64, 1.68 s of a 25 fps
    clip) overwritten: they fail to decode, the stretch from the last good frame's end
    (1.60 s) to the next good frame (1.72 s) is named on the video track; the audio track
    is decoded as if intact. (Bad bits inside a slice H.264 conceals without an error.)"""
    from avemotion.benchmarks.av_fixture import synthetic_av_clip

    clip = synthetic_av_clip(tmp_path / "clip.mkv", seconds=3.0, size=64, seed=0)
    intact_audio, _, intact_frames = read(clip, video=True)
    packets = damaged_media.packets(clip, "video")
    assert [round(t, 2) for t, _, _ in packets[40:44]] == [1.6, 1.64, 1.68, 1.72]
    damaged_media.overwrite(clip, [(pos, pos + 4) for _, pos, _ in packets[40:43]])
    audio, skipped, frames = read(clip, video=True)
    ((got, _),) = skipped
    assert (got.start_s, got.end_s, got.track) == (pytest.approx(1.6), pytest.approx(1.72), "video")
    assert got.reason.startswith(f"{clip}: corrupt video (")
    assert frames == intact_frames - 3 and np.array_equal(audio, intact_audio)


def test_a_truncated_container_names_its_missing_end(
    containers: dict[str, Path], tmp_path: Path
) -> None:
    """A Matroska file cut at 60 % of its bytes: the audio decoded up to the cut is kept and
    the rest of the declared 6 s is named (the stream ends there, without an error)."""
    path = tmp_path / "cut.mkv"
    data = containers["mkv"].read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    audio, skipped, _ = read(path)
    ((got, before),) = skipped
    assert got.reason == (
        f"{path}: audio track truncated: it stops at {got.start_s:.2f} s of 6.00 s"
    )
    assert got.end_s == pytest.approx(6.0) and 2.0 < got.start_s < 5.0
    assert before == len(audio) == pytest.approx(got.start_s * 16000, abs=16)
