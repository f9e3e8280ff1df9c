"""Cross-fitting a posterior model once per store and speaker selection.

Fitting and selecting the posterior model of a run costs more than training our DQN on a
small store, and it depends only on the training clips and the posterior options, not on
the seed. :func:`cached_cross_fit` keeps each result under the cache directory
(``$AVEMOTION_CACHE`` or ``~/.cache/avemotion``), keyed by the store's checksums, the
selected clips and the options, so the seeds and folds of an experiment that share
training speakers fit it once. A cache file is written atomically and read without
pickle; an unreadable one is refitted. :func:`posterior_cache_root` points the cache
elsewhere for a while (the agents benchmark times a cold fit in an empty directory).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from avemotion.atomic import replace_atomic
from avemotion.folds import Folds
from avemotion.posterior.crossfit import CrossFit
from avemotion.posterior.models import POSTERIOR_MODELS, Posteriors
from avemotion.store import FeatureStore

CACHE_VERSION = 4
"""Bumped whenever what a posterior model computes changes."""


def cache_key(store: FeatureStore, options: dict[str, Any]) -> str:
    """A digest of the store's arrays, the selected clips and the options."""
    content = {
        "checksums": store.meta.get("checksums", {}),
        "clips": store.clip_ids,
        "options": options,
        "version": CACHE_VERSION,
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:24]


_ROOT: list[Path] = []
"""Roots set by :func:`posterior_cache_root`, innermost last."""


@contextmanager
def posterior_cache_root(root: str | os.PathLike[str]) -> Iterator[Path]:
    """Keep posterior fits under ``root`` (not the user's cache) inside the ``with`` block."""
    _ROOT.append(Path(root))
    try:
        yield _ROOT[-1]
    finally:
        _ROOT.pop()


def cache_path(key: str) -> Path:
    if _ROOT:
        root = _ROOT[-1]
    else:
        root = Path(os.environ.get("AVEMOTION_CACHE", Path.home() / ".cache" / "avemotion"))
    return root / "posteriors" / f"{key}.npz"


def save_cross_fit(path: Path, fitted: CrossFit, extra: dict[str, Any]) -> None:
    arrays = {f"model_{k}": v for k, v in fitted.model.arrays().items()}
    post = fitted.posteriors
    logits = np.vstack(fitted.step_logits) if fitted.step_logits is not None else np.zeros((0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    with replace_atomic(path) as tmp, open(tmp, "wb") as handle:
        np.savez(
            handle,
            kind=np.asarray(fitted.model.name),
            proba=post.proba,
            offsets=post.offsets,
            lengths=post.lengths,
            labels=post.labels,
            step_logits=logits,
            folds=np.asarray(json.dumps(fitted.folds.as_record())),
            extra=np.asarray(json.dumps(extra)),
            **arrays,
        )


def load_cross_fit(path: Path) -> tuple[CrossFit, dict[str, Any]] | None:
    """The cached result, or None when there is none or it cannot be read."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        model = POSTERIOR_MODELS[str(arrays["kind"])].from_arrays(
            {k[len("model_") :]: v for k, v in arrays.items() if k.startswith("model_")}
        )
        folds = Folds.from_record(json.loads(str(arrays["folds"])))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    lengths = arrays["lengths"]
    post = Posteriors(arrays["proba"], arrays["offsets"], lengths, arrays["labels"])
    logits = arrays["step_logits"]
    step_logits = np.split(logits, np.cumsum(lengths)[:-1]) if logits.size else None
    fitted = CrossFit(model, post, step_logits, folds)
    return fitted, json.loads(str(arrays["extra"]))


def cached_cross_fit(
    store: FeatureStore,
    options: dict[str, Any],
    fit: Callable[[], tuple[CrossFit, dict[str, Any]]],
    status: dict[str, str] | None = None,
) -> tuple[CrossFit, dict[str, Any]]:
    """``fit()`` (a cross-fit and its extra record), or its cached result for the same
    store, clips and ``options``. ``status["cache"]`` (when given) is set to ``"hit"`` or
    ``"miss"``, so that a timing can say which it measured."""
    path = cache_path(cache_key(store, options))
    cached = load_cross_fit(path)
    if status is not None:
        status["cache"] = "miss" if cached is None else "hit"
    if cached is not None:
        return cached
    fitted, extra = fit()
    save_cross_fit(path, fitted, extra)
    return fitted, extra
