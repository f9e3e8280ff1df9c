"""File accounting: every file under a corpus root ends up in a clip or is listed with why.

A user who points ``extract`` or ``train-encoder`` at a folder must be able to tell, for each
file in it, whether it was used. A corpus adapter (:mod:`avemotion.encoders.datasets`) turns
files into clips and records, for each media file it refuses, the reason (a name outside the
corpus's naming, a modality or camera view it does not use). The walk here sees every other
entry too (hidden files, dangling links, other extensions, links to folders are followed), and
:class:`FileAccount` gathers the verdicts, later ones (speaker selection, decoding failures)
included, into one list whose counts add up: files seen = kept + skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

MEDIA_SUFFIXES = {
    ".wav",
    ".flac",
    ".ogg",
    ".mp3",
    ".m4a",
    ".aac",
    ".mp4",
    ".avi",
    ".flv",
    ".mkv",
    ".mov",
    ".webm",
    ".mpg",
    ".mpeg",
}
"""Extensions considered when walking a corpus folder (content is probed, not trusted)."""

Refusals = dict[Path, str]
"""A media file an adapter did not turn into a clip → the reason (without the path)."""


def walk(root: Path, exclude: Iterable[Path] = ()) -> list[Path]:
    """Every non-folder entry under ``root`` (files, dangling links, …), sorted, following
    links to folders once each; folders in ``exclude`` (e.g. the output) are not entered."""
    skip = {os.path.abspath(p) for p in exclude}
    found: list[Path] = []
    visited: set[str] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in visited:  # a link back up the tree: entered once
            dirs[:] = []
            continue
        visited.add(real)
        dirs[:] = sorted(d for d in dirs if os.path.abspath(Path(folder) / d) not in skip)
        found.extend(Path(folder) / name for name in files)  # dangling links are here too
    return sorted(set(found))


def media_files(root: Path) -> Iterator[Path]:
    """The regular, non-hidden files with a media extension under ``root``: what adapters read.

    Raises ``NotADirectoryError`` naming ``root`` when it is not a folder."""
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: dataset root is not a directory")
    for path in walk(root):
        if (
            path.suffix.lower() in MEDIA_SUFFIXES
            and path.is_file()
            and not path.name.startswith(".")
        ):
            yield path


def generic_reason(path: Path) -> str:
    """Why a file the adapters never read is not a clip (link, hidden, extension, access)."""
    if path.is_symlink() and not path.exists():
        return f"dangling symbolic link (its target {os.readlink(path)} does not exist)"
    if path.name.startswith("."):
        return "hidden file (name starts with '.')"
    if not path.is_file():
        return "not a regular file"
    if path.suffix.lower() not in MEDIA_SUFFIXES:
        shown = path.suffix or "(none)"
        return f"unsupported extension {shown} (media: {', '.join(sorted(MEDIA_SUFFIXES))})"
    if not os.access(path, os.R_OK):
        return "unreadable (permission denied)"
    return "not recognised as a clip of this corpus"


@dataclass
class FileAccount:
    """The fate of every file seen under a corpus root: kept (in a clip) or skipped."""

    root: str
    seen: set[str] = field(default_factory=set)
    """Absolute (lexical, links not resolved) paths of every file seen."""
    skipped: dict[str, str] = field(default_factory=dict)
    """Path → one line ``"PATH: reason"``; the first reason given for a file is kept."""

    @classmethod
    def of_listing(
        cls, root: Path, files: list[Path], used: Iterable[Path], refused: Refusals
    ) -> FileAccount:
        """The account after listing: files no clip uses are skipped with the adapter's
        reason, or the generic one (:func:`generic_reason`)."""
        used = list(used)
        shown = {os.path.abspath(p): p for p in [*files, *refused, *used]}  # as the user named it
        account = cls(str(root), set(shown))
        in_use = {os.path.abspath(p) for p in used}
        reasons = {os.path.abspath(p): r for p, r in refused.items()}
        for key in sorted(account.seen - in_use):
            path = shown[key]
            account.skip(path, reasons.get(key) or generic_reason(Path(path)), named=False)
        return account

    def skip(self, path: str | os.PathLike[str], reason: str, named: bool = True) -> None:
        """Mark ``path`` skipped; ``named``: ``reason`` already starts with the path."""
        key = os.path.abspath(path)
        self.seen.add(key)
        if key not in self.skipped:
            self.skipped[key] = reason if named else f"{path}: {reason}"

    @property
    def kept(self) -> list[str]:
        """Files in at least one clip, sorted."""
        return sorted(self.seen - set(self.skipped))

    def lines(self) -> list[str]:
        """Every skipped file's line, sorted by path."""
        return [self.skipped[p] for p in sorted(self.skipped)]

    def counts(self) -> dict[str, int]:
        """``{"seen": n, "kept": k, "skipped": s}`` with ``n == k + s``."""
        return {"seen": len(self.seen), "kept": len(self.kept), "skipped": len(self.skipped)}

    def summary(self) -> str:
        """One line: ``ROOT: N file(s) seen = K kept + S skipped``."""
        return summary_line(self.root, self.counts())


def summary_line(root: str | os.PathLike[str], counts: dict[str, int]) -> str:
    """``ROOT: N file(s) seen = K kept + S skipped`` from :meth:`FileAccount.counts`."""
    return f"{root}: {counts['seen']} file(s) seen = {counts['kept']} kept + {counts['skipped']} skipped"


def printable(lines: list[str], marker: str = "not selected") -> list[str]:
    """The lines to print: every reason, but files left out by a speaker selection (often
    most of a corpus) folded into one count (they are all in the stored list)."""
    selected = [line for line in lines if marker not in line]
    folded = len(lines) - len(selected)
    if folded:
        selected.append(f"{folded} file(s) of speakers not selected (listed in the report)")
    return selected
