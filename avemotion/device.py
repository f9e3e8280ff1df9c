"""One meaning for ``--device auto|cpu|cuda`` across every command.

Commands that run torch networks (train-encoder, extract, train, stream) accept the same three
spellings. ``auto`` picks CUDA when torch can see a GPU and the CPU otherwise, so the default is
right on both kinds of machine. Asking for ``cuda`` where there is none is a user error, reported
as one line (a ``ValueError``, which the CLI prints and turns into exit status 2) rather than a
traceback from deep inside torch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

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


# ------------------------------------------------------------------ devices
# A net placed on a GPU takes and returns CPU tensors: its entry points move their inputs
# to the net's device and their outputs back, so the training loops, extraction and the
# online recogniser run unchanged on either (``avemotion.device``; CPU is a no-op).
def _move(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (tuple, list)):
        return type(value)(_move(v, device) for v in value)
    return value


def _device_of(value: Any) -> torch.device:
    if isinstance(value, torch.Tensor):
        return value.device
    if isinstance(value, (tuple, list)):
        for item in value:
            if isinstance(item, (torch.Tensor, tuple, list)):
                return _device_of(item)
    return torch.device("cpu")


def on_own_device(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run a module method on the module's device, returning on the caller's device."""

    @functools.wraps(method)
    def run(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
        own = next(self.parameters()).device
        home = _device_of(args)
        if own == home:
            return method(self, *args, **kwargs)
        return _move(method(self, *_move(args, own), **kwargs), home)

    return run


def _hook_head(head: nn.Module) -> None:
    """Make a head called directly (``net.head(x)``) take and return caller-side tensors."""

    def before(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        module._caller_device = _device_of(args)  # type: ignore[assignment]
        return _move(args, next(module.parameters()).device)

    def after(module: nn.Module, args: tuple[Any, ...], output: Any) -> Any:
        return _move(output, module._caller_device)

    head.register_forward_pre_hook(before)
    head.register_forward_hook(after)


def place_on(nets: dict[str, nn.Module], device: str | torch.device) -> None:
    """Move every net to ``device``; off the CPU, their heads also move tensors across."""
    device = torch.device(device)
    for net in nets.values():
        net.to(device)
        head = getattr(net, "head", None)
        if device.type != "cpu" and isinstance(head, nn.Module):
            _hook_head(head)


def bridge(net: nn.Module, device: str | torch.device, always: bool = False) -> nn.Module:
    """Move ``net`` to ``device``; off the CPU (or with ``always``), its ``forward`` and
    ``step`` take and return tensors on the caller's device, so a training loop, a replay
    and an evaluation written for CPU tensors run unchanged (gradients flow through the
    moves). ``always`` exercises the bridge on a CPU-only machine (tests)."""
    device = torch.device(device)
    net.to(device)
    if device.type != "cpu" or always:
        _hook_head(net)
        if callable(getattr(type(net), "step", None)):
            net.step = functools.partial(on_own_device(type(net).step), net)  # type: ignore[method-assign]
    return net
