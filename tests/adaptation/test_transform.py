"""Store-level adaptation: exact values on a tiny store, causality, first clip = population,
orders, and the adapted store's metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from avemotion.adaptation.estimator import Prior
from avemotion.adaptation.transform import (
    AdaptationSpec,
    adapt_store,
    earlier_clips,
    fit_spec,
    speaker_sequences,
    store_checksum,
)
from avemotion.store import FeatureStore, StoreError


def make_store(path: Path, clips: list[np.ndarray], speakers: list[str]) -> FeatureStore:
    return FeatureStore.create(
        path,
        [np.asarray(c, dtype=np.float32) for c in clips],
        [i % 2 for i in range(len(clips))],
        speakers,
        ["neutral", "happy"],
        meta={"modality": "audio", "level": "embedding", "encoder_dir": "/nowhere"},
    )


@pytest.fixture
def reference(tmp_path: Path) -> FeatureStore:
    # two clips of mean 1 and mean square 5: m0 = 1, v0 = 4
    return make_store(tmp_path / "ref", [[[-1.0], [3.0]], [[3.0], [-1.0]]], ["R", "R"])


def random_store(path: Path, seed: int = 0) -> FeatureStore:
    rng = np.random.default_rng(seed)
    clips = [rng.normal(i % 3, 1.0 + i % 2, size=(int(rng.integers(3, 9)), 4)) for i in range(14)]
    return make_store(path, clips, ["A", "B"] * 7)


def test_hand_computed_store(tmp_path: Path, reference: FeatureStore) -> None:
    features = make_store(tmp_path / "f", [[[2.0], [4.0]], [[0.0], [2.0]], [[3.0]]], ["A"] * 3)
    out = adapt_store(features, reference, tmp_path / "out", prior=Prior(1.0, 2.0))
    # first clip: the population (x - 1) / 2
    np.testing.assert_allclose(out.clip(0).frames[:, 0], [0.5, 1.5], atol=1e-6)
    # second clip: mu = (1 + 3) / 2 = 2, var = (2*4 + (10 - 12 + 4)) / 3 = 10/3
    np.testing.assert_allclose(out.clip(1).frames[:, 0], [-2 / np.sqrt(10 / 3), 0.0], atol=1e-6)
    # third clip: mu = 5/3, var = 55/18 (tests/adaptation/test_estimator.py)
    assert out.clip(2).frames[0, 0] == pytest.approx((3 - 5 / 3) / np.sqrt(55 / 18), abs=1e-6)
    assert earlier_clips(out).tolist() == [0, 1, 2]


def test_same_clips_labels_speakers_and_meta(tmp_path: Path) -> None:
    features = random_store(tmp_path / "f")
    out = adapt_store(features, features, tmp_path / "out", order="random", seed=3)
    assert out.clip_ids == features.clip_ids
    assert out.labels.tolist() == features.labels.tolist()
    assert out.speakers == features.speakers
    assert out.lengths.tolist() == features.lengths.tolist()
    block = json.loads((tmp_path / "out" / "meta.json").read_text())["adaptation"]
    assert block["method"] == "causal-shrinkage-v1"
    assert block["reference_checksum"] == store_checksum(features)
    assert (block["order"], block["seed"]) == ("random", 3)
    assert out.meta["level"] == "embedding" and out.meta["encoder_dir"] == "/nowhere"
    assert AdaptationSpec.from_store(out).identity == block["identity"]


def test_first_clip_of_each_speaker_gets_the_population(tmp_path: Path) -> None:
    features = random_store(tmp_path / "f")
    reference = random_store(tmp_path / "r", seed=5)
    spec, _ = fit_spec(reference)
    out = adapt_store(features, reference, tmp_path / "out", order="random", seed=1)
    for rows in speaker_sequences(features, "random", 1):
        first = rows[0]
        expected = (features.clip(first).frames - spec.population.mean) / np.sqrt(
            spec.population.var
        )
        np.testing.assert_allclose(out.clip(first).frames, expected, atol=1e-5)


@pytest.mark.parametrize("order", ["store", "random"])
def test_causal(tmp_path: Path, order: str) -> None:
    """Changing a clip changes no earlier clip's transform, no other speaker's, and not the
    clip's own normaliser (a shift of the clip shifts its output by a per-dimension constant)."""
    features = random_store(tmp_path / "f")
    reference = random_store(tmp_path / "r", seed=5)
    base = adapt_store(features, reference, tmp_path / "base", order, seed=2)
    sequences = speaker_sequences(features, order, 2)
    target = int(sequences[0][3])  # the 4th clip of speaker A in this order
    clips = [features.clip(i).frames + (7.0 if i == target else 0.0) for i in range(14)]
    changed = make_store(tmp_path / "g", clips, features.speakers)
    after = adapt_store(changed, reference, tmp_path / "after", order, seed=2)
    later = set(sequences[0][4:].tolist())
    for i in range(14):
        if i == target:
            shift = after.clip(i).frames - base.clip(i).frames
            np.testing.assert_allclose(shift, np.broadcast_to(shift[0], shift.shape), atol=1e-5)
            assert np.all(shift[0] > 0)
        elif i not in later:
            np.testing.assert_array_equal(after.clip(i).frames, base.clip(i).frames)
        else:
            assert not np.allclose(after.clip(i).frames, base.clip(i).frames)


def test_orders(tmp_path: Path) -> None:
    features = random_store(tmp_path / "f")
    store_order = speaker_sequences(features, "store")
    assert [s.tolist() for s in store_order] == [list(range(0, 14, 2)), list(range(1, 14, 2))]
    a, b = speaker_sequences(features, "random", 0), speaker_sequences(features, "random", 0)
    assert [s.tolist() for s in a] == [s.tolist() for s in b]
    assert [sorted(s.tolist()) for s in a] == [s.tolist() for s in store_order]
    assert [s.tolist() for s in a] != [s.tolist() for s in speaker_sequences(features, "random", 1)]
    with pytest.raises(ValueError, match="order"):
        speaker_sequences(features, "alphabetical")


def test_bad_inputs_refused(tmp_path: Path, reference: FeatureStore) -> None:
    wide = make_store(tmp_path / "w", [np.zeros((2, 3))], ["A"])
    with pytest.raises(StoreError, match="dim"):
        adapt_store(wide, reference, tmp_path / "out", prior=Prior(1.0, 1.0))
    with pytest.raises(ValueError, match="at least 2 speakers"):
        adapt_store(reference, reference, tmp_path / "out2")
    with pytest.raises(StoreError, match="not speaker-adapted"):
        AdaptationSpec.from_store(reference)
    with pytest.raises(StoreError, match="adaptation.earlier_clips"):
        earlier_clips(reference)


def test_adapted_or_foreign_sources_are_refused(tmp_path: Path) -> None:
    """An adapted store, as features or as reference, is refused (adapting twice would
    compound the transform and drop the first record); so is a reference of another
    level or encoder."""
    raw = random_store(tmp_path / "raw")
    adapted = adapt_store(raw, raw, tmp_path / "adapted", order="random", seed=0)
    for features, reference in ((adapted, raw), (raw, adapted)):
        with pytest.raises(StoreError) as error:
            adapt_store(features, reference, tmp_path / "twice")
        assert str(error.value) == (
            f"{adapted.path}: meta.adaptation: already speaker-adapted; adapt {raw.path} instead"
        )
    other = FeatureStore.create(
        tmp_path / "fusion",
        [raw.clip(i).frames for i in range(raw.n_clips)],
        raw.labels,
        raw.speakers,
        raw.class_names,
        meta={**{k: raw.meta[k] for k in ("modality", "encoder_dir")}, "level": "temporal"},
    )
    with pytest.raises(StoreError) as error:
        adapt_store(raw, other, tmp_path / "mixed")
    assert str(error.value) == (
        f"{raw.path}: meta.level: 'embedding', but the reference {other.path} has 'temporal'; "
        "adapt against a store of the same encoder and level"
    )
    assert not (tmp_path / "twice").exists() and not (tmp_path / "mixed").exists()
