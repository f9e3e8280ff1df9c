"""Bad feature stores: each is refused with one line naming the store and the field, on
writing or on opening; and evaluation on a run's own training speakers is flagged by name."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from avemotion.evaluation.evaluate import evaluate_run
from avemotion.store import FeatureStore, StoreError
from avemotion.store_files import hash_file

from .conftest import CLASSES, make_store


def _one_line(error: pytest.ExceptionInfo, path: Path, field: str) -> None:
    message = str(error.value)
    assert str(path) in message and field in message and "\n" not in message


def _sequences(n: int = 3, dim: int = 4) -> list[np.ndarray]:
    return [np.ones((5, dim), np.float32) * i for i in range(n)]


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_frames_are_refused_on_writing(value: float, tmp_path: Path) -> None:
    sequences = _sequences()
    sequences[1][2, 3] = value
    with pytest.raises(StoreError, match="NaN or inf") as caught:
        FeatureStore.create(tmp_path / "s", sequences, [0, 1, 2], ["a", "a", "b"], CLASSES)
    _one_line(caught, tmp_path / "s", "sequences[1]")
    assert not (tmp_path / "s").exists() and not list(tmp_path.iterdir())  # no temp left


def test_nan_written_behind_the_stores_back_is_found_on_opening(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s")
    frames = np.load(store.path / "frames.npy", mmap_mode="r+")
    frames[3, 0] = np.nan
    frames.flush()
    del frames
    meta = json.loads((store.path / "meta.json").read_text())
    meta["checksums"]["frames"] = hash_file(store.path / "frames.npy")  # a consistent forgery
    (store.path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="NaN or inf") as caught:
        FeatureStore.open(store.path)
    _one_line(caught, store.path, "frames")


def test_wrong_dim_is_refused(tmp_path: Path) -> None:
    sequences = _sequences()
    sequences[2] = np.ones((5, 7), np.float32)
    with pytest.raises(StoreError, match=r"expected shape \[T, 4\]") as caught:
        FeatureStore.create(tmp_path / "s", sequences, [0, 1, 2], ["a", "a", "b"], CLASSES)
    _one_line(caught, tmp_path / "s", "sequences[2]")
    store = make_store(tmp_path / "ok")
    meta = json.loads((store.path / "meta.json").read_text())
    meta["dim"] = store.dim + 1
    (store.path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError) as caught:
        FeatureStore.open(store.path)
    _one_line(caught, store.path, "dim")


def test_empty_clip_is_refused(tmp_path: Path) -> None:
    sequences = _sequences()
    sequences[1] = np.zeros((0, 4), np.float32)
    with pytest.raises(StoreError, match="empty clip") as caught:
        FeatureStore.create(
            tmp_path / "s", sequences, [0, 1, 2], ["a", "a", "b"], CLASSES, clip_ids=["x", "y", "z"]
        )
    _one_line(caught, tmp_path / "s", "sequences[1] (y)")


@pytest.mark.parametrize("label", [-1, len(CLASSES)])
def test_label_out_of_range_is_refused(label: int, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="out of range") as caught:
        FeatureStore.create(tmp_path / "s", _sequences(), [0, label, 1], ["a", "a", "b"], CLASSES)
    _one_line(caught, tmp_path / "s", "labels")
    assert not (tmp_path / "s").exists()


def test_truncated_frames_file_is_refused_with_and_without_verification(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s")
    frames = store.path / "frames.npy"
    frames.write_bytes(frames.read_bytes()[: frames.stat().st_size // 2])
    with pytest.raises(StoreError, match="checksum mismatch") as caught:
        FeatureStore.open(store.path)
    _one_line(caught, store.path, "frames.npy")
    with pytest.raises(StoreError) as caught:
        FeatureStore.open(store.path, verify=False)  # the fast path must not read garbage
    _one_line(caught, store.path, "frames")


def test_checksum_mismatch_is_refused(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s")
    labels = np.load(store.path / "labels.npy")
    labels[0] = (labels[0] + 1) % len(CLASSES)  # a plausible edit: still a valid label
    np.save(store.path / "labels.npy", labels)
    with pytest.raises(StoreError, match="checksum mismatch") as caught:
        FeatureStore.open(store.path)
    _one_line(caught, store.path, "labels.npy")


def test_unknown_schema_version_is_refused(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s")
    meta = json.loads((store.path / "meta.json").read_text())
    meta["schema_version"] = 99
    (store.path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="unknown version 99") as caught:
        FeatureStore.open(store.path)
    _one_line(caught, store.path, "schema_version")


def test_half_written_store_is_not_a_store(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s")
    (store.path / "meta.json").unlink()  # as if killed before the rename
    with pytest.raises(StoreError, match="missing") as caught:
        FeatureStore.open(store.path)
    _one_line(caught, store.path, "meta.json")


def test_store_errors_reach_the_cli_as_one_line(tmp_path: Path, run_cli) -> None:
    store = make_store(tmp_path / "s")
    (store.path / "offsets.npy").write_bytes(b"\x93NUMPY garbage")
    result = run_cli("info", store.path)
    assert result.code == 2
    assert str(store.path) in result.error_line and "offsets.npy" in result.error_line


def test_evaluating_on_training_speakers_is_flagged_by_name(small_store, small_run: Path) -> None:
    """The run trained on P1 and P2; evaluating on P2 and P3 must say that P2 was seen."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        evaluate_run(small_run, small_store, speakers=["P2", "P3"])
    flagged = [str(w.message) for w in caught if "P2" in str(w.message)]
    assert flagged, "evaluate_run neither refused nor warned about training speaker P2"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # held-out speakers only: no warning at all
        evaluate_run(small_run, small_store, speakers=["P3"])
