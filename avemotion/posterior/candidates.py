"""The posterior models ``--posterior auto`` chooses among (the choice itself scores them
through stopping rules: :mod:`avemotion.agents.selection`)."""

from __future__ import annotations

from avemotion.posterior.prefix_rocket import ROCKET_MAX_DIM, PrefixMiniRocket, rocket_available
from avemotion.posterior.prefix_shape import PrefixNearestNeighbour, PrefixShapeSoftmax
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
