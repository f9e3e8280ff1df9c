"""The posterior models ``--posterior auto`` chooses among
(:mod:`avemotion.posterior.candidates`): the defaults by name, and which store gets
MiniRocket as well, by its width and whether aeon is installed."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from optional_extras import require_extra

import avemotion.posterior.candidates as candidates
from avemotion.posterior import POSTERIOR_MODELS
from avemotion.posterior.candidates import DEFAULT_CANDIDATES, default_candidates
from avemotion.store import FeatureStore

DEFAULTS = ("running-mean-softmax", "prefix-shape-softmax", "prefix-nearest-neighbour")
ROCKET = "prefix-minirocket"


def _store(dim: int) -> FeatureStore:
    """All :func:`default_candidates` reads of a store is its width."""
    return SimpleNamespace(dim=dim)  # type: ignore[return-value]


def test_default_candidates_by_name_the_running_mean_first() -> None:
    """The running-mean softmax comes first: it is the default and wins every tie."""
    assert DEFAULT_CANDIDATES == DEFAULTS


def test_every_candidate_is_a_posterior_model_of_that_name() -> None:
    """The selection fits each candidate by looking it up in POSTERIOR_MODELS."""
    for name in (*DEFAULTS, ROCKET):
        assert POSTERIOR_MODELS[name].name == name


@pytest.mark.parametrize(
    ("dim", "expected"),
    [
        (1, (*DEFAULTS, ROCKET)),
        (64, (*DEFAULTS, ROCKET)),  # ROCKET_MAX_DIM = 64 itself: at most 64 dims
        (65, DEFAULTS),
        (1408, DEFAULTS),  # a fusion embedding: steps read best by their running mean
    ],
)
def test_minirocket_joins_on_series_of_at_most_64_dims(
    dim: int, expected: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(candidates, "rocket_available", lambda: True)
    assert default_candidates(_store(dim)) == expected


@pytest.mark.parametrize("dim", [1, 64, 65])
def test_without_aeon_only_the_defaults(dim: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(candidates, "rocket_available", lambda: False)
    assert default_candidates(_store(dim)) == DEFAULTS


def test_the_tiny_store_with_aeon_installed_gets_four(tiny_store: FeatureStore) -> None:
    """The tiny store is 8 wide (≤ 64), and aeon (the extra) is installed: all four, in
    order, the defaults first."""
    require_extra("aeon", "aeon")
    assert tiny_store.dim == 8
    assert default_candidates(tiny_store) == (*DEFAULTS, ROCKET)
