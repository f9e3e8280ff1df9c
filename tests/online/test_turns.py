"""Turns: a synthetic conversation through a tiny trained audio run, turn by turn; per-turn
state afresh, the speaker hook kept; corrupt stretches skipped; a device that disappears."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
import soundfile

from avemotion.adaptation.state import NoAdaptation
from avemotion.benchmarks.conversation import Utterance, join_utterances, synthetic_utterance
from avemotion.encoders.media import MediaError, resample
from avemotion.online.chunks import Skipped
from avemotion.online.recognizer import OnlineRecognizer
from avemotion.online.sources import MediaChunk
from avemotion.online.turn_stream import run_turns, sound_file_stretches
from avemotion.online.turns import TurnStreamer
from avemotion.online.vad import EnergyDetector, TurnConfig, TurnTracker


def conversation(n: int = 3, seed: int = 0) -> tuple[np.ndarray, list[dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    utterances = [
        Utterance(synthetic_utterance(rng, rng.uniform(1.5, 2.5)), "happy", f"u{i}", "s")
        for i in range(n)
    ]
    return join_utterances(utterances, seed, pause_s=(0.8, 1.2))


class CountingHook(NoAdaptation):
    """A speaker hook that counts utterances begun and ended (the same object throughout)."""

    def __init__(self) -> None:
        self.begun = self.ended = 0

    def begin(self) -> None:
        self.begun += 1

    def end(self) -> None:
        self.ended += 1


def streamer(run: Any) -> TurnStreamer:
    recognizer = OnlineRecognizer.from_run(run.run_dir, run.encoder_dir)
    return TurnStreamer(recognizer, TurnTracker(EnergyDetector(), TurnConfig()))


def chunks(audio: np.ndarray, size: int = 1600) -> Iterator[MediaChunk]:
    for offset in range(0, len(audio), size):
        yield MediaChunk((offset + size) / 16000, audio=audio[offset : offset + size])


def test_one_answer_per_turn_and_nothing_encoded_in_silence(audio_run: Any) -> None:
    audio, rows = conversation()
    turns_streamer = streamer(audio_run)
    hook = CountingHook()
    turns_streamer.recognizer.speaker = hook
    summary = run_turns(turns_streamer, chunks(audio))
    turns = turns_streamer.turns
    assert summary["turns"] == len(turns) == 3 and "error" not in summary
    for turn, row in zip(turns, rows):
        assert row["start"] - 0.05 <= turn.start_s < turn.end_s <= row["end"] + 0.05
        assert turn.start_s <= turn.decision_s <= turn.end_s + 0.3 + 1e-6
        assert 1 <= turn.steps_encoded <= turn.steps and turn.decision_step < turn.steps
    # each turn starts afresh (its own steps from 0); the speaker hook is the one object
    assert turns_streamer.recognizer.speaker is hook and hook.ended == 3 and hook.begun >= 3
    assert summary["steps_encoded"] == sum(t.steps_encoded for t in turns)
    # the turns' audio (with pre- and post-roll) is far shorter than the recording
    fed = sum(t.steps for t in turns)
    assert fed * 0.1 < len(audio) / 16000 - 2.0


def test_turns_are_the_same_however_the_audio_is_chunked(audio_run: Any) -> None:
    audio, _ = conversation(seed=1)
    a, b = streamer(audio_run), streamer(audio_run)
    run_turns(a, chunks(audio, 1600))
    run_turns(b, chunks(audio, 517))
    assert [t.to_json() for t in a.turns] == [t.to_json() for t in b.turns]


def test_corrupt_stretch_is_named_and_skipped(audio_run: Any, tmp_path: Path) -> None:
    audio, rows = conversation(n=6, seed=2)
    path = tmp_path / "conversation.flac"
    soundfile.write(path, audio, 16000)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 3000] = (
        np.random.default_rng(0).integers(0, 256, 3000, np.uint8).tobytes()
    )
    path.write_bytes(bytes(data))
    turns_streamer = streamer(audio_run)
    summary = run_turns(turns_streamer, sound_file_stretches(path))
    (skipped,) = summary["skipped"]
    assert str(path) in skipped["reason"] and "corrupt audio" in skipped["reason"]
    assert 0 < skipped["start_s"] < skipped["end_s"] < len(audio) / 16000
    assert any(t.start_s >= skipped["end_s"] for t in turns_streamer.turns)  # it went on
    assert "error" not in summary


def damaged_conversation(
    kind: str, audio: np.ndarray, folder: Path, media: Any
) -> tuple[Path, float, float, float]:
    """The conversation at 44.1 kHz (48 kHz for Opus) as a ``kind`` file, with three
    packets in its middle damaged; the damaged stretch (from the packets' times) and the
    tolerance its naming is held to."""
    rate = 48000 if kind == "ogg" else 44100
    wave = resample(audio, 16000, rate)
    codec = {"flac": None, "m4a": "aac", "ogg": "libopus"}[kind]
    path = media.write(folder / f"talk.{kind}", wave, rate, codec)
    packets = media.packets(path)
    k = len(packets) // 2
    with av.open(str(path)) as container:
        origin = float(next(container.decode(audio=0)).time)
    if kind == "flac":  # bad checksums: libFLAC fails the frames; named to a 0.1 s block
        spans, tolerance = [(pos + 16, pos + size) for _, pos, size in packets[k : k + 3]], 0.1
    elif kind == "m4a":  # the AAC decoder refuses zeroed packets: named exactly
        spans, tolerance = [(pos, pos + size) for _, pos, size in packets[k : k + 3]], 1e-3
    else:  # the Ogg demuxer drops the page: its packets' stretch, to one 20 ms frame
        spans, tolerance = [(packets[k][1], packets[k][1] + 4)], 0.021
    start, end = packets[k][0] - origin, packets[k + 3][0] - origin
    if kind == "ogg":  # the stretch of the packets on the damaged page
        with av.open(str(path)) as container:
            pages = [p.pos for p in container.demux(audio=0) if p.size]
        on_page = [i for i in range(len(packets)) if pages[i] == pages[k]]
        start, end = packets[on_page[0]][0] - origin, packets[on_page[-1] + 1][0] - origin
    media.overwrite(path, spans)
    return path, start, end, tolerance


@pytest.mark.parametrize("kind", ["flac", "m4a", "ogg"])
def test_a_corrupt_stretch_of_any_file_is_skipped_and_later_turns_keep_their_times(
    audio_run: Any, damaged_media: Any, tmp_path: Path, kind: str
) -> None:
    """A 44.1 kHz FLAC (soundfile), an AAC .m4a and an Opus .ogg (PyAV), each damaged in
    the middle: the run goes to the end, only the damaged stretch is named, and the turns
    after it are answered at their true times."""
    audio, rows = conversation(n=6, seed=2)
    path, start, end, tolerance = damaged_conversation(kind, audio, tmp_path, damaged_media)
    turns_streamer = streamer(audio_run)
    summary = run_turns(turns_streamer, sound_file_stretches(path))
    assert "error" not in summary
    (skipped,) = summary["skipped"]
    assert skipped["reason"].startswith(f"{path}: corrupt audio (")
    assert start - tolerance <= skipped["start_s"] <= start + tolerance
    assert end - tolerance <= skipped["end_s"] <= end + tolerance
    assert summary["stream_s"] == pytest.approx(len(audio) / 16000, abs=0.1)
    later = [row for row in rows if row["start"] > skipped["end_s"] + 0.3]
    assert later  # the damage is not in the last turn
    for row in later:  # each answered, at its true time (within a VAD frame and the codec's)
        (turn,) = [t for t in turns_streamer.turns if abs(t.start_s - row["start"]) < 0.1]
        assert turn.end_s == pytest.approx(row["end"], abs=0.1)


def test_a_stretch_of_video_alone_is_named_and_the_turns_go_on(audio_run: Any) -> None:
    """Frames missing in a stretch take the nearest frame decoded: the turns are those of
    the intact stream, the stretch listed on its track."""
    audio, _ = conversation(seed=1)
    intact = streamer(audio_run)
    run_turns(intact, chunks(audio))

    def with_a_video_gap() -> Iterator[MediaChunk | Skipped]:
        for i, chunk in enumerate(chunks(audio)):
            if i == 30:  # at 3.0 s, a stretch of frames that failed to decode
                yield Skipped(2.8, 3.2, "talk.mkv: corrupt video (Invalid data)", "video")
            yield chunk

    damaged = streamer(audio_run)
    summary = run_turns(damaged, with_a_video_gap())
    assert [t.to_json() for t in damaged.turns] == [t.to_json() for t in intact.turns]
    assert summary["skipped"] == [
        {
            "start_s": 2.8,
            "end_s": 3.2,
            "reason": "talk.mkv: corrupt video (Invalid data)",
            "track": "video",
        }
    ]


def test_vanishing_device_ends_cleanly_with_the_turns_so_far(audio_run: Any) -> None:
    audio, rows = conversation(n=3, seed=3)
    cut = round((rows[2]["start"] + 1.5) * 16000)  # inside the third turn

    def device() -> Iterator[MediaChunk]:
        yield from chunks(audio[:cut])
        raise MediaError("audio capture device 'fake': stopped delivering audio")

    turns_streamer = streamer(audio_run)
    summary = run_turns(turns_streamer, device())
    assert summary["error"] == "audio capture device 'fake': stopped delivering audio"
    assert summary["turns"] == 3  # the turn in progress is answered, not lost
    assert turns_streamer.turns[-1].end_s <= cut / 16000


def test_visual_only_runs_are_refused(visual_run: Any) -> None:
    recognizer = OnlineRecognizer.from_run(visual_run.run_dir, visual_run.encoder_dir)
    with pytest.raises(ValueError, match="--turns: turns are found in the audio: .* no audio"):
        TurnStreamer(recognizer, TurnTracker(EnergyDetector(), TurnConfig()))
