"""``avemotion stream``: JSON lines, the summary last, the plot, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from optional_extras import require_extra

from avemotion.cli import main


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict], str]:
    code = main(["stream", *argv])
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")]
    return code, lines, captured.err


def test_audio_visual_json_and_plot(
    av_run: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "timeline.png"
    code, lines, _ = run_cli(
        [
            "--video",
            str(av_run.clips[3]),
            "--run",
            str(av_run.run_dir),
            "--json",
            "--plot",
            str(plot),
            "--no-early-stop",
        ],
        capsys,
    )
    assert code == 0
    *steps, summary = lines
    assert {"decision", "decision_time_s", "steps_encoded", "total_steps", "posteriors"} <= set(
        summary
    )
    assert summary["steps_encoded"] == summary["total_steps"] == len(steps)
    assert [s["step"] for s in steps] == list(range(len(steps)))
    assert summary["decision"] in summary["posteriors"]
    assert plot.stat().st_size > 10_000
    # The DQN's class values are share · p(k): the class it answers is the top of the
    # posterior it read, which every step up to the decision reports (and none after).
    decided_at = summary["decision_step"]
    read = [s["agent_posteriors"] for s in steps]
    assert all(p is not None for p in read[: decided_at + 1])
    assert all(p is None for p in read[decided_at + 1 :])
    at_decision = read[decided_at]
    assert sum(at_decision.values()) == pytest.approx(1.0, abs=1e-5)
    assert max(at_decision, key=at_decision.get) == summary["decision"]
    assert summary["agent_posteriors"] == at_decision


@pytest.mark.parametrize(
    "which, flags",
    [("audio_run", ["--audio"]), ("visual_run", ["--no-lookahead", "--video"])],
)
def test_single_modality_and_early_stop(
    which: str, flags: list[str], request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    """(--no-lookahead only where faces are searched: an audio-only run refuses it.)"""
    run = request.getfixturevalue(which)
    code, lines, _ = run_cli(
        [
            *flags,
            str(run.clips[1]),
            "--run",
            str(run.run_dir),
            "--json",
            "--encoder",
            str(run.encoder_dir),
        ],
        capsys,
    )
    assert code == 0
    *steps, summary = lines
    assert len(steps) == summary["steps_encoded"] <= summary["total_steps"]
    assert steps[-1]["decided"] and steps[-1]["prediction"] == summary["decision"]


def test_clear_errors(
    av_run: Any, visual_run: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mead_like = tmp_path / "silent.mkv"
    import av

    with (
        av.open(str(av_run.clips[0])) as source,
        av.open(str(mead_like), "w", format="matroska") as out,
    ):
        stream = out.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    code, _, err = run_cli(["--video", str(mead_like), "--run", str(av_run.run_dir)], capsys)
    assert code == 2 and "silent.mkv: no audio track" in err
    code, _, err = run_cli(["--device", "7", "--run", str(visual_run.run_dir)], capsys)
    assert code == 2 and "capture device 7: not available" in err
    code, _, err = run_cli(["--device", "0", "--run", str(av_run.run_dir)], capsys)
    assert code == 2 and "--audio-device" in err
    code, _, err = run_cli(
        ["--device", "0", "--audio-device", "no-such-pcm", "--run", str(av_run.run_dir)], capsys
    )
    assert code == 2 and "audio capture device 'no-such-pcm': not available" in err
    code, _, err = run_cli(["--run", str(av_run.run_dir)], capsys)
    assert code == 2 and "--video and/or --audio" in err
    data = av_run.clips[3].read_bytes()
    truncated = tmp_path / "cut.mkv"
    truncated.write_bytes(data[: len(data) * 3 // 4])
    code, lines, err = run_cli(
        ["--video", str(truncated), "--run", str(av_run.run_dir), "--json", "--no-early-stop"],
        capsys,
    )
    assert code == 2 and "cut.mkv" in err and "truncated" in err
    *steps, summary = lines
    assert summary["error"] and summary["steps_encoded"] == len(steps) > 0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--threads", "0"], "--threads: expected an integer >= 1, got 0"),
        (["--threads", "-2"], "--threads: expected an integer >= 1, got -2"),
        (
            ["--audio-device", "default"],
            "--audio-device: read either a capture device or files, not both",
        ),
        (["--plot", "timeline.xyz"], "matplotlib cannot write .xyz files; expected one of"),
    ],
)
def test_bad_arguments_refused_before_streaming(
    av_run: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    message: str,
) -> None:
    """One error line and no step printed: --threads below 1 was clamped to 1, --audio-device
    with files ignored, and a --plot suffix matplotlib cannot write failed after the whole
    stream, with no summary."""
    argv = ["--video", str(av_run.clips[3]), "--run", str(av_run.run_dir), "--json"]
    flags = [str(tmp_path / f) if f.endswith(".xyz") else f for f in flags]
    code, lines, err = run_cli([*argv, *flags], capsys)
    assert code == 2 and lines == []
    (line,) = err.strip().splitlines()
    assert line.startswith("avemotion stream: error: ") and message in line
    assert not (tmp_path / "timeline.xyz").exists()


def test_plot_suffixes_matplotlib_writes_are_accepted(
    av_run: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The suffix check lets through what savefig writes: jpg and an upper-case PDF."""
    base = ["--video", str(av_run.clips[3]), "--run", str(av_run.run_dir), "--json"]
    for name in ("timeline.jpg", "timeline.PDF"):
        code, lines, _ = run_cli([*base, "--plot", str(tmp_path / name)], capsys)
        assert code == 0 and "decision" in lines[-1]
        assert (tmp_path / name).stat().st_size > 1000


def test_realtime_paces_the_stream(
    av_run: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``--realtime`` each chunk is fed no earlier than its end in media time. A virtual
    clock (advanced only by the stream's sleeps) stands in for the wall clock, so the check
    holds on a loaded machine and adds no wait."""
    import types

    import avemotion.online.streaming as streaming
    from avemotion.encoders.media import load_audio

    clock = {"now": 100.0, "slept": 0.0}

    def sleep(seconds: float) -> None:
        clock["now"] += seconds
        clock["slept"] += seconds

    monkeypatch.setattr(
        streaming, "time", types.SimpleNamespace(monotonic=lambda: clock["now"], sleep=sleep)
    )
    clip = av_run.clips[0]
    duration = len(load_audio(clip)) / 16000
    argv = ["--video", str(clip), "--run", str(av_run.run_dir), "--json"]
    code, lines, _ = run_cli([*argv, "--realtime", "--no-early-stop"], capsys)
    summary = lines[-1]
    assert code == 0 and summary["steps_encoded"] == summary["total_steps"]
    # Fed no faster than a live source until the answer; after it the rest of the stream is
    # read unpaced, only to count its steps (run_stream).
    paced_until = duration
    if summary["decision"] is not None and not summary["forced"]:
        paced_until = min(duration, summary["decision_media_end_s"])
    assert paced_until > 0.5
    # the last paced chunk ends within one 0.1 s step of the answer (or of the stream)
    assert clock["slept"] == pytest.approx(paced_until, abs=0.1)
    # without --realtime nothing sleeps
    clock["slept"] = 0.0
    assert run_cli([*argv, "--no-early-stop"], capsys)[0] == 0
    assert clock["slept"] == 0.0


def test_fast_inference_matches_fp32(av_run: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """``--inference fast`` (ONNX Runtime, the onnx extra) streams the same answers."""
    require_extra("onnxruntime", "onnx")
    base = ["--video", str(av_run.clips[3]), "--run", str(av_run.run_dir), "--json"]
    runs = {}
    for path in ("fp32", "fast"):
        code, lines, _ = run_cli([*base, "--no-early-stop", "--inference", path], capsys)
        assert code == 0
        runs[path] = lines
    (*fp32, fp32_summary), (*fast, fast_summary) = runs["fp32"], runs["fast"]
    assert set(fp32_summary["backends"].values()) == {"torch"}
    assert "onnxruntime" in fast_summary["backends"].values()  # not fp32 against itself
    assert fast_summary["decision"] == fp32_summary["decision"]
    assert [s["action"] for s in fast] == [s["action"] for s in fp32]
    for a, b in zip(fast, fp32):
        assert a["posteriors"].keys() == b["posteriors"].keys()
        for name in a["posteriors"]:
            assert abs(a["posteriors"][name] - b["posteriors"][name]) < 1e-4


def test_shorter_video_with_separate_audio_says_what_was_cut(
    av_run: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--video 1.0 s beside --audio 2.5 s: 6 steps streamed, the 10 past the video's end
    left out and said so (tests/online/test_recognizer.py checks the rows)."""
    import numpy as np
    import soundfile

    from avemotion.benchmarks.av_fixture import synthetic_av_clip

    video = synthetic_av_clip(tmp_path / "face.mkv", seconds=1.0, size=128, seed=5)
    wav = tmp_path / "speech.wav"
    t = np.arange(40000) / 16000
    soundfile.write(wav, (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000)
    argv = ["stream", "--video", str(video), "--audio", str(wav), "--run", str(av_run.run_dir)]
    with pytest.warns(UserWarning, match="last 10 step"):
        code = main([*argv, "--no-early-stop"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[-1].endswith("6 of 6 steps encoded, 10 past the video's end left out")


@pytest.fixture
def no_device_opened(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Every camera or file/ALSA open the stream attempts, recorded and failed."""
    import av
    import cv2

    opened: list[tuple] = []

    def record(*args: Any, **kwargs: Any) -> None:
        opened.append(args)
        raise OSError(f"opened {args}")

    monkeypatch.setattr(cv2, "VideoCapture", record)
    monkeypatch.setattr(av, "open", record)
    return opened


AUDIO_ONLY_CAMERA = (
    "--camera 0: the run's encoder has no visual part (audio only): no camera would be read; "
    "give --audio-device alone for live audio"
)
VISUAL_ONLY_MICROPHONE = (
    "--audio-device default: the run's encoder has no audio part (visual only): no audio "
    "would be captured"
)
NO_FACES = "--no-lookahead: the run's encoder has no visual part (audio only): no face is searched"


@pytest.mark.parametrize(
    ("which", "flags", "message"),
    [
        ("audio_run", ["--camera", "0", "--audio-device", "default"], AUDIO_ONLY_CAMERA),
        ("audio_run", ["--device", "0", "--audio-device", "default"], AUDIO_ONLY_CAMERA),
        ("visual_run", ["--camera", "0", "--audio-device", "default"], VISUAL_ONLY_MICROPHONE),
        ("visual_run", ["--audio-device", "default"], VISUAL_ONLY_MICROPHONE),
        ("audio_run", ["--audio", "CLIP", "--no-lookahead"], NO_FACES),
        ("audio_run", ["--audio-device", "default", "--no-lookahead"], NO_FACES),
        (
            "av_run",
            ["--audio-device", "default"],
            "--camera: the run's encoder has a visual part: name the camera (--camera N)",
        ),
        (
            "av_run",
            ["--camera", "0"],
            "--audio-device: the run's encoder has an audio part: name an ALSA capture device "
            "(e.g. default)",
        ),
    ],
)
def test_what_the_run_would_not_read_is_refused_before_opening_anything(
    which: str,
    flags: list[str],
    message: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A camera for an audio-only run, a microphone for a visual-only one, the face
    look-ahead switch without faces: each was accepted and ignored (a device the run needs
    and lacks failed only once the stream was read, after a "stopped after 0 steps" line).
    Now one line, once the run says what it reads, before any file or device is opened."""
    run = request.getfixturevalue(which)
    # opening is failed only once the run exists: building it reads its clips
    no_device_opened = request.getfixturevalue("no_device_opened")
    capsys.readouterr()  # what building the run printed
    flags = [str(run.clips[0]) if f == "CLIP" else f for f in flags]
    plot = tmp_path / "timeline.png"
    code = main(["stream", *flags, "--run", str(run.run_dir), "--plot", str(plot)])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.splitlines() == [f"avemotion stream: error: {message}"]
    assert no_device_opened == [] and not plot.exists()


@pytest.mark.parametrize("device", [["--camera", "0"], ["--audio-device", "default"]])
def test_realtime_with_a_capture_device_is_refused_before_loading_the_run(
    device: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A capture device delivers in real time: --realtime would change nothing."""
    from avemotion.online.recognizer import OnlineRecognizer

    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the run was loaded")

    monkeypatch.setattr(OnlineRecognizer, "from_run", never)
    code = main(["stream", *device, "--realtime", "--run", "RUN"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.splitlines() == [
        "avemotion stream: error: --realtime: paces files; a capture device is read in real "
        "time already"
    ]


def test_audio_only_live_stream_reads_the_microphone_alone(
    audio_run: Any,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--audio-device alone is the live switch of an audio-only run (no camera number to
    ignore): the microphone (a clip's audio in 0.1 s blocks here) is read, no camera."""
    import avemotion.online.sources as sources
    from avemotion.encoders.media import load_audio

    samples = load_audio(audio_run.clips[1])
    no_device_opened = request.getfixturevalue("no_device_opened")  # after reading the clip
    called: list[tuple] = []

    def microphone(camera: int | None, audio_device: str) -> Any:
        called.append((camera, audio_device))
        for end in range(1600, len(samples) + 1, 1600):
            yield sources.MediaChunk(end / 16000, audio=samples[end - 1600 : end])

    monkeypatch.setattr(sources, "_alsa_with_camera", microphone)
    code, lines, err = run_cli(
        ["--audio-device", "default", "--run", str(audio_run.run_dir), "--json"], capsys
    )
    assert code == 0 and err == ""
    assert called == [(None, "default")] and no_device_opened == []
    *steps, summary = lines
    assert summary["decision"] is not None and summary["steps_encoded"] == len(steps) > 0


def test_fast_inference_without_onnxruntime_says_torch_ran(
    av_run: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Text mode names the parts ``--inference fast`` ran on torch, and why (JSON lists
    the backends)."""
    import avemotion.encoders.fast as fast
    import avemotion.encoders.fast_head as fast_head

    monkeypatch.setattr(fast, "onnxruntime_available", lambda: False)
    monkeypatch.setattr(fast_head, "onnxruntime_available", lambda: False)
    argv = ["--video", str(av_run.clips[3]), "--run", str(av_run.run_dir), "--inference", "fast"]
    code, lines, _ = run_cli([*argv, "--json"], capsys)
    parts = sorted(lines[-1]["backends"])
    assert code == 0 and set(lines[-1]["backends"].values()) == {"torch"}
    assert main(["stream", *argv]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"inference fast: torch ran {', '.join(parts)} "
        "(onnxruntime is not installed: pip install -e '.[onnx]')"
    )
    assert main(["stream", *argv[:4]]) == 0  # fp32 asked: nothing to say
    assert not capsys.readouterr().out.splitlines()[-1].startswith("inference fast")
