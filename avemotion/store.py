"""The feature store: the contract between the encoders and the environments.

A store is one directory holding precomputed per-step embeddings of many clips::

    STORE/
      frames.npy     float32 [total_frames, dim], memory-mapped on open
      offsets.npy    int64 [n_clips], first row of each clip in frames.npy
      lengths.npy    int64 [n_clips], number of steps of each clip (>= 1)
      labels.npy     int64 [n_clips], index into class_names
      speakers.npy   int64 [n_clips], index into meta["speaker_names"]
      meta.json      schema version, class names, speaker names, clip ids, modality,
                     steps per second, encoder identity, value range and checksums

Writes are atomic: everything is written into a hidden temporary sibling directory and
renamed into place, so a half-written store never appears under its final name.
Opening verifies the arrays in bounded-memory chunks, so a store larger than RAM opens
without being loaded.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avemotion.store_files import (
    ARRAY_NAMES,
    SCHEMA_VERSION,
    StoreError,
    check_arrays,
    check_labels,
    frame_chunks,
    hash_file,
    load_arrays,
    read_meta,
    write_frames,
)

STEPS_PER_SECOND = 10.0
"""The time base of every store, env and stream: one step (one decision) per 0.1 s, as
the paper's 0.1 s window hop. A store's ``meta["steps_per_second"]`` may say otherwise."""


@dataclass(frozen=True)
class Clip:
    """One clip of a store: its ``[T, dim]`` frames, label index, speaker and clip id."""

    frames: np.ndarray
    label: int
    speaker: str
    clip_id: str


def check_replaceable(path: str | os.PathLike[str], overwrite: bool) -> None:
    """Refuse, in one line, to write a store at ``path`` unless nothing would be lost: it
    does not exist, is an empty directory, or is a store and ``overwrite`` is set. Anything
    else (a file, a directory of other things) is never replaced, whatever ``overwrite``
    says: a mistyped output path must not delete a user's files."""
    path = Path(path)
    if not path.exists():
        return
    if not path.is_dir():
        raise StoreError(f"{path}: a file, not a store directory; choose another output")
    if (path / "meta.json").is_file():
        if not overwrite:
            raise FileExistsError(f"{path}: a store already exists here (pass overwrite=True)")
        return
    if any(path.iterdir()):
        raise StoreError(
            f"{path}: a directory that is not a feature store (no meta.json); "
            "it is never replaced: choose another output"
        )


class FeatureStore:
    """A read-only, memory-mapped collection of per-step embeddings of labelled clips.

    Create one with :meth:`create`, open one with :meth:`open`, and select speakers with
    :meth:`subset`. A subset shares the memory-mapped ``frames`` of its parent.
    """

    def __init__(
        self,
        path: Path,
        frames: np.ndarray,
        offsets: np.ndarray,
        lengths: np.ndarray,
        labels: np.ndarray,
        speaker_index: np.ndarray,
        meta: dict[str, Any],
        clip_index: np.ndarray | None = None,
    ) -> None:
        self.path = Path(path)
        self.frames = frames
        self.meta = meta
        self.class_names: list[str] = list(meta["class_names"])
        self.speaker_names: list[str] = list(meta["speaker_names"])
        self._all_clip_ids: list[str] = list(meta["clip_ids"])
        self.clip_index = np.arange(len(offsets)) if clip_index is None else clip_index
        self.offsets = np.ascontiguousarray(offsets[self.clip_index], dtype=np.int64)
        self.lengths = np.ascontiguousarray(lengths[self.clip_index], dtype=np.int64)
        self.labels = np.ascontiguousarray(labels[self.clip_index], dtype=np.int64)
        self.speaker_index = np.ascontiguousarray(speaker_index[self.clip_index], dtype=np.int64)
        self._full = (offsets, lengths, labels, speaker_index)

    # ------------------------------------------------------------------ attributes
    @property
    def n_clips(self) -> int:
        """Number of clips in this (possibly subset) store."""
        return int(len(self.offsets))

    @property
    def dim(self) -> int:
        """Embedding size of one step."""
        return int(self.frames.shape[1])

    @property
    def n_classes(self) -> int:
        """Number of emotion classes, K."""
        return len(self.class_names)

    @property
    def steps_per_second(self) -> float:
        """Time base of the frames, in steps per second."""
        return float(self.meta.get("steps_per_second", STEPS_PER_SECOND))

    @property
    def speakers(self) -> list[str]:
        """Speaker name of every clip, in clip order."""
        return [self.speaker_names[i] for i in self.speaker_index]

    @property
    def clip_ids(self) -> list[str]:
        """Clip id of every clip, in clip order."""
        return [self._all_clip_ids[i] for i in self.clip_index]

    @property
    def speaker_set(self) -> list[str]:
        """Sorted distinct speakers present in this store."""
        return sorted({self.speaker_names[i] for i in np.unique(self.speaker_index)})

    @property
    def value_range(self) -> tuple[float, float]:
        """Smallest and largest frame value over the whole store (from its metadata)."""
        return float(self.meta["frame_min"]), float(self.meta["frame_max"])

    def __len__(self) -> int:
        return self.n_clips

    def __repr__(self) -> str:
        return (
            f"FeatureStore({str(self.path)!r}, n_clips={self.n_clips}, dim={self.dim}, "
            f"classes={self.class_names}, speakers={len(self.speaker_set)})"
        )

    def clip(self, i: int) -> Clip:
        """Return clip ``i`` (frames as a read-only view of the memory map)."""
        if not -self.n_clips <= i < self.n_clips:
            raise IndexError(f"clip index {i} out of range for a store of {self.n_clips} clips")
        start, length = int(self.offsets[i]), int(self.lengths[i])
        return Clip(
            frames=self.frames[start : start + length],
            label=int(self.labels[i]),
            speaker=self.speaker_names[int(self.speaker_index[i])],
            clip_id=self._all_clip_ids[int(self.clip_index[i])],
        )

    # ------------------------------------------------------------------ selection
    def subset(
        self,
        speakers: Sequence[str] | None = None,
        exclude_speakers: Sequence[str] | None = None,
        indices: Sequence[int] | np.ndarray | None = None,
    ) -> FeatureStore:
        """Select clips by speaker (``speakers`` keeps, ``exclude_speakers`` drops) or index.

        Raises :class:`StoreError` when a named speaker is not in the store or when the
        selection is empty.
        """
        known = set(self.speaker_names)
        for field, names in (("speakers", speakers), ("exclude_speakers", exclude_speakers)):
            unknown = sorted(set(names or ()) - known)
            if unknown:
                raise StoreError(
                    f"{self.path}: {field}: unknown speaker(s) {unknown}; known: {sorted(known)}"
                )
        keep = np.ones(self.n_clips, dtype=bool)
        if indices is not None:
            keep[:] = False
            keep[np.asarray(indices, dtype=np.int64)] = True
        # compare speaker indices, not names: numpy string arrays drop trailing NUL characters
        lookup = {name: i for i, name in enumerate(self.speaker_names)}
        if speakers is not None:
            keep &= np.isin(self.speaker_index, [lookup[s] for s in speakers])
        if exclude_speakers:
            keep &= ~np.isin(self.speaker_index, [lookup[s] for s in exclude_speakers])
        if not keep.any():
            raise StoreError(f"{self.path}: speakers: the selection holds no clips")
        return FeatureStore(
            self.path, self.frames, *self._full, self.meta, clip_index=self.clip_index[keep]
        )

    # ------------------------------------------------------------------ writing
    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        sequences: Sequence[np.ndarray],
        labels: Sequence[int],
        speakers: Sequence[str],
        class_names: Sequence[str],
        clip_ids: Sequence[str] | None = None,
        meta: dict[str, Any] | None = None,
        overwrite: bool = False,
    ) -> FeatureStore:
        """Write a store atomically from a list of ``[T_i, dim]`` arrays and open it.

        ``meta`` may carry ``modality``, ``steps_per_second``, ``encoder`` and any other
        JSON-serialisable fields; they are kept in ``meta.json``.
        """
        path = Path(path)
        n = len(sequences)
        if n == 0:
            raise StoreError(f"{path}: sequences: no clips given")
        if not (len(labels) == len(speakers) == n):
            raise StoreError(
                f"{path}: labels/speakers: expected {n} entries each, got {len(labels)} and {len(speakers)}"
            )
        clip_ids = (
            [str(c) for c in clip_ids]
            if clip_ids is not None
            else [f"clip{i:06d}" for i in range(n)]
        )
        if len(clip_ids) != n or len(set(clip_ids)) != n:
            raise StoreError(f"{path}: clip_ids: expected {n} unique ids")
        check_replaceable(path, overwrite)
        first = np.asarray(sequences[0])
        if first.ndim != 2:
            raise StoreError(
                f"{path}: sequences[0]: expected a [T, dim] array, got shape {first.shape}"
            )
        dim = first.shape[1]
        lengths = np.array([len(s) for s in sequences], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        speaker_names = sorted({str(s) for s in speakers})
        speaker_lookup = {name: i for i, name in enumerate(speaker_names)}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
        try:
            lo, hi = write_frames(tmp / "frames.npy", path, sequences, offsets, lengths, clip_ids)
            label_array = np.asarray(labels, dtype=np.int64)
            np.save(tmp / "offsets.npy", offsets)
            np.save(tmp / "lengths.npy", lengths)
            np.save(tmp / "labels.npy", label_array)
            np.save(
                tmp / "speakers.npy",
                np.array([speaker_lookup[str(s)] for s in speakers], dtype=np.int64),
            )
            full_meta: dict[str, Any] = {
                "modality": "unknown",
                "steps_per_second": STEPS_PER_SECOND,
                "encoder": "unknown",
                **(meta or {}),
                "schema_version": SCHEMA_VERSION,
                "dim": int(dim),
                "n_clips": n,
                "total_frames": int(lengths.sum()),
                "class_names": [str(c) for c in class_names],
                "speaker_names": speaker_names,
                "clip_ids": clip_ids,
                "frame_min": lo,
                "frame_max": hi,
                "checksums": {name: hash_file(tmp / f"{name}.npy") for name in ARRAY_NAMES},
            }
            (tmp / "meta.json").write_text(json.dumps(full_meta, indent=1))
            check_labels(path, label_array, len(full_meta["class_names"]))
            if (path / "meta.json").is_file():  # check_replaceable: a store, to overwrite
                shutil.rmtree(path)
            os.replace(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return cls.open(path)

    # ------------------------------------------------------------------ reading
    @classmethod
    def open(cls, path: str | os.PathLike[str], verify: bool = True) -> FeatureStore:
        """Open a store memory-mapped; with ``verify`` check checksums and finiteness.

        Verification streams the files in 64 MiB chunks and never loads ``frames`` whole.
        """
        path = Path(path)
        meta = read_meta(path)
        arrays = load_arrays(path, meta, verify)
        check_arrays(path, meta, arrays)
        if verify:
            for chunk in frame_chunks(arrays["frames"]):
                if not np.isfinite(chunk).all():
                    raise StoreError(f"{path}: frames: NaN or inf values")
        return cls(path, *(arrays[name] for name in ARRAY_NAMES), meta)

    def summary(self) -> dict[str, Any]:
        """A JSON-serialisable description, as ``avemotion info`` prints it."""
        counts = np.bincount(self.labels, minlength=self.n_classes)
        return {
            "path": str(self.path),
            "corpus": self.meta.get("corpus", "unknown"),
            "modality": self.meta.get("modality"),
            "encoder": self.meta.get("encoder"),
            "schema_version": self.meta.get("schema_version"),
            "steps_per_second": self.steps_per_second,
            "n_clips": self.n_clips,
            "dim": self.dim,
            "total_frames": int(self.lengths.sum()),
            "clip_length": {
                "min": int(self.lengths.min()),
                "mean": float(self.lengths.mean()),
                "max": int(self.lengths.max()),
            },
            "classes": {name: int(c) for name, c in zip(self.class_names, counts)},
            "speakers": self.speaker_set,
        }
