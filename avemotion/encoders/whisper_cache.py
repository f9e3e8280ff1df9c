"""The frozen Whisper encoder's pooled outputs per clip, computed once and kept on disk.

Training the head, cross-fitting its fold copies, the temporal stage and ``extract`` all
read the same per-encoding statistics (:mod:`avemotion.encoders.whisper_schedule`); the
encoder is frozen, so they never change for a clip. They are kept under
``$AVEMOTION_CACHE/whisper-features`` (default ``~/.cache/avemotion``), one folder per
setting (model, precision, schedule, time base) and one file per clip, named by a digest
of its samples: a clip is encoded once whichever command, process or worker reads it.
Files are written atomically, so a killed run leaves none half-written.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avemotion.atomic import replace_atomic

CACHE_VERSION = 1
"""Bumped whenever what a cached file holds changes."""


def cache_root() -> Path:
    """``$AVEMOTION_CACHE/whisper-features`` (default ``~/.cache/avemotion/whisper-features``)."""
    base = Path(os.environ.get("AVEMOTION_CACHE", Path.home() / ".cache" / "avemotion"))
    return base / "whisper-features"


@lru_cache(maxsize=8)
def model_identity(model: str) -> str:
    """What names the frozen weights: a packaged model's name (its loader checks the
    bytes), or a digest of a local file's (or a model folder's ``model.bin``) bytes."""
    path = Path(model)
    if not path.exists():
        return model
    file = path / "model.bin" if path.is_dir() else path
    digest = hashlib.blake2b(digest_size=12)
    with open(file, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return f"{file.name}:{digest.hexdigest()}"


def settings_key(settings: dict[str, Any]) -> str:
    """The folder name of one setting (any JSON-able mapping)."""
    text = json.dumps({**settings, "cache_version": CACHE_VERSION}, sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


def clip_key(audio: np.ndarray, count: int) -> str:
    """The file name of one clip: a digest of its float32 samples and step count."""
    digest = hashlib.blake2b(
        np.ascontiguousarray(audio, dtype=np.float32).tobytes(), digest_size=16
    )
    digest.update(str(count).encode())
    return digest.hexdigest()


class FeatureCache:
    """One setting's folder of per-clip ``[encodings, layers, 2 · width]`` float16 arrays."""

    def __init__(self, settings: dict[str, Any], root: Path | None = None) -> None:
        self.folder = (root or cache_root()) / settings_key(settings)
        self.settings = settings
        self.hits = self.misses = 0

    def get(self, key: str) -> torch.Tensor | None:
        file = self.folder / f"{key}.npy"
        try:
            array = np.load(file, allow_pickle=False)
        except (OSError, ValueError):  # absent, or unreadable: encode again
            self.misses += 1
            return None
        self.hits += 1
        return torch.from_numpy(array)

    def put(self, key: str, features: torch.Tensor) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        settings = self.folder / "settings.json"
        if not settings.is_file():
            with replace_atomic(settings) as tmp:
                tmp.write_text(json.dumps(self.settings, indent=1))
        with replace_atomic(self.folder / f"{key}.npy") as tmp, open(tmp, "wb") as handle:
            np.save(handle, features.numpy().astype(np.float16), allow_pickle=False)
