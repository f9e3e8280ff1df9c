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
    parser.add_argument(
        "--workers", type=int, default=2, help="worker processes, or Ray workers (default 2)"
    )
    parser.add_argument(
        "--frame-pool", type=int, default=1, help="face frames per step (11: the paper's pooling)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing store")
    parser.add_argument(
        "--allow-outside-root", action="store_true", help="let CSV paths leave the root"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_device_argument(parser)
    ray = parser.add_argument_group("on Ray (docs/scale-out.md)")
    ray.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="run on Ray: alone, a local instance; 'auto' or ray://host:port joins a cluster",
    )
    ray.add_argument(
        "--threads-per-worker",
        type=int,
        default=None,
        help="--ray: torch threads per worker (1; more round differently from a single-process run)",
    )
    ray.add_argument(
        "--clip-timeout",
        type=float,
        default=None,
        help="--ray: stop when no clip finished in this many seconds (600)",
    )
    ray.add_argument(
        "--stage-media",
        action="store_true",
        help="--ray: ship the media bytes through Ray's object store (small corpora)",
    )
    parser.set_defaults(func=run)


def ray_options(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The :class:`~avemotion.encoders.extract_ray.RayOptions` of ``--ray``, or None without
    it; a Ray-only flag without ``--ray`` is refused in one line (it would do nothing)."""
    given = {
        "threads_per_worker": args.threads_per_worker,
        "clip_timeout": args.clip_timeout,
        "stage_media": args.stage_media or None,
    }
    if args.ray is None:
        for name, value in given.items():
            if value is not None:
                raise ValueError(f"--{name.replace('_', '-')}: only read with --ray")
        return None
    from avemotion.encoders.extract_ray import RayOptions

    chosen = {name: value for name, value in given.items() if value is not None}
    return RayOptions(address=args.ray, workers=args.workers, **chosen)


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
    options = ray_options(args)
    if options is None:
        store, skipped = extract(config)
    else:
        from avemotion.encoders.extract_ray import extract_on_ray

        store, skipped, times = extract_on_ray(config, options)
        print(
            f"on Ray ({options.workers} workers): start-up {times.startup_s:.1f} s, encoder "
            f"broadcast {times.broadcast_s:.2f} s, workers ready after {times.actor_start_s:.1f} s"
        )
        if options.threads_per_worker != 1:
            print(
                f"note: --threads-per-worker {options.threads_per_worker}: rows rounded by "
                "multi-threaded torch, not bit-identical to a single-process store"
            )
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
