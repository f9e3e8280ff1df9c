"""The run directory: what a run records of its training data, and evaluation reopening
exactly that data or refusing in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from avemotion.store import FeatureStore
from avemotion.training.run_dir import (
    CONFIG,
    check_disjoint,
    read_run_config,
    store_digest,
    training_record,
    training_store,
)


def two_clip_store(path: Path, first: float = 0.0) -> FeatureStore:
    """Clips a (speaker A, 2 steps) and b (speaker B, 1 step) of one-number frames."""
    return FeatureStore.create(
        path,
        [np.array([[first], [1.0]], np.float32), np.array([[2.0]], np.float32)],
        [0, 1],
        ["A", "B"],
        ["calm", "sad"],
        clip_ids=["a", "b"],
    )


def test_training_record_by_hand(tmp_path: Path) -> None:
    """Speaker B left out: the selection holds clip a only (1 clip, speaker A); the store
    is recorded by its resolved path and the digest of the whole store."""
    full = two_clip_store(tmp_path / "s")
    selected = full.subset(exclude_speakers=["B"])
    record = training_record(tmp_path / "s", full, selected, None, ["B"])
    assert record == {
        "store": str((tmp_path / "s").resolve()),
        "synthetic": False,
        "digest": store_digest(full),
        "speakers": None,
        "exclude_speakers": ["B"],
        "train_speakers": ["A"],
        "n_clips": 1,
    }
    assert training_record(None, full, full, ["A", "B"], [])["exclude_speakers"] is None


def test_digest_follows_the_data_not_the_subset(tmp_path: Path) -> None:
    full = two_clip_store(tmp_path / "s")
    assert store_digest(full) == store_digest(full.subset(speakers=["A"]))
    assert len(store_digest(full)) == 16
    assert store_digest(two_clip_store(tmp_path / "t", first=5.0)) != store_digest(full)


def test_training_store_reopens_the_recorded_selection(tmp_path: Path) -> None:
    full = two_clip_store(tmp_path / "s")
    config = {
        "training": training_record(full.path, full, full.subset(speakers=["B"]), ["B"], None)
    }
    reopened = training_store(tmp_path / "run", config)
    assert reopened.clip_ids == ["b"] and reopened.speaker_set == ["B"]


def test_training_store_refuses_what_it_cannot_reopen(tmp_path: Path) -> None:
    full = two_clip_store(tmp_path / "s")
    config = {"training": training_record(full.path, full, full, None, None)}
    with pytest.raises(ValueError, match=r"run/config\.json: training: this run does not record"):
        training_store(tmp_path / "run", {})
    shutil.rmtree(tmp_path / "s")
    two_clip_store(tmp_path / "s", first=5.0)  # the same path, other data
    with pytest.raises(ValueError, match="training.digest: .* changed since the run"):
        training_store(tmp_path / "run", config)
    shutil.rmtree(tmp_path / "s")
    with pytest.raises(FileNotFoundError, match=r"training\.store: .*/s is missing"):
        training_store(tmp_path / "run", config)


def test_read_run_config_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"config\.json: missing \(not a run directory\)"):
        read_run_config(tmp_path)
    (tmp_path / CONFIG).write_text("{not json")
    with pytest.raises(ValueError, match=r"config\.json: unreadable JSON"):
        read_run_config(tmp_path)
    (tmp_path / CONFIG).write_text("[]")
    with pytest.raises(ValueError, match=r"config\.json: expected a JSON object, got list"):
        read_run_config(tmp_path)
    (tmp_path / CONFIG).write_text(json.dumps({"agent": "dqn"}))
    with pytest.raises(ValueError, match=r"config\.json: missing field 'class_names'"):
        read_run_config(tmp_path)
    config = {"agent": "dqn", "class_names": ["calm"], "store_dim": 1, "obs_dim": 3}
    (tmp_path / CONFIG).write_text(json.dumps({**config, "agent_config": {}}))
    assert read_run_config(tmp_path)["agent"] == "dqn"


def test_check_disjoint_lists_three_shared_clips_and_counts_the_rest(tmp_path: Path) -> None:
    """Five shared ids c0..c4: the message shows c0, c1, c2 and says "and 2 more"."""
    frames = [np.zeros((1, 1), np.float32)] * 5
    store = FeatureStore.create(
        tmp_path / "s", frames, [0] * 5, ["A"] * 5, ["calm"], clip_ids=[f"c{i}" for i in range(5)]
    )
    with pytest.raises(ValueError, match=r"where: .*\(c0, c1, c2 and 2 more\); .* a leak"):
        check_disjoint(store, store, "where")
    check_disjoint(store.subset(indices=[0, 1]), store.subset(indices=[2, 3, 4]), "where")
