"""``avemotion stream --turns`` and ``avemotion evaluate-turns``: the JSON schema (one object
per turn, the summary last), text lines, the plot, a vanishing device, bad options."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from avemotion.benchmarks.conversation import (
    Utterance,
    join_utterances,
    synthetic_utterance,
    write_labels,
)
from avemotion.cli import main
from avemotion.encoders.media import MediaError
from avemotion.online.sources import MediaChunk

TURN_KEYS = {
    "turn",
    "start_s",
    "end_s",
    "decision_s",
    "label",
    "confidence",
    "steps_encoded",
    "forced",
    "decision_step",
    "steps",
}


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    rng = np.random.default_rng(5)
    labels = ["neutral", "happy", "sad", "angry"]
    utterances = [
        Utterance(synthetic_utterance(rng, rng.uniform(1.5, 2.5)), labels[i], f"u{i}", "s")
        for i in range(4)
    ]
    audio, rows = join_utterances(utterances, 5)
    folder = tmp_path_factory.mktemp("conversation")
    soundfile.write(folder / "talk.flac", audio, 16000)
    return folder / "talk.flac", write_labels(folder / "talk.csv", rows)


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def test_turns_json_schema_and_plot(
    audio_run: Any, recording: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "turns.png"
    argv = ["stream", "--turns", "--vad", "energy", "--audio", str(recording[0])]
    code, out, err = cli(
        [*argv, "--run", str(audio_run.run_dir), "--json", "--plot", str(plot)], capsys
    )
    assert code == 0, err
    *turns, summary = [json.loads(line) for line in out]
    assert summary["turns"] == len(turns) == 4
    for index, turn in enumerate(turns):
        assert set(turn) == TURN_KEYS and turn["turn"] == index
        assert isinstance(turn["forced"], bool) and turn["label"] in audio_run_classes(audio_run)
        assert 0 < turn["confidence"] <= 1 and turn["start_s"] < turn["end_s"]
    assert summary["vad"] == "energy" and summary["skipped"] == []
    assert plot.stat().st_size > 10_000


def audio_run_classes(run: Any) -> set[str]:
    from avemotion.store import FeatureStore

    return set(FeatureStore.open(run.store_dir).class_names)


def test_turns_text_mode(
    audio_run: Any, recording: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["stream", "--turns", "--vad", "energy", "--audio", str(recording[0])]
    code, out, _ = cli([*argv, "--run", str(audio_run.run_dir)], capsys)
    assert code == 0
    assert [line.split()[:2] for line in out[:-1]] == [["turn", str(i)] for i in range(4)]
    assert out[-1].startswith("4 turns in ")


def test_vanishing_device_writes_the_turns_so_far(
    audio_run: Any,
    recording: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    audio = soundfile.read(recording[0], dtype="float32")[0]
    rows = [line.split(",") for line in recording[1].read_text().splitlines()[1:]]
    cut = round((float(rows[1][1]) + 0.35) * 16000)  # just after the second turn

    def fake_device(*args: Any) -> Iterator[MediaChunk]:
        for offset in range(0, cut, 1600):
            yield MediaChunk(offset / 16000, audio=audio[offset : min(cut, offset + 1600)])
        raise MediaError("audio capture device 'fake': stopped delivering audio")

    monkeypatch.setattr("avemotion.online.sources.device_chunks", fake_device)
    argv = ["stream", "--turns", "--vad", "energy", "--audio-device", "fake", "--json"]
    code, out, err = cli([*argv, "--run", str(audio_run.run_dir)], capsys)
    assert code == 2 and "stopped delivering audio" in err
    *turns, summary = [json.loads(line) for line in out]
    assert summary["turns"] == len(turns) == 2 and "stopped delivering" in summary["error"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--vad", "energy"], "--vad: only read with --turns"),
        (["--turns", "--no-early-stop"], "--no-early-stop: not with --turns"),
    ],
)
def test_turn_options_refused_in_one_line(
    audio_run: Any,
    recording: tuple[Path, Path],
    extra: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["stream", "--audio", str(recording[0]), "--run", str(audio_run.run_dir), *extra]
    code, _, err = cli(argv, capsys)
    assert code == 2 and message in err


def test_evaluate_turns_scores_the_recording(
    audio_run: Any, recording: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    audio, labels = recording
    argv = ["evaluate-turns", "--run", str(audio_run.run_dir), "--vad", "energy", "--json"]
    code, out, _ = cli([*argv, "--audio", str(audio), "--labels", str(labels)], capsys)
    assert code == 0
    pooled = json.loads(out[-1])["pooled"]
    assert (pooled["precision"], pooled["recall"], pooled["matched"]) == (1.0, 1.0, 4)
    assert 0 < pooled["earliness"] <= 1 and 0 <= pooled["accuracy"] <= 1
    code, out, _ = cli([*argv[:-1], "--corpus", str(audio.parent)], capsys)
    assert code == 0 and out[0].startswith("turns: precision 1.000, recall 1.000")
    turns = json.loads(cli([*argv, "--audio", str(audio), "--labels", str(labels)], capsys)[1][-1])
    listed = turns["recordings"][str(audio)]["turns"]
    assert [t["true_label"] for t in listed] == ["neutral", "happy", "sad", "angry"]


def test_evaluate_turns_plot_with_labelled_lane(
    audio_run: Any, recording: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audio, labels = recording
    plot = tmp_path / "turns.svg"
    argv = ["evaluate-turns", "--run", str(audio_run.run_dir), "--vad", "energy"]
    code, _, err = cli(
        [*argv, "--audio", str(audio), "--labels", str(labels), "--plot", str(plot)], capsys
    )
    assert code == 0 and f"wrote {plot}" in err
    assert plot.read_text().count("<svg") == 1 and "labelled turns" in plot.read_text()
    two = tmp_path / "two"
    two.mkdir()
    for name in ("a", "b"):
        (two / f"{name}.flac").write_bytes(audio.read_bytes())
        (two / f"{name}.csv").write_text(labels.read_text())
    code, _, err = cli([*argv, "--corpus", str(two), "--plot", str(plot)], capsys)
    assert code == 2 and "--plot: draws one recording" in err


def test_evaluate_turns_needs_its_inputs(
    audio_run: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = cli(["evaluate-turns", "--run", str(audio_run.run_dir)], capsys)
    assert code == 2 and "--audio FILE with --labels CSV, or --corpus DIR" in err


def test_speaker_state_carries_over_from_turn_to_turn(
    audio_run: Any,
    recording: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A run trained on a speaker-adapted store: every turn adds one utterance to the state
    (each turn encoded to its end, as the state needs), and a second run goes on from it."""
    from avemotion.adaptation.transform import adapt_store
    from avemotion.store import FeatureStore
    from avemotion.training.train import train

    store = FeatureStore.open(audio_run.store_dir)
    adapted = adapt_store(store, store, tmp_path / "adapted")
    run_dir = train(
        "dqn", adapted, 200, 0, tmp_path / "run", num_envs=8, learning_starts=64,
        batch_size=32, hidden=(16,), progress=False, log_every=200,
    )  # fmt: skip
    state = tmp_path / "speaker.json"
    argv = ["stream", "--turns", "--vad", "energy", "--audio", str(recording[0]), "--json"]
    for before in (0, 4):
        code, out, err = cli([*argv, "--run", str(run_dir), "--speaker-state", str(state)], capsys)
        assert code == 0, err
        *turns, summary = [json.loads(line) for line in out]
        assert summary["speaker_state"]["utterances_now"] == before + 4
        assert summary["speaker_state"]["earlier_utterances"] == before + 3  # at the last turn
        assert all(t["steps_encoded"] == t["steps"] for t in turns)
    assert json.loads(state.read_text())["utterances"] == 8


def test_audio_visual_turns_from_a_video_file(
    av_run: Any, recording: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A drawn face muxed with the 4-turn conversation: each turn is answered from its audio
    and the frames of its time."""
    from avemotion.benchmarks.av_fixture import mux_av_clip, synthetic_av_clip

    seconds = soundfile.info(str(recording[0])).duration
    # the video a little shorter: the muxed audio is trimmed to it (the last pause shortened)
    face = synthetic_av_clip(tmp_path / "face.mkv", seconds=seconds - 0.3, size=128, seed=1)
    clip = mux_av_clip(face, recording[0], tmp_path / "talk.mkv")
    argv = ["stream", "--turns", "--vad", "energy", "--video", str(clip), "--json"]
    code, out, err = cli([*argv, "--run", str(av_run.run_dir)], capsys)
    assert code == 0, err
    *turns, summary = [json.loads(line) for line in out]
    assert summary["turns"] == len(turns) == 4
    assert all(set(turn) == TURN_KEYS and turn["steps_encoded"] >= 1 for turn in turns)
