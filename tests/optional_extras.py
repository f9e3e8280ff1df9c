"""Importing an optional extra in a test: skip only when the extra is not installed.

``pytest.importorskip`` also skips when the package is installed but one of *its* imports
fails (a missing dependency of a hand-written extra), which would hide a broken install
behind a skip. :func:`require_extra` skips only when the top-level package cannot be found
at all, and otherwise imports for real, so a broken transitive import fails the test.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

import pytest


def require_extra(module: str, extra: str) -> ModuleType:
    """Import ``module`` (e.g. ``"ray.tune"``) of the optional ``extra``; skip the calling
    test (or test module, at module level) when its top-level package is not installed."""
    top = module.partition(".")[0]
    if importlib.util.find_spec(top) is None:
        pytest.skip(
            f"the {extra} extra is not installed (pip install 'avemotion[{extra}]')",
            allow_module_level=True,
        )
    return importlib.import_module(module)
