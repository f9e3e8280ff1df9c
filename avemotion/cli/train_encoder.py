"""``avemotion train-encoder``: train one stage of the encoder cascade into an ENC_DIR."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from avemotion.device import add_device_argument, resolve_device

if TYPE_CHECKING:
    from avemotion.encoders.train_config import TrainConfig


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-encoder",
        help="train an audio/visual branch, the fusion DNN or the temporal LSTM on a corpus",
        description="Train one stage and write an encoder directory. Stages chain with --init.",
    )
    parser.add_argument(
        "--dataset", help="corpus: ravdess, crema-d, rml, baum-1s, enterface, mead, emodb or csv"
    )
    parser.add_argument("--root", help="corpus folder (or the CSV file for --dataset csv)")
    parser.add_argument(
        "--modality", choices=("audio", "visual", "fusion", "temporal"), help="part to train"
    )
    parser.add_argument(
        "--out", required=True, help="encoder directory to write (may equal an --init directory)"
    )
    parser.add_argument(
        "--init",
        action="append",
        default=[],
        help="encoder directory or local weights file to start from (repeatable)",
    )
    parser.add_argument(
        "--params",
        help="the official code's params.json (num_epochs, batch_size, learning_rate, decay_step, decay_rate, modality, speaker)",
    )
    parser.add_argument("--heldout", nargs="+", help="held-out speakers (params.json 'speaker')")
    parser.add_argument(
        "--train-speakers", nargs="+", help="speakers to train on (default: all not held out)"
    )
    parser.add_argument("--epochs", type=int, dest="num_epochs", help="training epochs")
    parser.add_argument("--batch-size", type=int, dest="batch_size")
    parser.add_argument("--lr", type=float, dest="learning_rate")
    parser.add_argument(
        "--decay-step", type=int, dest="decay_step", help="StepLR period (0: one-cycle)"
    )
    parser.add_argument(
        "--decay-rate",
        type=float,
        dest="decay_rate",
        help="StepLR factor in (0, 1]; needs --decay-step > 0",
    )
    parser.add_argument(
        "--audio-variant",
        choices=("small", "vggish", "whisper-base", "whisper-tiny-en"),
        help="audio branch; whisper-* is the frozen pretrained Whisper encoder with a trained "
        "head (weights from the [whisper] extra, or --init a faster-whisper folder or an "
        "OpenAI checkpoint; docs/whisper-branch.md)",
    )
    parser.add_argument(
        "--visual-variant",
        choices=("small", "mobilenet_v2", "mini-xception"),
        help="visual branch; mini-xception is the pretrained FER2013 network (--init its "
        "emotion_model.hdf5, default ../shared/models/fer2013-mini-xception/ when present)",
    )
    parser.add_argument(
        "--fine-tune",
        action="store_true",
        default=None,
        help="visual: train the pretrained backbone too (default: frozen, only the head learns)",
    )
    add_device_argument(parser)
    parser.add_argument(
        "--audio-members",
        type=int,
        help="audio: train an ensemble of this many branches (embeddings concatenated, "
        "mean log-posterior; default 1)",
    )
    parser.add_argument("--temporal-hidden", type=int, help="temporal: LSTM hidden size")
    parser.add_argument(
        "--temporal-copies",
        type=int,
        help="extra mel-warped views per clip for the LSTM (default 2)",
    )
    parser.add_argument(
        "--temporal-input",
        help="what the LSTM reads per step: '+'-joined embedding, posteriors, statistics "
        "(default embedding)",
    )
    parser.add_argument(
        "--temporal-late-weight",
        type=float,
        help="temporal: weigh step t of T by ((t+1)/T)**power in the loss (default 0: alike)",
    )
    parser.add_argument(
        "--cross-fit",
        type=int,
        help="temporal: train the LSTM on out-of-fold features from this many speaker folds",
    )
    parser.add_argument(
        "--window-fraction",
        type=float,
        help="audio, visual, fusion: fraction of training windows per epoch, in (0, 1]",
    )
    parser.add_argument("--seed", type=int)
    parser.add_argument("--threads", type=int, help="torch threads (default 1)")
    parser.add_argument(
        "--allow-outside-root",
        action="store_true",
        default=None,
        help="let CSV paths leave the root",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the stage's metrics as one JSON object"
    )
    parser.set_defaults(func=run)


def _init_sources(args: argparse.Namespace) -> list[str]:
    """``--init`` as given; for a mini-xception visual stage without one, the shared
    FER2013 weights file (its absence is reported by the loader, naming the path)."""
    if args.init or args.visual_variant != "mini-xception" or args.modality != "visual":
        return list(args.init)
    from avemotion.encoders.mini_xception import default_weights_path

    return [str(default_weights_path())]


def _config(args: argparse.Namespace) -> tuple[TrainConfig, dict[str, str]]:
    """The stage's settings (``--params``, the flags over it) and how the user spelt each
    setting they gave (a flag, or a params.json key): only those may be refused as unread
    by the stage, a default being nobody's choice."""
    from avemotion.encoders.train_config import TrainConfig, option_flag, read_params_json

    flags = {
        "dataset": args.dataset,
        "root": args.root,
        "modality": args.modality,
        "out": args.out,
        "init": _init_sources(args) or None,
        "speaker": args.heldout,
        "train_speakers": args.train_speakers,
        "num_epochs": args.num_epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "decay_step": args.decay_step,
        "decay_rate": args.decay_rate,
        "audio_variant": args.audio_variant,
        "visual_variant": args.visual_variant,
        "fine_tune": args.fine_tune,
        "device": str(resolve_device(args.device)),
        "audio_members": args.audio_members,
        "temporal_late_weight": args.temporal_late_weight,
        "temporal_hidden": args.temporal_hidden,
        "temporal_copies": args.temporal_copies,
        "temporal_input": args.temporal_input,
        "cross_fit": args.cross_fit,
        "window_fraction": args.window_fraction,
        "seed": args.seed,
        "threads": args.threads,
        "allow_outside_root": args.allow_outside_root,
    }
    flags = {k: v for k, v in flags.items() if v is not None}
    if not args.params and args.modality is None:
        raise ValueError("--modality: required (on the command line or in --params)")
    params = read_params_json(args.params) if args.params else {}
    given = {**{k: f"{args.params}: {k}" for k in params}, **{k: option_flag(k) for k in flags}}
    return TrainConfig(**{**params, **flags}), given


def run(args: argparse.Namespace) -> int:
    from avemotion.encoders.corpus_files import printable, summary_line
    from avemotion.encoders.train import train_encoder
    from avemotion.encoders.train_config import check_stage_options

    config, given = _config(args)
    for name in ("dataset", "root"):
        if not getattr(config, name):
            raise ValueError(f"--{name}: required")
    check_stage_options(config, given)  # before train_encoder reads the corpus or writes
    entry = train_encoder(config)
    if args.json:
        print(json.dumps(entry["metrics"]))
        return 0
    metrics = entry["metrics"]
    print(
        f"trained {entry['stage']} on {entry['dataset']}: {entry['n_train_clips']} clips of {len(entry['train_speakers'])} speakers in {entry['seconds']} s -> {config.out}"
    )
    print(summary_line(config.root, entry["files"]))
    for reason in printable(entry["skipped"]):
        print(f"  skipped {reason}")
    if metrics:
        held = ", ".join(entry["heldout_speakers"])
        print(f"held-out speakers ({held}), {metrics['n_clips']} clips:")
        print(
            f"  per-window accuracy  {metrics['per_window']['accuracy']:.3f} (unweighted {metrics['per_window']['unweighted_accuracy']:.3f})"
        )
        print(
            f"  whole-clip accuracy  {metrics['whole_clip']['accuracy']:.3f} (unweighted {metrics['whole_clip']['unweighted_accuracy']:.3f})"
        )
        if "whole_clip_mean_posterior" in metrics:
            mean = metrics["whole_clip_mean_posterior"]
            print(
                f"  whole-clip accuracy, mean posterior over steps  {mean['accuracy']:.3f} (unweighted {mean['unweighted_accuracy']:.3f})"
            )
        if "after_fraction" in metrics:
            print(
                "  accuracy after fraction of clip  "
                + ", ".join(f"{k}: {v:.3f}" for k, v in metrics["after_fraction"].items())
            )
    else:
        print("no held-out speakers: no accuracy to report")
    return 0
