"""Turns: a synthetic conversation through a tiny trained audio run, turn by turn; per-turn
state afresh, the speaker hook kept; corrupt stretches skipped; a device that disappears."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from avemotion.adaptation.state import NoAdaptation
from avemotion.benchmarks.conversation import Utterance, join_utterances, synthetic_utterance
from avemotion.encoders.media import MediaError
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
