"""Atomic writes: a file appears under its final name complete, or not at all.

Everything is written into a temporary sibling (same directory, so the rename never
crosses a filesystem) and renamed over the target with :func:`os.replace`; a crash or a
SIGKILL leaves at most a hidden ``.NAME.tmp-PID`` behind, never a half-written NAME.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def replace_atomic(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it goes."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    with replace_atomic(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: str | os.PathLike[str], value: Any) -> None:
    write_text_atomic(path, json.dumps(value, indent=1))


def torch_save_atomic(obj: Any, path: str | os.PathLike[str]) -> None:
    import torch

    with replace_atomic(path) as tmp:
        torch.save(obj, tmp)


def save_figure_atomic(figure: Any, path: str | os.PathLike[str], dpi: int = 120) -> Path:
    """Save a matplotlib ``figure`` to ``path`` atomically, in the format its suffix names."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replace_atomic(path) as tmp:
        figure.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png")
    return path
