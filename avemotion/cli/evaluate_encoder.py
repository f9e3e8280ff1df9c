"""``avemotion evaluate-encoder``: whole-clip accuracy of an encoder directory on a corpus."""

from __future__ import annotations

import argparse
import json

from avemotion.device import add_device_argument, resolve_device


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate-encoder",
        help="whole-clip accuracy, per-class recall and confusion of an encoder on a corpus",
        description="Each clip's prediction is the argmax of its mean posterior over steps. "
        "Classes are matched by name (disgust/disgusted, fear/fearful, surprise/surprised); "
        "clips of corpus classes the encoder cannot name are counted apart. Every file not "
        "scored is listed with its reason. The last line printed is JSON.",
    )
    parser.add_argument("--encoder", required=True, help="encoder directory")
    parser.add_argument("--dataset", required=True, help="corpus: mead, ravdess, ... or csv")
    parser.add_argument("--root", required=True, help="corpus folder (or CSV file)")
    parser.add_argument("--speakers", nargs="+", help="only these speakers (e.g. held-out ones)")
    parser.add_argument(
        "--allow-outside-root", action="store_true", help="let CSV paths leave the root"
    )
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_device_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from avemotion.encoders.corpus_files import printable, summary_line
    from avemotion.encoders.evaluate import UNNAMED, evaluate_encoder

    result = evaluate_encoder(
        args.encoder,
        args.dataset,
        args.root,
        args.speakers,
        str(resolve_device(args.device)),
        args.allow_outside_root,
        progress=not args.no_progress,
    )
    summary = result.summary()
    if not args.json:
        print(
            f"{args.encoder} on {args.dataset}: whole-clip accuracy {result.accuracy:.3f} "
            f"({result.correct} of {result.n_clips} clips of matched classes)"
        )
        for name, recall in summary["per_class_recall"].items():
            print(f"  {name:>10} recall {recall:.2f}")
        width = max(len(c) for c in result.encoder_classes)
        print("  confusion (rows: corpus, columns: " + ", ".join(result.encoder_classes) + ")")
        for name, row in zip(result.corpus_classes, summary["confusion"]["counts"]):
            print(f"  {name:>10} " + " ".join(f"{n:>{width}}" for n in row))
        for name, count in result.unmatched.items():
            print(f"  {count} clip(s) of {name}: {UNNAMED}")
        # as extract prints it; the unmatched classes' files are counted just above (and
        # listed one by one, like every skipped file, in the JSON)
        print(summary_line(args.root, result.files))
        for reason in printable([line for line in result.skipped if UNNAMED not in line]):
            print(f"  skipped {reason}")
    print(json.dumps(summary))
    return 0
