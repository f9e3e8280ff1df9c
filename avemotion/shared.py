"""The folders beside the project that hold what it may not ship: ``../shared/models``
(redistributable weights) and ``../shared/data`` (the real recordings).

Each is found the same way: its environment variable when set, else ``shared/<name>`` next
to the working directory or next to the repository that holds this package, whichever
exists first. When neither exists the first is returned, so a message names a place the
user can act on.
"""

from __future__ import annotations

import os
from pathlib import Path


def shared_folder(name: str, env: str) -> Path:
    """``$env``, else the first existing ``../shared/<name>`` (working directory, then
    repository), else the working directory's."""
    given = os.environ.get(env)
    if given:
        return Path(given)
    candidates = [
        Path.cwd().parent / "shared" / name,
        Path(__file__).resolve().parents[1].parent / "shared" / name,
    ]
    return next((c for c in candidates if c.is_dir()), candidates[0])


def shared_data_root() -> Path:
    """The shared data folder (MEAD, RAVDESS, ...): ``$AVEMOTION_SHARED_DATA`` or ``../shared/data``."""
    return shared_folder("data", "AVEMOTION_SHARED_DATA")


def shared_models_root() -> Path:
    """The shared models folder: ``$AVEMOTION_SHARED_MODELS`` or ``../shared/models``."""
    return shared_folder("models", "AVEMOTION_SHARED_MODELS")
