"""The store-level speaker adaptation: media -> encoders -> store -> *adaptation* -> env.

:func:`adapt_store` writes a new feature store with the same clips, labels and speakers,
each clip normalised with its speaker's state after that speaker's *earlier* clips (in store
order, or in a seeded random order), shrunk toward the reference population
(:mod:`avemotion.adaptation.estimator`). No label is read. The training store is adapted
with itself as reference, so that training and test clips go through the same transform.

The adapted store's ``meta.json`` keeps the source's fields (encoder, level, ...) so that a
run trained on it streams with the same encoder, and adds ``adaptation``: the method, the
reference store (path, checksum, speakers), the order, the chosen prior, the population
statistics the online recognizer needs, and every clip's number of earlier clips.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from avemotion.adaptation.estimator import (
    Population,
    Prior,
    causal_sums,
    choose_prior,
    clip_moments,
    normalise,
    normaliser,
)
from avemotion.store import FeatureStore, StoreError

METHOD = "causal-shrinkage-v1"
"""Name of the estimator recorded in stores and speaker-state files."""
ORDERS = ("store", "random")


@dataclass(frozen=True)
class AdaptationSpec:
    """Everything that defines the transform of a stream: population statistics and prior.

    ``identity`` is a digest of the method, the reference store's checksum and speakers and
    the prior; a speaker-state file records it so that a state built under another transform
    is refused.
    """

    population: Population
    prior: Prior
    reference_checksum: str
    reference_speakers: tuple[str, ...]

    @property
    def dim(self) -> int:
        return int(len(self.population.mean))

    @property
    def identity(self) -> str:
        text = json.dumps(
            [METHOD, self.reference_checksum, list(self.reference_speakers), self.prior.to_json()]
        )
        return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()

    def to_meta(self) -> dict[str, Any]:
        return {
            "method": METHOD,
            "identity": self.identity,
            "reference_checksum": self.reference_checksum,
            "reference_speakers": list(self.reference_speakers),
            "prior": self.prior.to_json(),
            "population_mean": [float(v) for v in self.population.mean],
            "population_var": [float(v) for v in self.population.var],
        }

    @classmethod
    def from_store(cls, store: FeatureStore) -> AdaptationSpec:
        """The transform recorded in an adapted store's ``meta.json``."""
        block = store.meta.get("adaptation")
        if not isinstance(block, dict):
            raise StoreError(
                f"{store.path}: adaptation: the store is not speaker-adapted (avemotion adapt)"
            )
        if block.get("method") != METHOD:
            raise StoreError(
                f"{store.path}: adaptation.method: expected {METHOD!r}, got {block.get('method')!r}"
            )
        try:
            population = Population(
                np.asarray(block["population_mean"], dtype=np.float64),
                np.asarray(block["population_var"], dtype=np.float64),
            )
            prior = Prior(
                np.asarray(block["prior"]["kappa"], dtype=np.float64),
                np.asarray(block["prior"]["nu"], dtype=np.float64),
            )
            spec = cls(
                population,
                prior,
                str(block["reference_checksum"]),
                tuple(block["reference_speakers"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise StoreError(f"{store.path}: adaptation: malformed block ({error})") from None
        shapes = {population.mean.shape, population.var.shape}
        shapes |= {np.shape(prior.kappa), np.shape(prior.nu)} - {()}
        if shapes != {(store.dim,)}:
            raise StoreError(
                f"{store.path}: adaptation: the statistics and prior do not have {store.dim} values"
            )
        if spec.identity != block.get("identity"):
            raise StoreError(
                f"{store.path}: adaptation.identity: does not match the recorded transform"
            )
        return spec


def store_checksum(store: FeatureStore) -> str:
    """One digest of a store's per-array checksums (``meta.json`` ``checksums``)."""
    text = json.dumps(store.meta["checksums"], sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def moments(store: FeatureStore) -> tuple[np.ndarray, np.ndarray]:
    """Per-clip step means and mean squares, ``[n_clips, dim]`` each (float64)."""
    means = np.empty((store.n_clips, store.dim))
    squares = np.empty_like(means)
    for i in range(store.n_clips):
        means[i], squares[i] = clip_moments(store.clip(i).frames)
    return means, squares


def speaker_sequences(store: FeatureStore, order: str = "store", seed: int = 0) -> list[np.ndarray]:
    """Per speaker, its clip indices in adaptation order.

    ``store``: the store's clip order. ``random``: one seeded permutation of all clips
    (``numpy.random.default_rng(seed).permutation``), each speaker's clips taken in it.
    RAVDESS file names sort a speaker's clips by emotion, so store order is unfair there.
    """
    if order not in ORDERS:
        raise ValueError(f"order: expected one of {list(ORDERS)}, got {order!r}")
    rank = (
        np.arange(store.n_clips)
        if order == "store"
        else np.random.default_rng(seed).permutation(store.n_clips)
    )
    sequences = []
    for s in np.unique(store.speaker_index):
        rows = np.flatnonzero(store.speaker_index == s)
        sequences.append(rows[np.argsort(rank[rows], kind="stable")])
    return sequences


def fit_spec(
    reference: FeatureStore, order: str = "store", seed: int = 0, prior: Prior | None = None
) -> tuple[AdaptationSpec, dict[str, float]]:
    """Population statistics of ``reference`` and the prior (given, or chosen by
    leave-one-speaker-out predictive likelihood on its speakers in the given order)."""
    means, squares = moments(reference)
    scores: dict[str, float] = {}
    if prior is None:
        sequences = speaker_sequences(reference, order, seed)
        prior, scores = choose_prior(means, squares, reference.speaker_index, sequences)
    spec = AdaptationSpec(
        Population.from_moments(means, squares, reference.speaker_index),
        prior,
        store_checksum(reference),
        tuple(reference.speaker_set),
    )
    return spec, scores


def adapted_sequences(
    features: FeatureStore, spec: AdaptationSpec, order: str = "store", seed: int = 0
) -> tuple[list[np.ndarray], np.ndarray]:
    """Every clip of ``features`` normalised causally, in store order; and its earlier-clip count."""
    if features.dim != spec.dim:
        raise StoreError(
            f"{features.path}: dim: {features.dim} values per step, the reference has {spec.dim}"
        )
    means, squares = moments(features)
    n, sum_mean, sum_square = causal_sums(means, squares, speaker_sequences(features, order, seed))
    out = []
    for i in range(features.n_clips):
        mu, var = normaliser(spec.population, spec.prior, n[i, 0], sum_mean[i], sum_square[i])
        out.append(normalise(features.clip(i).frames, mu, var))
    return out, n[:, 0].astype(np.int64)


SAME_ROWS = ("encoder", "level", "parts", "steps_per_second")
"""Meta fields a store and its reference must share: rows of another encoder, level or time
base have other statistics, and a transform fitted on them would be wrong without a word."""


def check_sources(features: FeatureStore, reference: FeatureStore) -> None:
    """Refuse, in one line naming the store and field, a ``features`` or ``reference`` store
    that is adapted already (adapting twice would compound the transform and drop the first
    record), and a reference whose rows are not of the same kind as ``features``'."""
    for store in (features, reference):
        if "adaptation" in store.meta:
            source = store.meta["adaptation"].get("source", "the raw store it was adapted from")
            raise StoreError(
                f"{store.path}: meta.adaptation: already speaker-adapted; adapt {source} instead"
            )
    for key in SAME_ROWS:
        mine, theirs = features.meta.get(key), reference.meta.get(key)
        unknown = (None, "unknown")  # FeatureStore.create's stand-in when none was given
        if mine not in unknown and theirs not in unknown and mine != theirs:
            raise StoreError(
                f"{features.path}: meta.{key}: {mine!r}, but the reference {reference.path} "
                f"has {theirs!r}; adapt against a store of the same encoder and level"
            )


def adapt_store(
    features: FeatureStore,
    reference: FeatureStore,
    out: str | os.PathLike[str],
    order: str = "store",
    seed: int = 0,
    prior: Prior | None = None,
    overwrite: bool = False,
) -> FeatureStore:
    """Write ``features`` adapted causally against ``reference`` to ``out``; open it.

    ``reference`` may be a speaker subset (e.g. the training speakers of the same store).
    """
    check_sources(features, reference)
    spec, scores = fit_spec(reference, order, seed, prior)
    sequences, earlier = adapted_sequences(features, spec, order, seed)
    meta = {
        key: value
        for key, value in features.meta.items()
        if key not in ("checksums", "frame_min", "frame_max", "adaptation")
    }
    meta["adaptation"] = {
        **spec.to_meta(),
        "reference": str(reference.path),
        "order": order,
        "seed": int(seed) if order == "random" else None,
        "prior_scores": scores,
        "earlier_clips": [int(v) for v in earlier],
        "source": str(features.path),
        "source_checksum": store_checksum(features),
    }
    return FeatureStore.create(
        out,
        sequences,
        features.labels,
        features.speakers,
        features.class_names,
        clip_ids=features.clip_ids,
        meta=meta,
        overwrite=overwrite,
    )


def earlier_clips(store: FeatureStore) -> np.ndarray:
    """Each clip's number of earlier clips of its speaker, from an adapted store's meta."""
    block = store.meta.get("adaptation") or {}
    counts = block.get("earlier_clips")
    if counts is None:
        raise StoreError(f"{store.path}: adaptation.earlier_clips: missing (not an adapted store)")
    return np.asarray(counts, dtype=np.int64)[store.clip_index]
