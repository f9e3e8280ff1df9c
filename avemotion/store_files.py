"""The feature store's files: writing, reading and checking them.

:class:`~avemotion.store.FeatureStore` is the store's interface and its module docstring
the layout of its directory; this module holds what touches the files: checksums, the
chunked reads that keep a store larger than RAM out of memory, and the one-line errors
that name the file and field at fault.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA_VERSION = 1
ARRAY_NAMES = ("frames", "offsets", "lengths", "labels", "speakers")
"""The store's arrays, in :class:`~avemotion.store.FeatureStore`'s argument order."""
_CHUNK_BYTES = 64 * 1024 * 1024


class StoreError(ValueError):
    """A feature store is malformed; the message names the path and the field."""


def hash_file(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def frame_chunks(frames: np.ndarray) -> Iterable[np.ndarray]:
    rows = max(1, _CHUNK_BYTES // max(1, frames.shape[1] * 4))
    for start in range(0, frames.shape[0], rows):
        yield np.asarray(frames[start : start + rows])


def write_frames(
    file: Path,
    path: Path,
    sequences: Sequence[np.ndarray],
    offsets: np.ndarray,
    lengths: np.ndarray,
    clip_ids: Sequence[str],
) -> tuple[float, float]:
    """Write every clip's rows into ``file`` (memory-mapped, never all in RAM), each
    checked; return the smallest and largest value written."""
    dim = np.asarray(sequences[0]).shape[1]
    frames = np.lib.format.open_memmap(
        file, mode="w+", dtype=np.float32, shape=(int(lengths.sum()), dim)
    )
    lo, hi = np.inf, -np.inf
    for i, seq in enumerate(sequences):
        seq = np.asarray(seq)
        if seq.ndim != 2 or seq.shape[1] != dim:
            raise StoreError(f"{path}: sequences[{i}]: expected shape [T, {dim}], got {seq.shape}")
        if len(seq) == 0:
            raise StoreError(f"{path}: sequences[{i}] ({clip_ids[i]}): empty clip")
        if not np.isfinite(seq).all():
            raise StoreError(f"{path}: sequences[{i}] ({clip_ids[i]}): NaN or inf frames")
        frames[offsets[i] : offsets[i] + lengths[i]] = seq
        lo, hi = min(lo, float(seq.min())), max(hi, float(seq.max()))
    frames.flush()
    del frames
    return lo, hi


_META_FIELDS = (
    *("dim", "class_names", "speaker_names", "clip_ids", "checksums", "frame_min", "frame_max"),
)


def read_meta(path: Path) -> dict[str, Any]:
    """The store's ``meta.json``, checked for its schema version and required fields."""
    meta_path = path / "meta.json"
    if not meta_path.is_file():
        raise StoreError(f"{path}: meta.json: missing (not a feature store, or a half-written one)")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise StoreError(f"{path}: meta.json: unreadable JSON ({error})") from None
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        raise StoreError(
            f"{path}: schema_version: unknown version {version!r} (this package reads {SCHEMA_VERSION})"
        )
    for key in _META_FIELDS:
        if key not in meta:
            raise StoreError(f"{path}: meta.json: missing field {key!r}")
    return meta


def load_arrays(path: Path, meta: dict[str, Any], verify: bool) -> dict[str, np.ndarray]:
    """The store's arrays (``frames`` memory-mapped), each checked against its checksum
    with ``verify``."""
    arrays: dict[str, np.ndarray] = {}
    for name in ARRAY_NAMES:
        file = path / f"{name}.npy"
        if not file.is_file():
            raise StoreError(f"{path}: {name}.npy: missing")
        if verify and hash_file(file) != meta["checksums"].get(name):
            raise StoreError(
                f"{path}: {name}.npy: checksum mismatch (the file changed after the store was written)"
            )
        try:
            mode = "r" if name == "frames" else None
            arrays[name] = np.load(file, mmap_mode=mode, allow_pickle=False)
        except ValueError as error:
            raise StoreError(f"{path}: {name}.npy: unreadable ({error})") from None
    return arrays


def check_arrays(path: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Shapes, counts and index ranges of the arrays agree with each other and with meta."""
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
        raise StoreError(f"{path}: offsets: clips reach past the {len(frames)} rows of frames.npy")
    check_labels(path, arrays["labels"], len(meta["class_names"]))
    speakers = arrays["speakers"]
    if n and (speakers.min() < 0 or speakers.max() >= len(meta["speaker_names"])):
        raise StoreError(f"{path}: speakers: speaker index out of range")


def check_labels(path: Path, labels: np.ndarray, n_classes: int) -> None:
    bad = np.flatnonzero((labels < 0) | (labels >= n_classes))
    if len(bad):
        raise StoreError(
            f"{path}: labels: label {int(labels[bad[0]])} of clip {int(bad[0])} is out of range for {n_classes} classes"
        )
