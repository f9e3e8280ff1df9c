"""One meaning for ``--device auto|cpu|cuda`` across every command.

Commands that run torch networks (train-encoder, extract, train, stream) accept the same three
spellings. ``auto`` picks CUDA when torch can see a GPU and the CPU otherwise, so the default is
right on both kinds of machine. Asking for ``cuda`` where there is none is a user error, reported
as one line (a ``ValueError``, which the CLI prints and turns into exit status 2) rather than a
traceback from deep inside torch.
"""

from __future__ import annotations

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(spec: str) -> torch.device:
    """The torch device that ``--device SPEC`` names on this machine."""
    if spec not in DEVICE_CHOICES:
        raise ValueError(f"--device {spec}: choose one of {', '.join(DEVICE_CHOICES)}")
    cuda = torch.cuda.is_available()
    if spec == "cuda" and not cuda:
        raise ValueError(
            "--device cuda: CUDA is not available on this machine "
            "(torch.cuda.is_available() is False)"
        )
    if spec == "cpu" or not cuda:
        return torch.device("cpu")
    return torch.device("cuda")


def add_device_argument(parser, default: str = "auto") -> None:
    """Register the shared ``--device`` option on a subcommand's parser."""
    parser.add_argument(
        "--device",
        choices=DEVICE_CHOICES,
        default=default,
        help="where the networks run: auto (CUDA when present, else CPU), cpu or cuda "
        f"(default {default}); the CUDA path is not exercised by CI",
    )
