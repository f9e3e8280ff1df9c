"""Our DQN's ``checkpoint.pt``: everything a resumed run needs to continue exactly as the
uninterrupted one would (networks, optimiser, replay memory, counters and random states),
saved atomically and loaded with ``weights_only=True``, all or nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avemotion.atomic import torch_save_atomic


def save_checkpoint(
    path: Path,
    nets: tuple[torch.nn.Module, torch.nn.Module, torch.optim.Optimizer],
    counters: tuple[int, int],
    rng: np.random.Generator,
    earliness: Any | None,
    replay: Any | None,
) -> None:
    """Write the online and target networks and the optimiser (``nets``), the env steps
    and updates so far (``counters``), both random states, the matched earliness weight
    (if any) and the replay memory (None: left out)."""
    online, target, optimiser = nets
    state = {
        "online": online.state_dict(),
        "target": target.state_dict(),
        "optimiser": optimiser.state_dict(),
        "global_step": counters[0],
        "updates": counters[1],
        "rng": pack_rng(rng.bit_generator.state),
        "torch_rng": torch.get_rng_state(),
    }
    if earliness is not None:
        state["earliness_weight"] = earliness.state_dict()
    if replay is not None:
        state["replay"] = replay.state_dict()
    torch_save_atomic(state, path)


_REQUIRED = ("online", "target", "optimiser", "global_step", "updates", "rng", "torch_rng")


def save_model(model: torch.nn.Module, path: Path) -> None:
    """The network's state dict (``model.pt``) as CPU tensors, whatever device it trained on."""
    torch_save_atomic({k: v.cpu() for k, v in model.state_dict().items()}, path)


def load_checkpoint(
    path: Path,
    nets: tuple[torch.nn.Module, torch.nn.Module, torch.optim.Optimizer],
    rng: np.random.Generator,
    earliness: Any | None,
    replay: Any,
) -> tuple[int, int]:
    """Restore what :func:`save_checkpoint` wrote into the given objects; the env steps
    and updates it had reached.

    All or nothing: a file that is not a readable checkpoint, or one that does not fit the
    given objects (a missing field, another network, optimiser or replay shape), raises
    :class:`ValueError` in one line naming ``path`` and the first misfit, before any of
    the objects or the torch random state changes."""
    state = _read(path)
    problem = next((p for p in _misfits(state, nets, rng, earliness, replay) if p), None)
    if problem is not None:
        raise ValueError(f"{path}: {problem}")
    online, target, optimiser = nets
    online.load_state_dict(state["online"])
    target.load_state_dict(state["target"])
    optimiser.load_state_dict(state["optimiser"])
    if "replay" in state:
        replay.load_state_dict(state["replay"])
    rng.bit_generator.state = unpack_rng(state["rng"])
    torch.set_rng_state(state["torch_rng"])
    if earliness is not None and "earliness_weight" in state:
        earliness.load_state_dict(state["earliness_weight"])
    return int(state["global_step"]), int(state["updates"])


def _read(path: Path) -> dict[str, Any]:
    """The checkpoint's content; a missing or unreadable file keeps the OS's error (it
    names the path), a damaged or foreign one raises a one-line ValueError."""
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except OSError:
        raise
    except Exception as error:  # what a damaged file raises depends on where it is damaged
        if type(error).__name__ == "UnpicklingError":  # weights_only refused an object
            # torch's own message spans lines and suggests loading unsafely
            reason = (
                "it holds objects other than tensors and plain values (weights_only refused it)"
            )
            raise ValueError(f"{path}: not a readable checkpoint: {reason}") from error
        first = next((line for line in str(error).splitlines() if line.strip()), "")
        reason = f"{type(error).__name__}: {first.strip()}" if first else type(error).__name__
        raise ValueError(f"{path}: not a readable checkpoint ({reason})") from error
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a checkpoint: it holds a {type(state).__name__}, not a dict")
    return state


def _misfits(
    state: dict[str, Any],
    nets: tuple[torch.nn.Module, torch.nn.Module, torch.optim.Optimizer],
    rng: np.random.Generator,
    earliness: Any | None,
    replay: Any,
) -> Iterator[str | None]:
    """Each check's problem, None where it fits; lazily, so that a check runs only once
    the earlier ones (e.g. that the field is there) have passed."""
    yield next((f"missing {key!r}" for key in _REQUIRED if key not in state), None)
    counters = ("global_step", "updates")
    yield next((f"{k!r} is not an integer" for k in counters if not _integer(state[k])), None)
    online, target, optimiser = nets
    # what their strict load_state_dict would refuse
    yield _tensors_misfit("online", state["online"], online.state_dict(), ("shape",), strict=True)
    yield _tensors_misfit("target", state["target"], target.state_dict(), ("shape",), strict=True)
    yield _optimiser_misfit(state["optimiser"], optimiser)
    if "replay" in state:
        saved = state["replay"]
        yield _tensors_misfit("replay", saved, replay.state_dict(), ("shape", "dtype"))
    yield _rng_misfit(state["rng"], rng)
    yield _torch_rng_misfit(state["torch_rng"])
    if earliness is not None and "earliness_weight" in state:
        # Its pending episodes vary in number (and, with none pending, in dtype).
        saved = state["earliness_weight"]
        yield _tensors_misfit("earliness_weight", saved, earliness.state_dict(), ("ndim",))


def _integer(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return value.numel() == 1 and not value.is_floating_point()
    return isinstance(value, int) and not isinstance(value, bool)


def _tensors_misfit(
    name: str,
    saved: Any,
    expected: dict[str, Any],
    compared: tuple[str, ...],
    strict: bool = False,
) -> str | None:
    """The first key of ``saved`` (a dict) that is missing, unlike ``expected``'s value (a
    number where that is a number, else a tensor with the same ``compared`` attributes:
    ``shape``, ``dtype``, ``ndim``) or, if ``strict``, extra; None when all match."""
    if not isinstance(saved, dict):
        return f"{name!r} is not a dict"
    for key, want in expected.items():
        if key not in saved:
            return f"{name} is missing {key!r}"
        got = saved[key]
        if not isinstance(want, torch.Tensor):
            if not isinstance(got, int | float) or isinstance(got, bool):
                return f"{name} {key!r} is not a number"
            continue
        if not isinstance(got, torch.Tensor):
            return f"{name} {key!r} is not a tensor"
        for attribute in compared:
            have, need = getattr(got, attribute), getattr(want, attribute)
            if have != need:
                show = tuple if attribute == "shape" else str
                return f"{name} {key!r} has {attribute} {show(have)}, expected {show(need)}"
    extra = [key for key in saved if key not in expected] if strict else []
    return f"{name} has an unexpected {extra[0]!r}" if extra else None


def _optimiser_misfit(saved: Any, optimiser: torch.optim.Optimizer) -> str | None:
    """Why ``optimiser.load_state_dict(saved)`` would fail, or leave moments that do not
    fit the parameters; None when it fits."""
    if not isinstance(saved, dict) or not isinstance(saved.get("state"), dict):
        return "'optimiser' is not an optimiser state"
    groups, mine = saved.get("param_groups"), optimiser.param_groups
    if not isinstance(groups, list) or len(groups) != len(mine):
        count = len(groups) if isinstance(groups, list) else "no"
        return f"optimiser has {count} parameter groups, expected {len(mine)}"
    for i, (group, own) in enumerate(zip(groups, mine)):
        ids, params = group.get("params", []), own["params"]
        if len(ids) != len(params):
            return f"optimiser group {i} has {len(ids)} parameters, expected {len(params)}"
        for index, param in zip(ids, params):
            for key, value in saved["state"].get(index, {}).items():
                if isinstance(value, torch.Tensor) and value.dim() and value.shape != param.shape:
                    shapes = f"{tuple(value.shape)}, expected {tuple(param.shape)}"
                    return f"optimiser {key!r} of parameter {index} has shape {shapes}"
    return None


def _rng_misfit(packed: Any, rng: np.random.Generator) -> str | None:
    """Whether the saved numpy random state loads, tried on a scratch generator."""
    try:
        type(rng.bit_generator)().state = unpack_rng(packed)
    except (KeyError, TypeError, ValueError) as error:
        return f"'rng' is not a {type(rng.bit_generator).__name__} random state ({error})"
    return None


def _torch_rng_misfit(saved: Any) -> str | None:
    expected = torch.get_rng_state()
    if not isinstance(saved, torch.Tensor) or saved.dtype != expected.dtype:
        return "'torch_rng' is not a torch random state"
    if saved.shape != expected.shape:
        return f"'torch_rng' has shape {tuple(saved.shape)}, expected {tuple(expected.shape)}"
    return None


def pack_rng(state: dict[str, Any]) -> dict[str, Any]:
    """numpy PCG64 state as tensors/ints, loadable with ``weights_only=True``."""
    inner = state["state"]
    return {
        "state": str(inner["state"]),
        "inc": str(inner["inc"]),
        "has_uint32": int(state["has_uint32"]),
        "uinteger": int(state["uinteger"]),
    }


def unpack_rng(packed: dict[str, Any]) -> dict[str, Any]:
    return {
        "bit_generator": "PCG64",
        "state": {"state": int(packed["state"]), "inc": int(packed["inc"])},
        "has_uint32": int(packed["has_uint32"]),
        "uinteger": int(packed["uinteger"]),
    }
