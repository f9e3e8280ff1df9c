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

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

STEPS_PER_SECOND = 10.0
"""The time base of every store, env and stream: one step (one decision) per 0.1 s, as
the paper's 0.1 s window hop. A store's ``meta["steps_per_second"]`` may say otherwise."""

SCHEMA_VERSION = 1
_ARRAYS = ("frames", "offsets", "lengths", "labels", "speakers")
_CHUNK_BYTES = 64 * 1024 * 1024


class StoreError(ValueError):
    """A feature store is malformed; the message names the path and the field."""


@dataclass(frozen=True)
class Clip:
    """One clip of a store: its ``[T, dim]`` frames, label index, speaker and clip id."""

    frames: np.ndarray
    label: int
    speaker: str
    clip_id: str


def _hash_file(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def _chunks(frames: np.ndarray) -> Iterable[np.ndarray]:
    rows = max(1, _CHUNK_BYTES // max(1, frames.shape[1] * 4))
    for start in range(0, frames.shape[0], rows):
        yield np.asarray(frames[start : start + rows])


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
        offsets, lengths, labels, speaker_index = self._full
        return FeatureStore(
            self.path,
            self.frames,
            offsets,
            lengths,
            labels,
            speaker_index,
            self.meta,
            clip_index=self.clip_index[keep],
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
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path}: a store already exists here (pass overwrite=True)")
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
            frames = np.lib.format.open_memmap(
                tmp / "frames.npy", mode="w+", dtype=np.float32, shape=(int(lengths.sum()), dim)
            )
            lo, hi = np.inf, -np.inf
            for i, seq in enumerate(sequences):
                seq = np.asarray(seq)
                if seq.ndim != 2 or seq.shape[1] != dim:
                    raise StoreError(
                        f"{path}: sequences[{i}]: expected shape [T, {dim}], got {seq.shape}"
                    )
                if len(seq) == 0:
                    raise StoreError(f"{path}: sequences[{i}] ({clip_ids[i]}): empty clip")
                if not np.isfinite(seq).all():
                    raise StoreError(f"{path}: sequences[{i}] ({clip_ids[i]}): NaN or inf frames")
                frames[offsets[i] : offsets[i] + lengths[i]] = seq
                lo, hi = min(lo, float(seq.min())), max(hi, float(seq.max()))
            frames.flush()
            del frames
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
                "checksums": {name: _hash_file(tmp / f"{name}.npy") for name in _ARRAYS},
            }
            (tmp / "meta.json").write_text(json.dumps(full_meta, indent=1))
            _validate_labels(path, label_array, len(full_meta["class_names"]))
            if overwrite and path.exists():
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
        meta_path = path / "meta.json"
        if not meta_path.is_file():
            raise StoreError(
                f"{path}: meta.json: missing (not a feature store, or a half-written one)"
            )
        try:
            meta = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise StoreError(f"{path}: meta.json: unreadable JSON ({error})") from None
        version = meta.get("schema_version")
        if version != SCHEMA_VERSION:
            raise StoreError(
                f"{path}: schema_version: unknown version {version!r} (this package reads {SCHEMA_VERSION})"
            )
        for key in (
            "dim",
            "class_names",
            "speaker_names",
            "clip_ids",
            "checksums",
            "frame_min",
            "frame_max",
        ):
            if key not in meta:
                raise StoreError(f"{path}: meta.json: missing field {key!r}")
        arrays: dict[str, np.ndarray] = {}
        for name in _ARRAYS:
            file = path / f"{name}.npy"
            if not file.is_file():
                raise StoreError(f"{path}: {name}.npy: missing")
            if verify and _hash_file(file) != meta["checksums"].get(name):
                raise StoreError(
                    f"{path}: {name}.npy: checksum mismatch (the file changed after the store was written)"
                )
            try:
                arrays[name] = np.load(
                    file, mmap_mode="r" if name == "frames" else None, allow_pickle=False
                )
            except ValueError as error:
                raise StoreError(f"{path}: {name}.npy: unreadable ({error})") from None
        frames = arrays["frames"]
        if frames.dtype != np.float32 or frames.ndim != 2:
            raise StoreError(
                f"{path}: frames: expected a float32 [N, dim] array, got {frames.dtype} {frames.shape}"
            )
        if frames.shape[1] != meta["dim"]:
            raise StoreError(
                f"{path}: dim: meta.json says {meta['dim']}, frames.npy has {frames.shape[1]}"
            )
        offsets, lengths = arrays["offsets"], arrays["lengths"]
        n = len(offsets)
        for name in ("lengths", "labels", "speakers"):
            if len(arrays[name]) != n:
                raise StoreError(f"{path}: {name}: {len(arrays[name])} entries for {n} clips")
        if len(meta["clip_ids"]) != n:
            raise StoreError(f"{path}: clip_ids: {len(meta['clip_ids'])} entries for {n} clips")
        empty = np.flatnonzero(lengths < 1)
        if len(empty):
            raise StoreError(f"{path}: lengths: clip {meta['clip_ids'][empty[0]]!r} is empty")
        if n and (offsets.min() < 0 or (offsets + lengths).max() > len(frames)):
            raise StoreError(
                f"{path}: offsets: clips reach past the {len(frames)} rows of frames.npy"
            )
        _validate_labels(path, arrays["labels"], len(meta["class_names"]))
        if n and (
            arrays["speakers"].min() < 0 or arrays["speakers"].max() >= len(meta["speaker_names"])
        ):
            raise StoreError(f"{path}: speakers: speaker index out of range")
        if verify:
            for chunk in _chunks(frames):
                if not np.isfinite(chunk).all():
                    raise StoreError(f"{path}: frames: NaN or inf values")
        return cls(path, frames, offsets, lengths, arrays["labels"], arrays["speakers"], meta)

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


def _validate_labels(path: Path, labels: np.ndarray, n_classes: int) -> None:
    bad = np.flatnonzero((labels < 0) | (labels >= n_classes))
    if len(bad):
        raise StoreError(
            f"{path}: labels: label {int(labels[bad[0]])} of clip {int(bad[0])} is out of range for {n_classes} classes"
        )
