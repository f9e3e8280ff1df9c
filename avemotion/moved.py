"""Deprecation aliases: an old import path keeps working for one release, with a warning."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

MOVED: dict[str, tuple[str, ...]] = {
    "avemotion.agents.baselines": ("avemotion.stopping.rules",),
    "avemotion.agents.baselines_aeon": ("avemotion.stopping.aeon",),
    "avemotion.agents.bench": ("avemotion.benchmarks.agents",),
    "avemotion.agents.dqn_checkpoint": ("avemotion.agents.dqn.checkpoint",),
    "avemotion.agents.dqn_config": ("avemotion.agents.dqn.config",),
    "avemotion.agents.dqn_paths": (
        "avemotion.agents.dqn.dqn",
        "avemotion.agents.dqn.replay",
    ),
    "avemotion.agents.dqn_state": (
        "avemotion.agents.dqn.replay",
        "avemotion.agents.dqn.checkpoint",
        "avemotion.agents.dqn.posterior_input",
    ),
    "avemotion.agents.dqn_updates": ("avemotion.agents.dqn.dqn",),
    "avemotion.agents.evaluate": ("avemotion.evaluation.evaluate",),
    "avemotion.agents.frontend_fit": ("avemotion.agents.dqn.posterior_input",),
    "avemotion.agents.losses": ("avemotion.agents.dqn.dqn",),
    "avemotion.agents.metrics": ("avemotion.metrics",),
    "avemotion.agents.networks": ("avemotion.agents.dqn.networks",),
    "avemotion.agents.replay": ("avemotion.agents.dqn.replay",),
    "avemotion.agents.report": ("avemotion.evaluation.report",),
    "avemotion.agents.report_plots": ("avemotion.evaluation.plots",),
    "avemotion.agents.rewards": (
        "avemotion.agents.dqn.earliness_weight",
        "avemotion.agents.dqn.dqn",
    ),
    "avemotion.agents.run_dir": ("avemotion.training.run_dir",),
    "avemotion.agents.run_options": ("avemotion.training.options",),
    "avemotion.agents.runner": ("avemotion.training.train",),
    "avemotion.agents.selection": ("avemotion.training.choose_posterior",),
    "avemotion.agents.stop_tuning": ("avemotion.agents.dqn.stop_tuning",),
}
"""Old module path → the modules its names now live in (first match wins)."""


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


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old path of :data:`MOVED` as an empty module whose names are aliases:
    one table serves every old path, and no file is left at them."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        new = MOVED[module.__name__]
        module.__doc__ = f"Deprecated alias of {new[0]} (kept for one release)."
        module.__getattr__ = alias(module.__name__, *new)  # type: ignore[method-assign]


def install() -> None:
    """Make the old paths importable (once)."""
    if not any(isinstance(finder, _MovedFinder) for finder in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
