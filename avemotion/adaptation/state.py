"""A speaker's adaptation state in a file, and its use by the online recognizer.

The state is what :mod:`avemotion.adaptation.estimator` needs of a speaker's past:
the number of earlier utterances and the sums of their per-dimension step means and mean
squares. It lives in a small JSON file (``avemotion stream --speaker-state FILE``), created
when absent, updated after each finished utterance and written atomically (temporary file,
then ``os.replace``), so a crash never leaves half a state behind. A file that is not a
state, or was built under another transform (another reference, prior or dimension), is
refused with one line naming the file and the field.

:class:`SpeakerAdapter` applies the store-level transform step by step: during an
utterance every step row is normalised with the state as it was when the utterance
started (only earlier utterances count), and the utterance's raw rows are added to the
state when it ends. Fed the clips of a store in the same order, it gives the rows
:func:`~avemotion.adaptation.transform.adapt_store` writes.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avemotion.adaptation.estimator import normalise, normaliser
from avemotion.adaptation.transform import METHOD, AdaptationSpec
from avemotion.atomic import replace_atomic

FORMAT = "avemotion-speaker-state"
VERSION = 1


class SpeakerStateError(ValueError):
    """A speaker-state file is unreadable or belongs to another transform."""


class SpeakerState:
    """``n`` earlier utterances and the sums of their step means and mean squares."""

    def __init__(
        self,
        spec: AdaptationSpec,
        n: int = 0,
        sum_mean: Sequence[float] | np.ndarray | None = None,
        sum_square: Sequence[float] | np.ndarray | None = None,
    ) -> None:
        self.spec = spec
        self.n = int(n)
        zeros = np.zeros(spec.dim)
        self.sum_mean = zeros if sum_mean is None else np.asarray(sum_mean, np.float64)
        self.sum_square = zeros.copy() if sum_square is None else np.asarray(sum_square, np.float64)

    def normaliser(self) -> tuple[np.ndarray, np.ndarray]:
        """``(mu, var)`` for the speaker's next utterance."""
        return normaliser(
            self.spec.population, self.spec.prior, self.n, self.sum_mean, self.sum_square
        )

    def add(self, rows: np.ndarray) -> None:
        """Add one finished utterance's raw step rows (``[T, dim]``)."""
        x = np.asarray(rows, dtype=np.float64)
        self.n += 1
        self.sum_mean = self.sum_mean + x.mean(0)
        self.sum_square = self.sum_square + (x * x).mean(0)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "method": METHOD,
            "transform": self.spec.identity,
            "dim": self.spec.dim,
            "utterances": self.n,
            "sum_mean": [float(v) for v in self.sum_mean],
            "sum_square": [float(v) for v in self.sum_square],
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically: a temporary sibling, then ``os.replace``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with replace_atomic(path) as tmp, open(tmp, "w") as handle:
            json.dump(self.to_json(), handle)
            handle.flush()
            os.fsync(handle.fileno())

    @classmethod
    def load(cls, path: str | os.PathLike[str], spec: AdaptationSpec) -> SpeakerState:
        """Read a state file written under ``spec``; refuse anything else in one line."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise SpeakerStateError(
                f"{path}: not a readable speaker-state file ({error})"
            ) from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise SpeakerStateError(f"{path}: format: not an avemotion speaker-state file")
        expected = {
            "version": VERSION,
            "method": METHOD,
            "dim": spec.dim,
            "transform": spec.identity,
        }
        for field, value in expected.items():
            if data.get(field) != value:
                raise SpeakerStateError(
                    f"{path}: {field}: {data.get(field)!r} does not match this run's {value!r} "
                    "(a state of another speaker transform; use another file)"
                )
        n = data.get("utterances")
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise SpeakerStateError(f"{path}: utterances: expected a count >= 0, got {n!r}")
        sums = []
        for field in ("sum_mean", "sum_square"):
            values = data.get(field)
            if not isinstance(values, list) or len(values) != spec.dim:
                raise SpeakerStateError(f"{path}: {field}: expected a list of {spec.dim} numbers")
            if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
                raise SpeakerStateError(f"{path}: {field}: non-numeric or non-finite values")
            sums.append(values)
        if min(sums[1]) < 0 or (n == 0 and any(v != 0 for v in sums[0] + sums[1])):
            raise SpeakerStateError(f"{path}: sum_square: inconsistent with {n} utterances")
        return cls(spec, n, sums[0], sums[1])


class NoAdaptation:
    """The recognizer's speaker hook when no speaker state is kept: rows pass unchanged."""

    needs_every_step = False
    """Whether the hook needs every step of an utterance (encoding goes on after the answer)."""

    def begin(self) -> None:
        """Start an utterance (nothing to do)."""

    def step(self, row: np.ndarray) -> np.ndarray:
        return row

    def end(self) -> None:
        """End an utterance (nothing to do)."""

    def report(self) -> dict[str, Any]:
        return {}


class SpeakerAdapter(NoAdaptation):
    """The speaker hook of :class:`~avemotion.online.recognizer.OnlineRecognizer`.

    ``begin`` fixes the normaliser from the state (earlier utterances only), ``step``
    normalises one raw row and keeps it, ``end`` adds the utterance to the state and writes
    the file. ``earlier_utterances`` is what the state held when the utterance began.
    The state is built from every step of an utterance, as the store-level transform is, so
    the recognizer keeps encoding after its answer (the answer itself is unchanged).
    """

    needs_every_step = True

    def __init__(self, spec: AdaptationSpec, path: str | os.PathLike[str]) -> None:
        self.spec, self.path = spec, Path(path)
        self.state = (
            SpeakerState.load(self.path, spec) if self.path.exists() else SpeakerState(spec)
        )
        self.earlier_utterances = self.state.n
        self._rows: list[np.ndarray] = []
        self._mu, self._var = self.state.normaliser()

    @classmethod
    def for_store(cls, store: Any, path: str | os.PathLike[str]) -> SpeakerAdapter:
        """The adapter of a run trained on an adapted store (its ``meta.json`` holds the spec)."""
        return cls(AdaptationSpec.from_store(store), path)

    def begin(self) -> None:
        self._rows = []
        self.earlier_utterances = self.state.n
        self._mu, self._var = self.state.normaliser()

    def step(self, row: np.ndarray) -> np.ndarray:
        self._rows.append(np.asarray(row, dtype=np.float32))
        return normalise(row, self._mu, self._var)

    def end(self) -> None:
        if not self._rows:
            return
        self.state.add(np.stack(self._rows))
        self.state.save(self.path)
        self._rows = []

    def report(self) -> dict[str, Any]:
        return {
            "speaker_state": {
                "file": str(self.path),
                "earlier_utterances": self.earlier_utterances,
                "utterances_now": self.state.n,
            }
        }


def speaker_hook(store: Any, path: str | os.PathLike[str] | None) -> NoAdaptation:
    """The recognizer's hook for a run's training store: adapt with the state file at
    ``path``, or pass rows unchanged when ``path`` is None. A run trained on an adapted
    store needs the state: raw rows are not what it learnt on."""
    if path is None and store.meta.get("adaptation"):
        raise ValueError(
            f"{store.path}: adaptation: the run was trained on a speaker-adapted store; "
            "give a speaker state file (--speaker-state FILE, created if absent)"
        )
    return NoAdaptation() if path is None else SpeakerAdapter.for_store(store, path)
