"""``avemotion evaluate-turns``: score a run on long recordings with turn-level labels."""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate-turns",
        help="stream recordings turn by turn and score them against turn-level labels",
        description="The offline twin of `stream --turns`: turn detection precision and recall "
        "(matching on overlap), per-turn accuracy, earliness within the labelled turn and HM. "
        "With --json the last line of stdout is one JSON object.",
    )
    parser.add_argument("--run", required=True, metavar="RUN", help="trained run directory")
    parser.add_argument("--audio", help="a recording (16 kHz wav/flac, or any audio file)")
    parser.add_argument("--labels", metavar="CSV", help="its turns: start,end,label (seconds)")
    parser.add_argument(
        "--corpus",
        metavar="DIR",
        help="a folder of recordings: each NAME.csv with NAME.flac or NAME.wav beside it",
    )
    parser.add_argument("--encoder", help="encoder directory (default: the run's store's)")
    parser.add_argument(
        "--vad", choices=("silero", "energy"), default="silero", help="voice-activity detector"
    )
    parser.add_argument(
        "--plot",
        metavar="FILE",
        help="one recording: draw its turn timeline with the labelled turns below (png, pdf, svg)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    parser.set_defaults(func=run)


def _recordings(args: argparse.Namespace) -> list[tuple]:
    from pathlib import Path

    from avemotion.online.turn_evaluation import corpus_recordings

    if args.corpus is not None:
        if args.audio or args.labels:
            raise ValueError("--corpus: give either --corpus or --audio with --labels, not both")
        found, unused = corpus_recordings(args.corpus)
        for line in unused:
            print(f"not used: {line}", file=sys.stderr)
        return found
    if not (args.audio and args.labels):
        raise ValueError("input: give --audio FILE with --labels CSV, or --corpus DIR")
    for flag, path in (("--audio", args.audio), ("--labels", args.labels)):
        if not Path(path).is_file():
            raise ValueError(f"{flag}: {path}: no such file")
    return [(Path(args.audio), Path(args.labels))]


def run(args: argparse.Namespace) -> int:
    import torch

    from avemotion.online.recognizer import OnlineRecognizer
    from avemotion.online.turn_evaluation import evaluate_turns

    if args.threads < 1:
        raise ValueError(f"--threads: expected an integer >= 1, got {args.threads}")
    recordings = _recordings(args)
    if args.plot:
        from avemotion.plotting import check_plot_suffix

        check_plot_suffix(args.plot)
        if len(recordings) != 1:
            raise ValueError("--plot: draws one recording; give --audio with --labels")
    torch.set_num_threads(args.threads)
    recognizer = OnlineRecognizer.from_run(args.run, args.encoder)
    result = evaluate_turns(
        recognizer, recordings, args.vad, progress=lambda line: print(line, file=sys.stderr)
    )
    if args.plot:
        _plot(args.plot, recordings[0], result)
    if args.json:
        print(json.dumps(result))
        return 0
    pooled = result["pooled"]
    print(
        f"turns: precision {pooled['precision']:.3f}, recall {pooled['recall']:.3f} "
        f"({pooled['matched']} matched of {pooled['detected']} detected, {pooled['labelled']} labelled)"
    )
    print(
        f"answers: accuracy {pooled['accuracy']:.3f}, earliness {pooled['earliness']:.3f}, "
        f"harmonic mean {pooled['harmonic_mean']:.3f}, {pooled['forced']} forced"
    )
    return 0


def _plot(out: str, recording: tuple, result: dict) -> None:
    """The recording's turn timeline, its labelled turns as a lane below."""
    from avemotion.online.turn_metrics import read_labels
    from avemotion.online.turn_timeline import plot_turns
    from avemotion.online.turns import Turn

    audio, labels = recording
    score = result["recordings"][str(audio)]
    fields = set(Turn.__dataclass_fields__)
    turns = [Turn(**{k: v for k, v in t.items() if k in fields}) for t in score["turns"]]
    title = f"{audio.name}: turns and answers (labelled turns below)"
    plot_turns(
        turns, out, {"turns": len(turns), "forced": score["forced"]}, title, read_labels(labels)
    )
    print(f"wrote {out}", file=sys.stderr)
