"""Our DQN's ``checkpoint.pt``: everything a resumed run needs to continue exactly as the
uninterrupted one would (networks, optimiser, replay memory, counters and random states),
saved atomically and loaded with ``weights_only=True``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from avemotion.agents.dqn_state import pack_rng, unpack_rng
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


def load_checkpoint(
    path: Path,
    nets: tuple[torch.nn.Module, torch.nn.Module, torch.optim.Optimizer],
    rng: np.random.Generator,
    earliness: Any | None,
    replay: Any,
) -> tuple[int, int]:
    """Restore what :func:`save_checkpoint` wrote into the given objects; the env steps
    and updates it had reached."""
    online, target, optimiser = nets
    state = torch.load(path, weights_only=True, map_location="cpu")
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
