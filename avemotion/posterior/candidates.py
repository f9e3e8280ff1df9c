"""The posterior models ``--posterior auto`` chooses among (the choice itself scores them
through stopping rules: :mod:`avemotion.training.choose_posterior`)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from avemotion.posterior.models import POSTERIOR_MODELS
from avemotion.posterior.prefix_neighbour import PrefixNearestNeighbour
from avemotion.posterior.prefix_rocket import ROCKET_MAX_DIM, PrefixMiniRocket, rocket_available
from avemotion.posterior.prefix_shape import PrefixShapeSoftmax
from avemotion.store import FeatureStore

DEFAULT_CANDIDATES = ("running-mean-softmax", PrefixShapeSoftmax.name, PrefixNearestNeighbour.name)
"""The default first: it wins every tie."""


def default_candidates(store: FeatureStore) -> tuple[str, ...]:
    """The candidates ``--posterior auto`` scores on ``store``: :data:`DEFAULT_CANDIDATES`,
    and :class:`~avemotion.posterior.prefix_rocket.PrefixMiniRocket` for a store of at most
    :data:`~avemotion.posterior.prefix_rocket.ROCKET_MAX_DIM` dims when aeon is installed."""
    if store.dim <= ROCKET_MAX_DIM and rocket_available():
        return (*DEFAULT_CANDIDATES, PrefixMiniRocket.name)
    return DEFAULT_CANDIDATES


def model_maker(name: str, l2: float | None = None) -> Callable[[], Any]:
    """What builds the unfitted posterior model ``name``; ``l2`` sets the L2 penalty of
    the models that have one (the softmax models; 1-NN and MiniRocket have none)."""
    model = POSTERIOR_MODELS[name]
    if l2 is None or "l2" not in inspect.signature(model).parameters:
        return model
    return functools.partial(model, l2=float(l2))
