"""Named points where a long job can be held, so that a kill test stops it at a known point.

A job calls :func:`reached` after each unit of work it has made durable (a clip written, a
checkpoint saved, a trial recorded). Normally that does nothing. With ``AVEMOTION_HOLD_AT``
set to ``"<point>:<n>"``, the n-th time this process reaches ``<point>`` it writes the marker
file ``$AVEMOTION_HOLD_DIR/<point>.held`` (its pid) and waits there until
``$AVEMOTION_HOLD_DIR/<point>.release`` exists: a test waits on the file the job writes and
kills or interrupts it there, never racing the clock.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

HOLD_AT = "AVEMOTION_HOLD_AT"
HOLD_DIR = "AVEMOTION_HOLD_DIR"

_counts: Counter[str] = Counter()


def hold_spec() -> tuple[str, int] | None:
    """The ``(point, n)`` of ``AVEMOTION_HOLD_AT``, or None when unset; a malformed value
    is refused in one line naming the variable."""
    spec = os.environ.get(HOLD_AT, "").strip()
    if not spec:
        return None
    point, _, count = spec.rpartition(":")
    if not point or not count.isdigit() or int(count) < 1:
        raise ValueError(f"{HOLD_AT}: {spec!r} is not '<point>:<n>' with n >= 1")
    return point, int(count)


def reached(point: str) -> None:
    """Count one arrival at ``point``; hold here if ``AVEMOTION_HOLD_AT`` names this arrival."""
    spec = hold_spec()
    if spec is None or spec[0] != point:
        return
    _counts[point] += 1
    if _counts[point] != spec[1]:
        return
    folder = Path(os.environ.get(HOLD_DIR, "."))
    marker = folder / f"{point}.held"
    marker.with_suffix(".tmp").write_text(str(os.getpid()))
    marker.with_suffix(".tmp").replace(marker)  # whole, or absent
    release = folder / f"{point}.release"
    while not release.exists():
        time.sleep(0.01)
