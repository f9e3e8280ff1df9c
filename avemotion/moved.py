"""Deprecation aliases: an old import path keeps working for one release, with a warning."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any


def alias(old: str, *new: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``old`` that reads a name from the first of the ``new``
    modules holding it, with a DeprecationWarning naming that module."""

    def __getattr__(name: str) -> Any:
        for module in map(importlib.import_module, new):
            if not name.startswith("__") and hasattr(module, name):
                warnings.warn(
                    f"{old} is deprecated and goes in the next release: "
                    f"import {name} from {module.__name__}",
                    DeprecationWarning,
                    stacklevel=2,
                )
                return getattr(module, name)
        raise AttributeError(f"module {old!r} has no attribute {name!r}")

    return __getattr__
