"""Listing a corpus: its clips (by its layout, :mod:`avemotion.encoders.layouts`, or a CSV),
its class subset, and the account of every file under its root.

This is the entry point of extraction and training. :func:`list_corpus` returns a
:class:`Corpus` whose :class:`~avemotion.encoders.corpus_files.FileAccount` says, for every
file seen, whether a clip uses it or why not; :meth:`Corpus.drop` and :meth:`Corpus.select`
keep that account in step when clips are left out later.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from avemotion.encoders.corpus_files import FileAccount, Refusals, walk
from avemotion.encoders.layouts import (
    ADAPTERS,
    CLASS_SUBSETS,
    EMOTIONS,
    LABEL_SHEET,
    DatasetError,
    Item,
    normalise_label,
)

__all__ = [
    "ADAPTERS",
    "CLASS_SUBSETS",
    "EMOTIONS",
    "Corpus",
    "DatasetError",
    "Item",
    "csv_items",
    "list_corpus",
    "list_dataset",
    "normalise_label",
    "select_speakers",
]


def _inside(root: Path, raw: str, allow_outside: bool, source: str) -> Path:
    path = Path(raw)
    # lexical check (symlinks placed inside the root by its owner are allowed)
    resolved = Path(os.path.abspath(path if path.is_absolute() else root / path))
    if not allow_outside and not resolved.is_relative_to(os.path.abspath(root)):
        raise DatasetError(
            f"{source}: path {raw!r} is outside the dataset root {root} (pass allow_outside_root to permit)"
        )
    return resolved


NO_SPEAKER = "unknown"
"""The speaker of every clip of a CSV corpus without a speaker column."""


def csv_items(
    csv_file: Path, root: Path | None = None, allow_outside_root: bool = False
) -> list[Item]:
    """A generic CSV ``path,label,speaker[,audio_path]`` (a header row is optional), like the
    official code's ``training_data.csv``, or ``path,label`` on every row for recordings
    without speaker ids (every clip then has the speaker :data:`NO_SPEAKER`; cross-fitting
    falls back to clip folds, :mod:`avemotion.folds`). Relative paths resolve against
    ``root`` (default: the CSV's folder) and may not leave it unless ``allow_outside_root``."""
    csv_file = Path(csv_file)
    root = Path(root) if root is not None else csv_file.parent
    if not csv_file.is_file():
        raise DatasetError(f"{csv_file}: no such CSV file")
    items, seen = [], set()
    with open(csv_file, newline="") as handle:
        rows = list(csv.reader(handle))
    if rows and [c.strip().lower() for c in rows[0][:3]] in (
        ["path", "label", "speaker"],
        ["path", "label"],
    ):
        rows = [[""]] + rows[1:]
    filled = [row for row in rows if row and any(cell.strip() for cell in row)]
    no_speakers = bool(filled) and all(len(row) == 2 for row in filled)
    for number, row in enumerate(rows, start=1):
        if not row or not any(cell.strip() for cell in row):
            continue
        source = f"{csv_file}:{number}"
        if len(row) < 3 and not no_speakers:
            raise DatasetError(
                f"{source}: expected path,label,speaker[,audio_path], got {len(row)} field(s)"
            )
        path = _inside(root, row[0].strip(), allow_outside_root, source)
        audio = (
            _inside(root, row[3].strip(), allow_outside_root, source)
            if len(row) > 3 and row[3].strip()
            else None
        )
        speaker = NO_SPEAKER if no_speakers else row[2].strip()
        if not speaker:
            raise DatasetError(f"{source}: empty speaker")
        clip_id = (
            path.relative_to(root.resolve()).with_suffix("").as_posix()
            if path.is_relative_to(root.resolve())
            else str(path)
        )
        while clip_id in seen:
            clip_id += "+"
        seen.add(clip_id)
        items.append(Item(path, normalise_label(row[1], source), speaker, clip_id, audio))
    return items


@dataclass
class Corpus:
    """A listed corpus: its clips, its class subset, and the account of every file under
    its root (:class:`~avemotion.encoders.corpus_files.FileAccount`), kept in step as
    clips are dropped (speaker selection, decoding failures)."""

    items: list[Item]
    classes: tuple[str, ...]
    account: FileAccount

    def drop(self, item: Item, line: str) -> None:
        """Remove ``item``; its files no other clip uses are skipped with ``line`` (which
        names the file)."""
        self._drop([item], lambda _: line)

    def select(self, speakers: list[str] | None, exclude: list[str] | None, why: str) -> None:
        """Keep the clips of ``speakers`` minus ``exclude``; the others' files are skipped as
        ``speaker S not selected (why)``."""
        kept = {id(i) for i in select_speakers(self.items, speakers, exclude)}
        dropped = [i for i in self.items if id(i) not in kept]
        self._drop(dropped, lambda item: f"speaker {item.speaker} not selected ({why})")

    def _drop(self, dropped: list[Item], line: Callable[[Item], str]) -> None:
        gone = {id(i) for i in dropped}
        self.items = [i for i in self.items if id(i) not in gone]
        in_use = {p for i in self.items for p in (i.path, i.audio_path) if p is not None}
        for item in dropped:
            text = line(item)
            for path in (item.path, item.audio_path):
                if path is not None and path not in in_use:
                    self.account.skip(path, text if str(path) in text else f"{path}: {text}")


def _corpus_key(name: str) -> str:
    return name.lower().replace("_", "-").replace("'05", "").replace("berlin", "emodb")


def list_corpus(
    name: str,
    root: str | os.PathLike[str],
    modality: str = "audio",
    allow_outside_root: bool = False,
    exclude: tuple[str | os.PathLike[str], ...] = (),
) -> Corpus:
    """List corpus ``name`` under ``root`` with the account of every file under it.

    ``name`` is one of :data:`ADAPTERS` or ``"csv"`` (``root`` is then the CSV file, or a
    folder holding ``data.csv``). Folders in ``exclude`` (an output inside the root) are not
    walked. Raises :class:`DatasetError` naming the root when no clip is found, and naming
    ``--allow-outside-root`` when it is set for a corpus other than ``"csv"`` (only a CSV
    lists paths that could leave the root: set elsewhere, it would be ignored).
    """
    root = Path(root)
    key = _corpus_key(name)
    refused: Refusals = {}
    if key == "csv":
        csv_file = root if root.suffix.lower() == ".csv" else root / "data.csv"
        items = csv_items(csv_file, allow_outside_root=allow_outside_root)
        classes = tuple(e for e in EMOTIONS if e in {item.label for item in items})
        folder = csv_file.parent
        files = walk(folder, exclude=[Path(p) for p in exclude])
        refused = {f: f"not listed in {csv_file.name}" for f in files}
        refused[csv_file] = LABEL_SHEET
    elif key in ADAPTERS:
        if allow_outside_root:
            raise DatasetError(
                f"--allow-outside-root: only the csv dataset reads it (its paths may leave the "
                f"root); {name} is listed from its folder layout under {root}"
            )
        items = ADAPTERS[key](root, modality=modality, refused=refused)
        classes = CLASS_SUBSETS[key]
        folder, files = root, walk(root, exclude=[Path(p) for p in exclude])
    else:
        raise DatasetError(f"dataset: unknown corpus {name!r}; known: {sorted(ADAPTERS) + ['csv']}")
    if not items:
        raise DatasetError(
            f"{root}: no {name} clips found (see docs/encoders.md for the expected layout)"
        )
    used = [p for i in items for p in (i.path, i.audio_path) if p is not None]
    return Corpus(items, classes, FileAccount.of_listing(folder, files, used, refused))


def list_dataset(
    name: str,
    root: str | os.PathLike[str],
    modality: str = "audio",
    allow_outside_root: bool = False,
) -> tuple[list[Item], tuple[str, ...]]:
    """The items and class subset of :func:`list_corpus` (without the file account)."""
    corpus = list_corpus(name, root, modality, allow_outside_root)
    return corpus.items, corpus.classes


def select_speakers(
    items: list[Item], speakers: list[str] | None = None, exclude: list[str] | None = None
) -> list[Item]:
    """Keep items of ``speakers`` (all when ``None``) and drop those of ``exclude``."""
    known = {item.speaker for item in items}
    for field, names in (("speakers", speakers), ("exclude_speakers", exclude)):
        unknown = sorted(set(names or ()) - known)
        if unknown:
            raise DatasetError(f"{field}: unknown speaker(s) {unknown}; known: {sorted(known)}")
    kept = [
        i
        for i in items
        if (speakers is None or i.speaker in speakers) and i.speaker not in set(exclude or ())
    ]
    if not kept:
        raise DatasetError("speakers: the selection holds no clips")
    return kept
