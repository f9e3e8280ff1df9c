"""Per-epoch checkpoints of an encoder training stage, so a killed ``train-encoder`` resumes.

After every epoch of a stage's main fit, the net, the optimiser, the learning-rate schedule,
and both random streams (numpy's sampling and augmentation generator, torch's) are written
atomically to ``OUT.train/epoch.pt``. The same command started again finds it and, when it
was written by the same job (same settings, corpus files and starting weights), continues
after that epoch: the finished encoder is bit-identical to an uninterrupted run's. The
folder is removed once the encoder directory is written.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avemotion.atomic import torch_save_atomic
from avemotion.encoders.train_config import TrainConfig
from avemotion.holds import reached

CHECKPOINT = "epoch.pt"
"""File name of the checkpoint inside the work folder."""
VOLATILE = ("out", "threads")
"""Settings that do not change the result (a resumed run may change them)."""


def work_dir(out: str | os.PathLike[str]) -> Path:
    """Where the checkpoint of an unfinished stage writing ``out`` is kept."""
    out = Path(out)
    return out.with_name(out.name + ".train")


def job_fingerprint(config: TrainConfig, files: Iterable[str]) -> str:
    """A digest of what determines the result: the settings (but ``out`` and ``threads``),
    the corpus files in use, and the bytes of every starting weights file."""
    digest = hashlib.blake2b(digest_size=12)
    settings = {k: v for k, v in asdict(config).items() if k not in VOLATILE}
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for name in sorted(files):
        stat = os.stat(name)
        digest.update(f"{name}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    for source in config.init:
        path = Path(source)
        for file in sorted(path.iterdir()) if path.is_dir() else [path]:
            if file.is_file():
                digest.update(file.name.encode() + file.read_bytes())
    return digest.hexdigest()


class EpochCheckpoint:
    """Save and restore the state of one fit between epochs."""

    def __init__(self, folder: Path, fingerprint: str) -> None:
        self.folder = folder
        self.path = folder / CHECKPOINT
        self.fingerprint = fingerprint
        self.resumed_after = 0
        """Epochs the last :meth:`restore` found done (0: a fresh start)."""

    def restore(
        self,
        net: torch.nn.Module,
        optimiser: torch.optim.Optimizer,
        schedule: Any,
        rng: np.random.Generator,
    ) -> int:
        """Load a checkpoint of this job into the given objects; return the epochs it had
        finished (0 without one, or when another job wrote it)."""
        if not self.path.is_file():
            return 0
        state = torch.load(self.path, weights_only=True)
        if state.get("fingerprint") != self.fingerprint:
            return 0
        net.load_state_dict(state["net"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        rng.bit_generator.state = json.loads(state["numpy_rng"])
        torch.set_rng_state(state["torch_rng"])
        self.resumed_after = int(state["epoch"])
        return self.resumed_after

    def save(
        self,
        epoch: int,
        net: torch.nn.Module,
        optimiser: torch.optim.Optimizer,
        schedule: Any,
        rng: np.random.Generator,
    ) -> None:
        """Write the state after ``epoch`` finished epochs (temporary file, then rename)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        state = {
            "fingerprint": self.fingerprint,
            "epoch": epoch,
            "net": net.state_dict(),
            "optimiser": optimiser.state_dict(),
            "schedule": schedule.state_dict(),
            "numpy_rng": json.dumps(rng.bit_generator.state),
            "torch_rng": torch.get_rng_state(),
        }
        torch_save_atomic(state, self.path)
        reached("encoder-epoch")
