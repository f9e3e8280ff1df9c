"""``avemotion stream --turns``: a conversation, one early answer per utterance.

Prints one line per turn (one JSON object with ``--json``: ``turn``, ``start_s``, ``end_s``,
``decision_s``, ``label``, ``confidence``, ``steps_encoded``, ``forced``, ...) as each turn
is answered, then the summary (``turns``: their count, what was skipped, any error) last.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from avemotion.online.chunks import Skipped
    from avemotion.online.recognizer import OnlineRecognizer
    from avemotion.online.sources import MediaChunk
    from avemotion.online.turns import Turn, TurnStreamer


def add_turn_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--turns",
        action="store_true",
        help="a conversation: find utterances in the audio with a voice-activity detector and "
        "answer each one early, until the stream ends (one line or JSON object per turn)",
    )
    parser.add_argument(
        "--vad",
        choices=("silero", "energy"),
        default=None,
        help="--turns: the voice-activity detector (default silero: see docs/conversation.md; "
        "energy needs no model)",
    )


def check_turn_args(args: argparse.Namespace) -> None:
    """Refuse the options ``--turns`` would ignore, and ``--vad`` without it."""
    if not args.turns:
        if args.vad is not None:
            raise ValueError("--vad: only read with --turns")
        return
    if args.no_early_stop:
        raise ValueError("--no-early-stop: not with --turns (encoding pauses after each answer)")
    args.vad = args.vad or "silero"


def make_streamer(args: argparse.Namespace, recognizer: OnlineRecognizer) -> TurnStreamer:
    from avemotion.online.turns import TurnStreamer
    from avemotion.online.vad import TurnConfig, TurnTracker, make_detector

    return TurnStreamer(recognizer, TurnTracker(make_detector(args.vad), TurnConfig()))


def turn_source(
    args: argparse.Namespace, recognizer: OnlineRecognizer
) -> Iterator[MediaChunk | Skipped]:
    """The capture devices, or the files (corrupt stretches named and skipped: see
    :func:`~avemotion.online.turn_stream.turn_file_stretches`)."""
    from avemotion.online.sources import device_chunks
    from avemotion.online.turn_stream import turn_file_stretches

    video = recognizer.need_video
    if args.audio_device is not None:
        return device_chunks(args.camera, video, True, args.audio_device)
    return turn_file_stretches(args.video, args.audio, video)


def run_turns(args: argparse.Namespace, recognizer: OnlineRecognizer) -> int:
    """Stream the turns; exit 0, or 2 when the source broke before its end."""
    from avemotion.online import turn_stream

    streamer = make_streamer(args, recognizer)
    summary = turn_stream.run_turns(
        streamer,
        turn_source(args, recognizer),
        realtime=args.realtime,
        on_turn=lambda turn: print(
            json.dumps(turn.to_json()) if args.json else describe_turn(turn), flush=True
        ),
        on_skip=lambda s: print(
            f"skipped {s.start_s:.2f}–{s.end_s:.2f} s: {s.reason}", file=sys.stderr, flush=True
        ),
    )
    if args.plot and streamer.turns:
        from avemotion.online.turn_timeline import plot_turns

        files = args.audio or args.video
        source = Path(files).name if files else f"audio device {args.audio_device}"
        plot_turns(streamer.turns, args.plot, summary, title=f"{source}: turns and answers")
        print(f"wrote {args.plot}", file=sys.stderr)
    print(json.dumps(summary) if args.json else describe_summary(summary), flush=True)
    if "error" in summary:
        print(f"avemotion stream: error: {summary['error']}", file=sys.stderr)
        return 2
    return 0


def describe_turn(turn: Turn) -> str:
    how = "forced at its end" if turn.forced else "agent's decision"
    answer = f"{turn.label} ({turn.confidence:.2f})" if turn.confidence is not None else turn.label
    return (
        f"turn {turn.turn:3d}  {turn.start_s:7.2f}–{turn.end_s:7.2f} s  {answer} at "
        f"{turn.decision_s:7.2f} s ({how}); {turn.steps_encoded} of {turn.steps} steps encoded"
    )


def describe_summary(summary: dict[str, Any]) -> str:
    parts = [
        f"{summary['turns']} turns in {summary['stream_s']:.1f} s",
        f"{summary['forced']} forced",
        f"{summary['steps_encoded']} steps encoded",
    ]
    if summary["dropped_bursts"]:
        parts.append(f"{summary['dropped_bursts']} noise bursts shorter than a turn ignored")
    if summary["skipped"]:
        parts.append(f"{len(summary['skipped'])} stretches skipped")
    if "speaker_state" in summary:
        parts.append(f"speaker state: {summary['speaker_state']['utterances_now']} utterances")
    return "; ".join(parts)
