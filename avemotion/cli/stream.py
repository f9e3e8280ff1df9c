"""``avemotion stream``: recognise the emotion of a file or a capture device as a live stream.

With ``--turns``, a conversation: one answer per utterance (:mod:`.stream_turns`).

Prints one line per step (one JSON object with ``--json``) and, last, the summary with
``decision``, ``decision_time_s``, ``steps_encoded``, ``total_steps``, ``cut_steps`` (steps
the audio held past the end of a shorter video, left out as extraction leaves them out) and
``posteriors`` (with ``--json`` also ``inputs`` and each network's inference ``backends``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from avemotion.cli.stream_turns import add_turn_arguments, check_turn_args, run_turns

if TYPE_CHECKING:
    import torch

    from avemotion.online.recognizer import OnlineRecognizer, StepResult
    from avemotion.online.sources import MediaChunk
    from avemotion.online.streaming import StreamInterrupted


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stream",
        help="recognise emotion online from a video/audio file or a capture device",
        description="Feed media step by step to a trained run (encoders + LSTM + agent); encoding stops once the agent answers.",
    )
    parser.add_argument(
        "--video",
        help="video file (its audio track is used too when the encoder needs audio and --audio is absent)",
    )
    parser.add_argument(
        "--audio", help="audio file (wav, flac, or any container with an audio track)"
    )
    parser.add_argument(
        "--camera",
        type=int,
        help="read camera N (/dev/videoN) instead of files (runs with a visual part)",
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="where the networks run: auto (CUDA when present), cpu or cuda; the CUDA path "
        "is not exercised by CI (an integer N is still read as --camera N)",
    )
    parser.add_argument(
        "--audio-device",
        help="ALSA capture device for live audio (e.g. default): with --camera N for an "
        "audio-visual run, alone for an audio-only one",
    )
    parser.add_argument("--run", required=True, help="trained run directory (from avemotion train)")
    parser.add_argument(
        "--encoder", help="encoder directory (default: the one named by the run's feature store)"
    )
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="pace file input at wall-clock speed, as a live source (files only: a capture "
        "device is real time already)",
    )
    parser.add_argument(
        "--plot",
        help="write the confidence timeline figure here (png, pdf, svg, jpg…: by its suffix)",
    )
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per step, the summary object last"
    )
    parser.add_argument(
        "--no-early-stop",
        action="store_true",
        help="keep encoding after the decision (the full timeline)",
    )
    parser.add_argument(
        "--no-lookahead",
        action="store_true",
        help="search faces on the main thread only (faster on a machine with no free core; "
        "runs with a visual part)",
    )
    parser.add_argument(
        "--speaker-state",
        metavar="FILE",
        help="speaker adaptation state (run trained on an `avemotion adapt` store): created if "
        "absent, updated after the utterance; encoding then goes on to the stream's end",
    )
    parser.add_argument(
        "--inference",
        choices=("fp32", "fast"),
        default="fp32",
        help="branch CNNs' path: fp32 (torch) or fast (ONNX Runtime, `pip install -e '.[onnx]'`; "
        "falls back to torch without it, and says so); CPU only",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: fastest for batch-1 steps)",
    )
    add_turn_arguments(parser)
    parser.set_defaults(func=run)


def _describe(step: object, class_names: list[str], posterior_names: list[str]) -> str:
    posteriors = step.posteriors  # type: ignore[attr-defined]
    best = int(posteriors.argmax())
    if step.action is None:  # type: ignore[attr-defined]
        what = "(after decision)"
    elif step.action == 0:  # type: ignore[attr-defined]
        what = "wait"
    else:
        what = f"ANSWER {class_names[step.action - 1]}" + (" (forced)" if step.forced else "")  # type: ignore[attr-defined]
    return f"t={step.time_s:6.2f} s  step {step.step:4d}  {what:<24} top: {posterior_names[best]} {posteriors[best]:.2f}"  # type: ignore[attr-defined]


def run(args: argparse.Namespace) -> int:
    """Recognise one stream: print every step, then the summary; 2 when it ends undecided."""
    import torch

    from avemotion.online.streaming import StreamInterrupted, run_stream

    device = _check_args(args)
    check_turn_args(args)
    torch.set_num_threads(args.threads)
    recognizer = _load_recognizer(args, device)
    _check_against_run(args, recognizer)
    if args.turns:
        return run_turns(args, recognizer)
    chunks, inputs = _open_source(args, recognizer)
    live = _live(args)
    try:
        summary = run_stream(
            recognizer,
            chunks,
            realtime=args.realtime,
            on_step=_step_printer(args, recognizer),
            stop_reading_on_decision=live and recognizer.stop_on_decision,
        )
    except StreamInterrupted as error:
        return _report_interrupted(args, recognizer, error)
    _plot(args, recognizer, summary)
    _print_summary(args, recognizer, summary, inputs)
    return 0


def _check_args(args: argparse.Namespace) -> torch.device:
    """Resolve ``--device`` (reading the old ``--device N`` as ``--camera N``) and reject
    inputs that contradict each other; return the device the networks run on."""
    from avemotion.device import resolve_device
    from avemotion.plotting import check_plot_suffix

    if args.device.isdigit():  # the camera's old spelling, --device N
        args.camera, args.device = int(args.device), "auto"
    device = resolve_device(args.device)
    files = args.video is not None or args.audio is not None
    if not files and not _live(args):
        raise ValueError("input: give --video and/or --audio, or --camera N and/or --audio-device")
    if args.camera is not None and files:
        raise ValueError("--camera: read either a capture device or files, not both")
    if args.audio_device is not None and files:
        # files carry their own audio; the capture device would be ignored
        raise ValueError("--audio-device: read either a capture device or files, not both")
    if args.realtime and _live(args):  # it would change nothing: a device delivers in real time
        raise ValueError("--realtime: paces files; a capture device is read in real time already")
    if args.inference != "fp32" and device.type != "cpu":
        raise ValueError(f"--inference {args.inference}: runs on the CPU; use --device cpu")
    if args.threads < 1:  # was clamped to 1 without a word
        raise ValueError(f"--threads: expected an integer >= 1, got {args.threads}")
    if args.plot:
        check_plot_suffix(args.plot)
    return device


def _live(args: argparse.Namespace) -> bool:
    """Whether the stream comes from capture devices (a camera, a microphone or both)."""
    return args.camera is not None or args.audio_device is not None


def _check_against_run(args: argparse.Namespace, recognizer: OnlineRecognizer) -> None:
    """Refuse what the run's modality makes useless, known only once the run is loaded,
    before any file or device is opened: the face look-ahead switch of a run that searches
    no face, capture devices the run would not read (or lacks)."""
    from avemotion.online.sources import check_devices

    if args.no_lookahead and not recognizer.need_video:
        raise ValueError(
            "--no-lookahead: the run's encoder has no visual part (audio only): no face is searched"
        )
    if _live(args):
        check_devices(args.camera, args.audio_device, recognizer.need_video, recognizer.need_audio)


def _load_recognizer(args: argparse.Namespace, device: torch.device) -> OnlineRecognizer:
    """The trained run's recogniser (with the speaker's state, if any), its encoder on ``device``."""
    from avemotion.online.recognizer import OnlineRecognizer

    recognizer = OnlineRecognizer.from_run(
        args.run,
        args.encoder,
        stop_on_decision=not args.no_early_stop,
        face_lookahead=not args.no_lookahead,
        speaker_state=args.speaker_state,
        inference=args.inference,
    )
    recognizer.encoder.to(device)
    return recognizer


def _open_source(
    args: argparse.Namespace, recognizer: OnlineRecognizer
) -> tuple[Iterator[MediaChunk], list[str]]:
    """The media chunks of the capture device or the files, and what each input file supplies
    (printed to stderr; none for a capture device)."""
    from avemotion.online.sources import describe_inputs, device_chunks, file_chunks

    if _live(args):
        chunks = device_chunks(
            args.camera, recognizer.need_video, recognizer.need_audio, args.audio_device
        )
        return chunks, []
    chunks = file_chunks(args.video, args.audio, recognizer.need_video, recognizer.need_audio)
    inputs = describe_inputs(args.video, args.audio, recognizer.need_video, recognizer.need_audio)
    for line in inputs:
        print(f"input {line}", file=sys.stderr)
    return chunks, inputs


def _step_printer(
    args: argparse.Namespace, recognizer: OnlineRecognizer
) -> Callable[[StepResult], None]:
    """The per-step callback: one line per step, or one JSON object with ``--json``."""
    names = recognizer.class_names

    def show(step: StepResult) -> None:
        print(
            json.dumps(step.to_json(names, recognizer.posterior_names))
            if args.json
            else _describe(step, names, recognizer.posterior_names),
            flush=True,
        )

    return show


def _report_interrupted(
    args: argparse.Namespace, recognizer: OnlineRecognizer, error: StreamInterrupted
) -> int:
    """Print the summary of a stream that ended before any decision (and the error), plot
    what was encoded; exit code 2."""
    summary = {**error.summary, "error": str(error)}
    print(
        json.dumps(summary)
        if args.json
        else f"stopped after {summary['steps_encoded']} steps: no decision",
        flush=True,
    )
    print(f"avemotion stream: error: {error}", file=sys.stderr)
    _plot(args, recognizer, summary)
    return 2


def _print_summary(
    args: argparse.Namespace,
    recognizer: OnlineRecognizer,
    summary: dict[str, Any],
    inputs: list[str],
) -> None:
    """The last line: the decision, its time and the steps encoded (the JSON summary, with the
    inputs and each network's inference backends, under ``--json``)."""
    if args.json:
        backends = recognizer.step_encoder.backends  # which inference path really ran
        print(json.dumps({**summary, "inputs": inputs, "backends": backends}))
        return
    how = "forced at the stream's end" if summary["forced"] else "agent's decision"
    print(
        f"decision: {summary['decision']} at {summary['decision_time_s']:.2f} s ({how}); "
        f"{summary['steps_encoded']} of {summary['total_steps']} steps encoded"
        + (
            f", {summary['cut_steps']} past the video's end left out"
            if summary["cut_steps"]
            else ""
        )
    )
    if "speaker_state" in summary:
        print(f"speaker state: {summary['speaker_state']['earlier_utterances']} earlier utterances")
    if args.inference == "fast":
        _print_fallback(recognizer.step_encoder.backends)


def _print_fallback(backends: dict[str, str]) -> None:
    """Say which parts ``--inference fast`` ran on torch all the same, and why."""
    from avemotion.encoders.fast import onnxruntime_available

    on_torch = sorted(part for part, backend in backends.items() if backend == "torch")
    if on_torch:
        why = (
            "its fastest measured path"
            if onnxruntime_available()
            else "onnxruntime is not installed: pip install -e '.[onnx]'"
        )
        print(f"inference fast: torch ran {', '.join(on_torch)} ({why})")


def _plot(args: argparse.Namespace, recognizer: object, summary: dict) -> None:
    if not args.plot or not recognizer.steps:  # type: ignore[attr-defined]
        return
    from avemotion.online.timeline import plot_timeline

    source = args.video or args.audio
    if source is None:
        source = f"camera {args.camera}" if args.camera is not None else args.audio_device
    plot_timeline(
        recognizer.steps,
        recognizer.class_names,
        args.plot,
        summary,
        title=str(source),
        posterior_names=recognizer.posterior_names,
    )  # type: ignore[attr-defined]
    print(f"wrote {args.plot}", file=sys.stderr)
