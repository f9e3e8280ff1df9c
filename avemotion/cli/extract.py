"""``avemotion extract``: encode a corpus into a feature store (resumable)."""

from __future__ import annotations

import argparse

from avemotion.device import add_device_argument, resolve_device


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "extract",
        help="encode a corpus with an encoder directory into a feature store",
        description="Encode every clip into per-step rows. Killed runs resume from STORE.work/.",
    )
    parser.add_argument(
        "--dataset",
        required=True,
        help="corpus: ravdess, crema-d, rml, baum-1s, enterface, mead, emodb or csv",
    )
    parser.add_argument(
        "--root", required=True, help="corpus folder (or the CSV file for --dataset csv)"
    )
    parser.add_argument("--encoder", required=True, help="encoder directory (from train-encoder)")
    parser.add_argument("--out", required=True, help="feature store directory to write")
    parser.add_argument(
        "--level",
        default="embedding",
        choices=("embedding", "fusion", "temporal"),
        help="what each row holds",
    )
    parser.add_argument("--speakers", nargs="+", help="only these speakers")
    parser.add_argument(
        "--exclude-speakers", nargs="+", default=[], help="leave these speakers out"
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument(
        "--frame-pool", type=int, default=1, help="face frames per step (11: the paper's pooling)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing store")
    parser.add_argument(
        "--allow-outside-root", action="store_true", help="let CSV paths leave the root"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_device_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from avemotion.encoders.corpus_files import printable, summary_line
    from avemotion.encoders.extract import ExtractConfig, extract

    config = ExtractConfig(
        dataset=args.dataset,
        root=args.root,
        encoder=args.encoder,
        out=args.out,
        level=args.level,
        speakers=args.speakers,
        exclude_speakers=args.exclude_speakers,
        workers=args.workers,
        frame_pool=args.frame_pool,
        overwrite=args.overwrite,
        device=str(resolve_device(args.device)),
        allow_outside_root=args.allow_outside_root,
        progress=not args.no_progress,
    )
    store, skipped = extract(config)
    summary = store.summary()
    print(
        f"wrote {store.path}: {summary['n_clips']} clips, {summary['total_frames']} steps of dim {summary['dim']} ({args.level})"
    )
    fraction = store.meta.get("face_detected_fraction")
    if fraction is not None:
        print(f"face detected in {fraction:.1%} of steps")
    print(summary_line(args.root, store.meta["files"]))
    for reason in printable(skipped):
        print(f"  skipped {reason}")
    for line in printable(store.meta.get("cut", [])):
        print(f"  cut {line}")
    return 0
