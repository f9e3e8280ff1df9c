"""FeatureStore: round-trip, selection, atomic writes and every refusal on open."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avemotion import FeatureStore, StoreError


def make_store(path: Path, n_clips: int = 6, dim: int = 4, seed: int = 0) -> FeatureStore:
    rng = np.random.default_rng(seed)
    sequences = [
        rng.standard_normal((int(rng.integers(1, 9)), dim)).astype(np.float32)
        for _ in range(n_clips)
    ]
    labels = [i % 3 for i in range(n_clips)]
    speakers = [f"spk{i % 3}" for i in range(n_clips)]
    return FeatureStore.create(
        path,
        sequences,
        labels,
        speakers,
        ["a", "b", "c"],
        meta={"modality": "audio", "steps_per_second": 10.0, "encoder": "test"},
    )


def test_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    sequences = [rng.standard_normal((t, 5)).astype(np.float32) for t in (3, 1, 7)]
    created = FeatureStore.create(
        tmp_path / "s",
        sequences,
        [2, 0, 1],
        ["x", "y", "x"],
        ["n", "h", "s"],
        clip_ids=["c0", "c1", "c2"],
        meta={"modality": "audio", "encoder": "e1"},
    )
    reopened = FeatureStore.open(tmp_path / "s")
    assert created.n_clips == reopened.n_clips == 3
    assert isinstance(reopened.frames, np.memmap)
    assert reopened.n_clips == 3 and reopened.dim == 5 and reopened.class_names == ["n", "h", "s"]
    assert reopened.meta["modality"] == "audio" and reopened.meta["encoder"] == "e1"
    assert reopened.meta["schema_version"] == 1
    for i, seq in enumerate(sequences):
        clip = reopened.clip(i)
        np.testing.assert_array_equal(clip.frames, seq)
        assert (
            clip.label == [2, 0, 1][i]
            and clip.speaker == ["x", "y", "x"][i]
            and clip.clip_id == f"c{i}"
        )
    assert reopened.frames.shape == (11, 5)


def test_subset_by_speaker(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s")
    kept = store.subset(speakers=["spk0", "spk2"])
    assert set(kept.speakers) == {"spk0", "spk2"} and kept.n_clips == 4
    dropped = store.subset(exclude_speakers=["spk0"])
    assert "spk0" not in dropped.speakers and dropped.n_clips == 4
    assert kept.frames is store.frames  # shares the memory map
    np.testing.assert_array_equal(kept.clip(1).frames, store.clip(2).frames)
    nested = dropped.subset(speakers=["spk1"])
    assert nested.speakers == ["spk1", "spk1"] and nested.clip_ids == [
        store.clip_ids[1],
        store.clip_ids[4],
    ]
    with pytest.raises(StoreError, match="unknown speaker"):
        store.subset(speakers=["nobody"])
    with pytest.raises(StoreError, match="no clips"):
        store.subset(speakers=["spk0"], exclude_speakers=["spk0"])


def test_create_refuses_existing_and_cleans_up(tmp_path: Path) -> None:
    make_store(tmp_path / "s")
    with pytest.raises(FileExistsError):
        make_store(tmp_path / "s")
    with pytest.raises(StoreError, match="NaN or inf"):
        FeatureStore.create(
            tmp_path / "bad", [np.array([[np.nan, 1.0]], np.float32)], [0], ["a"], ["x"]
        )
    with pytest.raises(StoreError, match="empty clip"):
        FeatureStore.create(tmp_path / "bad", [np.zeros((0, 2), np.float32)], [0], ["a"], ["x"])
    with pytest.raises(StoreError, match="labels: label 5"):
        FeatureStore.create(tmp_path / "bad", [np.zeros((2, 2), np.float32)], [5], ["a"], ["x"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # no temporary directory left behind


def test_create_never_replaces_what_is_not_a_store(tmp_path: Path) -> None:
    """A file, or a directory of other things, is refused in one line even with
    ``overwrite``, and left as it was; an empty directory is filled; a store is replaced
    with ``overwrite``."""
    notes = tmp_path / "docs"
    notes.mkdir()
    (notes / "notes.txt").write_text("mine")
    frames = [np.zeros((2, 2), np.float32)]
    with pytest.raises(StoreError) as error:
        FeatureStore.create(notes, frames, [0], ["a"], ["x"], overwrite=True)
    assert str(error.value) == (
        f"{notes}: a directory that is not a feature store (no meta.json); "
        "it is never replaced: choose another output"
    )
    assert (notes / "notes.txt").read_text() == "mine"
    a_file = tmp_path / "file.npy"
    a_file.write_text("x")
    with pytest.raises(StoreError, match=r"file\.npy: a file, not a store directory"):
        FeatureStore.create(a_file, frames, [0], ["a"], ["x"], overwrite=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert FeatureStore.create(empty, frames, [0], ["a"], ["x"]).n_clips == 1
    replaced = FeatureStore.create(empty, frames * 2, [0, 0], ["a", "b"], ["x"], overwrite=True)
    assert replaced.n_clips == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs", "empty", "file.npy"]


def test_half_written_store_is_not_valid(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s")
    (store.path / "meta.json").unlink()
    with pytest.raises(StoreError, match="meta.json: missing"):
        FeatureStore.open(tmp_path / "s")


def _rewrite(path: Path, name: str, array: np.ndarray, fix_checksum: bool = True) -> None:
    np.save(path / f"{name}.npy", array)
    if fix_checksum:
        from avemotion.store_files import hash_file

        meta = json.loads((path / "meta.json").read_text())
        meta["checksums"][name] = hash_file(path / f"{name}.npy")
        (path / "meta.json").write_text(json.dumps(meta))


def test_refuses_nan_frames(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s")
    frames = np.array(store.frames)
    frames[3, 1] = np.inf
    _rewrite(store.path, "frames", frames)
    with pytest.raises(StoreError, match=r"s: frames: NaN or inf"):
        FeatureStore.open(store.path)


def test_refuses_dim_mismatch(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s")
    meta = json.loads((store.path / "meta.json").read_text())
    meta["dim"] = 7
    (store.path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="dim: meta.json says 7"):
        FeatureStore.open(store.path)


def test_refuses_empty_clip(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s")
    lengths = np.array(store.lengths)
    lengths[2] = 0
    _rewrite(store.path, "lengths", lengths)
    with pytest.raises(StoreError, match="lengths: clip .* is empty"):
        FeatureStore.open(store.path)


def test_refuses_label_out_of_range(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s")
    labels = np.array(store.labels)
    labels[0] = 3
    _rewrite(store.path, "labels", labels)
    with pytest.raises(StoreError, match="labels: label 3 .* out of range for 3 classes"):
        FeatureStore.open(store.path)


def test_refuses_checksum_mismatch(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s")
    frames = np.array(store.frames)
    frames[0, 0] += 1.0
    _rewrite(store.path, "frames", frames, fix_checksum=False)
    with pytest.raises(StoreError, match="frames.npy: checksum mismatch"):
        FeatureStore.open(store.path)


def test_refuses_truncated_frames(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s")
    data = (store.path / "frames.npy").read_bytes()
    (store.path / "frames.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreError, match="frames.npy"):
        FeatureStore.open(store.path, verify=False)


def test_refuses_unknown_schema(tmp_path: Path) -> None:
    store = make_store(tmp_path / "s")
    meta = json.loads((store.path / "meta.json").read_text())
    meta["schema_version"] = 99
    (store.path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="schema_version: unknown version 99"):
        FeatureStore.open(store.path)


def test_open_streams_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Verification reads frames in bounded chunks, never the whole array at once."""
    import avemotion.store as store_module
    import avemotion.store_files as files_module

    monkeypatch.setattr(files_module, "_CHUNK_BYTES", 64)
    store = make_store(tmp_path / "s", n_clips=20, dim=4)
    frames = np.array(store.frames)
    frames[-1, -1] = np.nan
    _rewrite(store.path, "frames", frames)
    seen: list[int] = []
    original = files_module.frame_chunks

    def spy(array: np.ndarray):
        for chunk in original(array):
            seen.append(len(chunk))
            yield chunk

    monkeypatch.setattr(store_module, "frame_chunks", spy)
    with pytest.raises(StoreError, match="NaN"):
        FeatureStore.open(store.path)
    assert max(seen) == 4 and len(seen) > 5


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lengths=st.lists(st.integers(1, 6), min_size=1, max_size=6),
    dim=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_round_trip_property(
    tmp_path_factory: pytest.TempPathFactory, lengths: list[int], dim: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    sequences = [rng.uniform(-1e6, 1e6, (t, dim)).astype(np.float32) for t in lengths]
    labels = rng.integers(0, 4, size=len(lengths)).tolist()
    speakers = [f"s{int(x)}" for x in rng.integers(0, 3, size=len(lengths))]
    path = tmp_path_factory.mktemp("prop") / "s"
    store = FeatureStore.create(path, sequences, labels, speakers, ["a", "b", "c", "d"])
    for i, seq in enumerate(sequences):
        clip = store.clip(i)
        np.testing.assert_array_equal(clip.frames, seq)
        assert (clip.label, clip.speaker) == (labels[i], speakers[i])
    assert store.value_range == (
        float(min(s.min() for s in sequences)),
        float(max(s.max() for s in sequences)),
    )
