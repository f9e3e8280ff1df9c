"""OnlineRecognizer: same steps as extraction, same decisions as the env, chunk-invariant,
early stop, forced answers and broken streams."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from avemotion.encoders.bundle import load_encoder
from avemotion.encoders.datasets import Item
from avemotion.encoders.extract import encode_clip
from avemotion.encoders.media import load_audio, load_video
from avemotion.encoders.steps import StepConfig
from avemotion.envs.core import ObservationLayout
from avemotion.online import OnlineRecognizer, StreamError
from avemotion.store import FeatureStore

CLASSES = ["neutral", "happy", "sad", "angry"]


def rule_recognizer(run: Any, agent: Any, **kwargs: object) -> OnlineRecognizer:
    store = FeatureStore.open(run.store_dir)
    return OnlineRecognizer(
        load_encoder(run.encoder_dir),
        agent,
        ObservationLayout(store, "frame"),
        "temporal",
        CLASSES,
        **kwargs,
    )


def media(clip: Path, recognizer: OnlineRecognizer) -> tuple[np.ndarray | None, object]:
    audio = load_audio(clip) if recognizer.need_audio else None
    video = load_video(clip) if recognizer.need_video else None
    return audio, video


def stream(recognizer: OnlineRecognizer, clip: Path, rng: np.random.Generator | None) -> dict:
    """Feed a clip whole (``rng=None``) or in random-size, randomly interleaved chunks."""
    audio, video = media(clip, recognizer)
    recognizer.new_utterance()
    a = v = 0
    n_frames = len(video.frames) if video is not None else 0
    while (audio is not None and a < len(audio)) or v < n_frames:
        if (
            video is None
            or v >= n_frames
            or (audio is not None and a < len(audio) and rng is not None and rng.random() < 0.5)
        ):
            n = len(audio) if rng is None else int(rng.integers(1, 5000))
            recognizer.feed_audio(audio[a : a + n])
            a += n
        else:
            n = n_frames if rng is None else int(rng.integers(1, 7))
            recognizer.feed_video(video.frames[v : v + n], video.times[v : v + n], video.fps)
            v += n
    return recognizer.finish()


def test_steps_equal_extraction_and_decisions_equal_the_env(av_run: Any) -> None:
    from avemotion.evaluation.evaluate import sweep_agent
    from avemotion.training.train import load_agent

    recognizer = OnlineRecognizer.from_run(av_run.run_dir, stop_on_decision=False)
    encoder = load_encoder(av_run.encoder_dir)
    rows, _ = encode_clip(
        encoder, Item(av_run.clips[3], "angry", "s1", "c"), "temporal", StepConfig(10.0, 112)
    )
    summary = stream(recognizer, av_run.clips[3], None)
    assert summary["total_steps"] == summary["steps_encoded"] == len(rows)
    posteriors = np.stack([s.posteriors for s in recognizer.steps])
    np.testing.assert_allclose(posteriors, rows[:, -len(CLASSES) :], atol=1e-5)

    store = FeatureStore.open(av_run.store_dir)
    predictions, steps = sweep_agent(load_agent(av_run.run_dir), store)
    online = OnlineRecognizer.from_run(av_run.run_dir)
    for i, clip in enumerate(av_run.clips):
        result = stream(online, clip, None)
        assert CLASSES.index(result["decision"]) == predictions[i]
        assert result["decision_step"] + 1 == steps[i] == result["steps_encoded"]
        assert result["total_steps"] == store.lengths[i]


def test_random_chunks_decide_as_whole_audio_visual(av_run: Any) -> None:
    recognizer = OnlineRecognizer.from_run(av_run.run_dir, stop_on_decision=False)
    whole = stream(recognizer, av_run.clips[1], None)
    whole_steps = recognizer.steps
    for seed in range(2):
        assert stream(recognizer, av_run.clips[1], np.random.default_rng(seed)) == whole
        chunked = recognizer.steps
        assert [(s.step, s.action, s.decided) for s in chunked] == [
            (s.step, s.action, s.decided) for s in whole_steps
        ]
        np.testing.assert_allclose(
            np.stack([s.posteriors for s in chunked]),
            np.stack([s.posteriors for s in whole_steps]),
            atol=1e-6,
        )


@pytest.mark.parametrize("which", ["audio_run", "audio_ensemble_run", "visual_run"])
def test_single_modality_streams(which: str, request: pytest.FixtureRequest) -> None:
    run: Any = request.getfixturevalue(which)
    recognizer = OnlineRecognizer.from_run(run.run_dir)
    assert recognizer.modality == run.modality
    whole = stream(recognizer, run.clips[2], None)
    assert stream(recognizer, run.clips[2], np.random.default_rng(1)) == whole
    assert whole["decision"] in CLASSES and 1 <= whole["steps_encoded"] <= whole["total_steps"]
    rows, _ = encode_clip(
        load_encoder(run.encoder_dir),
        Item(run.clips[2], "sad", "s0", "c"),
        "temporal",
        StepConfig(10.0, 112),
    )
    assert whole["total_steps"] == len(rows)


@pytest.mark.parametrize("lookahead", [False, True])
def test_early_stop_stops_encoding(threshold_agent: Any, av_run: Any, lookahead: bool) -> None:
    agent = threshold_agent(len(CLASSES), decide_at=2)
    recognizer = rule_recognizer(av_run, agent, face_lookahead=lookahead)
    calls = {"audio": 0, "visual": 0}
    recognizer.encoder.audio.body.register_forward_hook(
        lambda *_: calls.__setitem__("audio", calls["audio"] + 1)
    )
    recognizer.encoder.visual.backbone.features.register_forward_hook(
        lambda *_: calls.__setitem__("visual", calls["visual"] + 1)
    )
    summary = stream(recognizer, av_run.clips[3], np.random.default_rng(0))
    assert summary["decision_step"] == 2 and summary["steps_encoded"] == 3 and not summary["forced"]
    assert summary["total_steps"] > 10
    assert calls == {"audio": 3, "visual": 3}
    assert agent.calls == 3
    tracked = recognizer.faces.tracker.frames
    # faces of 3 steps only; looking ahead tracks at most the frames of the ~0.5 s of coming steps
    assert tracked == 3 if not lookahead else 3 <= tracked <= 3 + 8


def test_face_lookahead_changes_nothing(av_run: Any) -> None:
    results = []
    for lookahead in (False, True):
        recognizer = OnlineRecognizer.from_run(
            av_run.run_dir, stop_on_decision=False, face_lookahead=lookahead
        )
        summary = stream(recognizer, av_run.clips[2], np.random.default_rng(3))
        results.append((summary, np.stack([s.posteriors for s in recognizer.steps])))
        recognizer.close()
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_stream_end_forces_the_answer_on_the_last_step(threshold_agent: Any, av_run: Any) -> None:
    recognizer = rule_recognizer(av_run, threshold_agent(len(CLASSES)))
    summary = stream(recognizer, av_run.clips[0], None)
    last = recognizer.steps[-1]
    assert summary["forced"] and last.forced and last.decided
    assert summary["decision_step"] == summary["total_steps"] - 1 == summary["steps_encoded"] - 1
    assert last.prediction == int(np.argmax(last.posteriors))
    assert all(s.action == 0 for s in recognizer.steps[:-1])


def test_longest_training_clip_forces_the_answer(threshold_agent: Any, av_run: Any) -> None:
    store = FeatureStore.open(av_run.store_dir)
    short = store.subset(indices=[0])  # T_max = the shortest clip's length
    recognizer = OnlineRecognizer(
        load_encoder(av_run.encoder_dir),
        threshold_agent(len(CLASSES)),
        ObservationLayout(short, "frame"),
        "temporal",
        CLASSES,
    )
    summary = stream(recognizer, av_run.clips[3], None)
    assert summary["forced"] and summary["decision_step"] == short.lengths[0] - 1
    assert summary["total_steps"] == store.lengths[3] > summary["steps_encoded"]


def test_new_utterance_starts_afresh(av_run: Any) -> None:
    recognizer = OnlineRecognizer.from_run(av_run.run_dir, stop_on_decision=False)
    first = stream(recognizer, av_run.clips[2], None)
    stream(recognizer, av_run.clips[0], None)
    recognizer.new_utterance()
    assert (recognizer.total_steps, recognizer.steps_encoded, recognizer.decided) == (0, 0, False)
    assert recognizer.observation.t == 0
    assert stream(recognizer, av_run.clips[2], None) == first


def test_too_short_stream_and_bad_input(threshold_agent: Any, av_run: Any) -> None:
    recognizer = rule_recognizer(av_run, threshold_agent(len(CLASSES)))
    recognizer.feed_audio(np.zeros(8000, np.float32))
    recognizer.feed_video([np.zeros((64, 64, 3), np.uint8)], [0.0])
    with pytest.raises(StreamError, match="before its first step"):
        recognizer.finish()
    recognizer.reset()
    with pytest.raises(StreamError, match="rate"):
        recognizer.feed_audio(np.zeros(100, np.float32), rate=44100)


def test_truncated_and_corrupt_files_keep_the_steps_so_far(
    threshold_agent: Any, av_run: Any, audio_run: Any, tmp_path: Path
) -> None:
    from avemotion.online.sources import file_chunks
    from avemotion.online.streaming import StreamInterrupted, run_stream

    data = av_run.clips[3].read_bytes()
    truncated = tmp_path / "truncated.mkv"
    truncated.write_bytes(data[: int(len(data) * 0.7)])
    recognizer = rule_recognizer(av_run, threshold_agent(len(CLASSES)))
    seen: list = []
    with pytest.raises(StreamInterrupted, match="truncated.mkv.*truncated or corrupt") as error:
        run_stream(recognizer, file_chunks(truncated, None, True, True), on_step=seen.append)
    assert error.value.summary["steps_encoded"] == len(recognizer.steps) == len(seen) > 0
    assert error.value.summary["decision"] is None

    flac = tmp_path / "speech.flac"
    import soundfile

    soundfile.write(flac, load_audio(av_run.clips[3]), 16000)
    raw = bytearray(flac.read_bytes())
    middle = len(raw) * 2 // 3
    raw[middle : middle + 4000] = (
        np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    )
    corrupt = tmp_path / "corrupt.flac"
    corrupt.write_bytes(bytes(raw))
    audio_recognizer = OnlineRecognizer.from_run(audio_run.run_dir, stop_on_decision=False)
    with pytest.raises(StreamInterrupted, match="corrupt.flac") as error:
        run_stream(audio_recognizer, file_chunks(None, corrupt, False, True))
    assert 0 < error.value.summary["steps_encoded"] == len(audio_recognizer.steps)


def test_bad_input_mid_stream_keeps_the_steps_so_far(threshold_agent: Any, av_run: Any) -> None:
    recognizer = rule_recognizer(av_run, threshold_agent(len(CLASSES)))
    audio, video = media(av_run.clips[3], recognizer)
    half = len(video.frames) // 2
    recognizer.feed_video(video.frames[:half], video.times[:half], video.fps)
    recognizer.feed_audio(audio[: len(audio) // 2])
    before = [(s.step, s.action) for s in recognizer.steps]
    assert before
    with pytest.raises(StreamError, match="frame times must increase"):
        recognizer.feed_video(video.frames[half : half + 2], video.times[:2])
    with pytest.raises(StreamError, match="NaN"):
        recognizer.feed_audio(np.full(100, np.nan, np.float32))
    assert [(s.step, s.action) for s in recognizer.steps] == before
    recognizer.feed_video(video.frames[half:], video.times[half:], video.fps)  # the stream goes on
    recognizer.feed_audio(audio[len(audio) // 2 :])
    assert recognizer.finish()["total_steps"] == len(recognizer.steps) > len(before)


def test_from_run_refuses_another_encoder(av_run: Any, audio_run: Any) -> None:
    with pytest.raises(
        ValueError, match="the encoder is audio, the store was extracted as audio-visual"
    ):
        OnlineRecognizer.from_run(av_run.run_dir, encoder_dir=audio_run.encoder_dir)


class RecordingAgent:
    """Waits until waiting is masked and keeps every observation of the utterance."""

    obs_mode = "frame"

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def reset(self) -> None:
        self.seen.clear()

    def act(self, observation: np.ndarray, action_mask: np.ndarray) -> int:
        self.seen.append(observation.copy())
        return 0 if action_mask[0] else 1


def test_audio_ensemble_streams_the_extracted_rows(audio_ensemble_run: Any) -> None:
    """With an ensemble audio branch, step-wise streaming gives the extracted temporal rows:
    the store embeds audio one step at a time, as the stream does, so they agree up to the
    LSTM's step-versus-sequence rounding (batched convolutions alone differ by up to 1e-5)."""
    run = audio_ensemble_run
    agent = RecordingAgent()
    recognizer = rule_recognizer(run, agent, stop_on_decision=False)
    encoder = load_encoder(run.encoder_dir)
    assert encoder.audio is not None and encoder.audio.members == 3
    rows, _ = encode_clip(
        encoder, Item(run.clips[3], "angry", "s1", "c"), "temporal", StepConfig(10.0, 112)
    )
    online, summary = streamed_rows(recognizer, agent, run.clips[3])
    assert summary["steps_encoded"] == len(rows) and online.shape == rows.shape
    assert float(np.abs(online - rows).max()) <= 1e-6


@pytest.fixture(scope="module")
def adapted_run(av_run: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The av_run store speaker-adapted against itself (store order), and a tiny DQN on it."""
    from avemotion.adaptation.transform import adapt_store
    from avemotion.training.train import train

    root = tmp_path_factory.mktemp("adapted-run")
    store = FeatureStore.open(av_run.store_dir)
    adapted = adapt_store(store, store, root / "store")
    run_dir = train(
        "dqn", adapted, 200, 0, root / "run", num_envs=8, learning_starts=64, batch_size=32,
        hidden=(16,), progress=False, log_every=200,
    )  # fmt: skip
    return adapted, run_dir


def streamed_rows(recognizer: OnlineRecognizer, agent: RecordingAgent, clip: Path) -> tuple:
    """The rows the agent observed over a whole clip (``frame`` mode), and the summary."""
    summary = stream(recognizer, clip, None)
    return np.stack(agent.seen[: summary["steps_encoded"]])[:, :-1], summary


def test_speaker_state_reproduces_the_adapted_store(
    av_run: Any, adapted_run: Any, tmp_path: Path
) -> None:
    """Streaming a speaker's clips in store order with a speaker state gives what the
    store-level transform writes for the same rows, within 1e-5; and the extracted store's
    adapted rows within the encoder's own streaming error (1e-5 before normalisation)."""
    from avemotion.adaptation.state import SpeakerAdapter
    from avemotion.adaptation.transform import AdaptationSpec, adapt_store

    adapted, _ = adapted_run
    spec = AdaptationSpec.from_store(adapted)
    reference = FeatureStore.open(av_run.store_dir)
    encoder = load_encoder(av_run.encoder_dir)
    agent = RecordingAgent()
    state = tmp_path / "speaker.json"
    recognizer = OnlineRecognizer(
        encoder, agent, ObservationLayout(adapted, "frame"), "temporal", CLASSES,
        speaker=SpeakerAdapter(spec, state),
    )  # fmt: skip
    plain_agent = RecordingAgent()
    plain = OnlineRecognizer(
        encoder, plain_agent, ObservationLayout(reference, "frame"), "temporal", CLASSES,
        stop_on_decision=False,
    )  # fmt: skip
    assert not recognizer.stop_on_decision  # the state needs every step of the utterance
    clips = [i for i, s in enumerate(adapted.speakers) if s == "s0"]
    online, raw = [], []
    for earlier, i in enumerate(clips):
        rows, summary = streamed_rows(recognizer, agent, av_run.clips[i])
        assert summary["speaker_state"]["earlier_utterances"] == earlier
        assert len(rows) == adapted.lengths[i]
        online.append(rows)
        raw.append(streamed_rows(plain, plain_agent, av_run.clips[i])[0])
    assert json.loads(state.read_text())["utterances"] == len(clips)
    raw_store = FeatureStore.create(
        tmp_path / "raw", raw, [0] * len(raw), ["s0"] * len(raw), CLASSES
    )
    expected = adapt_store(raw_store, reference, tmp_path / "expected", prior=spec.prior)
    assert AdaptationSpec.from_store(expected).identity == spec.identity
    for k, i in enumerate(clips):
        np.testing.assert_allclose(online[k], expected.clip(k).frames, atol=1e-5)
        # against the extracted store: the same up to the encoder's streaming error
        scale = np.sqrt(spec.population.var)
        np.testing.assert_allclose(online[k] * scale, adapted.clip(i).frames * scale, atol=1e-5)


def test_stream_cli_keeps_the_speaker_state(
    av_run: Any, adapted_run: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from avemotion.cli import main

    _, run_dir = adapted_run
    state = tmp_path / "state.json"
    argv = ["stream", "--video", str(av_run.clips[0]), "--run", str(run_dir), "--json"]
    for earlier in range(2):
        assert main([*argv, "--speaker-state", str(state)]) == 0
        summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert summary["speaker_state"]["earlier_utterances"] == earlier
        assert summary["steps_encoded"] == summary["total_steps"]
    assert json.loads(state.read_text())["utterances"] == 2
    state.write_text('{"format": "avemotion-speaker-state", "version": 1')
    assert main([*argv, "--speaker-state", str(state)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("avemotion stream: error: ") and str(state) in err
    assert len(err.splitlines()) == 1
    # a run trained on an unadapted store has no speaker transform to apply
    other = ["stream", "--video", str(av_run.clips[0]), "--run", str(av_run.run_dir)]
    assert main([*other, "--speaker-state", str(tmp_path / "new.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert "not speaker-adapted" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "new.json").exists()
    # and a run trained on an adapted store cannot read raw rows: no state, no stream
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "trained on a speaker-adapted store" in err and len(err.splitlines()) == 1


def test_shorter_separate_video_streams_the_extracted_steps(av_run: Any, tmp_path: Path) -> None:
    """A 1.0 s video beside 2.5 s of audio in its own file: the stream leaves out the steps
    past the video's end, as extraction does, and reports how many."""
    import soundfile

    from avemotion.benchmarks.av_fixture import synthetic_av_clip
    from avemotion.encoders.steps import clip_steps

    video_path = synthetic_av_clip(tmp_path / "face.mkv", seconds=1.0, size=128, seed=5)
    wav = tmp_path / "speech.wav"
    t = np.arange(40000) / 16000
    soundfile.write(wav, (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    item = Item(video_path, "angry", "s1", "c", audio_path=wav)
    with pytest.warns(UserWarning, match="ends before the audio"):
        extracted = clip_steps(item, True, True, StepConfig(10.0, 112))
        rows, _ = encode_clip(
            load_encoder(av_run.encoder_dir), item, "temporal", StepConfig(10.0, 112)
        )
    assert extracted.n_steps == len(rows) == 6 and extracted.cut_steps == 10

    recognizer = OnlineRecognizer.from_run(av_run.run_dir, stop_on_decision=False)
    video = load_video(video_path)
    recognizer.feed_video(video.frames, video.times, video.fps)
    recognizer.feed_audio(load_audio(wav))
    with pytest.warns(UserWarning, match=r"video: ends at 1\.00 s.*last 10 step\(s\)"):
        summary = recognizer.finish()
    assert summary["steps_encoded"] == summary["total_steps"] == 6
    assert summary["cut_steps"] == 10
    posteriors = np.stack([s.posteriors for s in recognizer.steps])
    np.testing.assert_allclose(posteriors, rows[:, -len(CLASSES) :], atol=1e-5)
