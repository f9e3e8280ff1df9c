"""Folds of the training clips: the one rule by which cross-fitting and posterior selection
hold clips out.

Held-out scores should say how a *new speaker* fares, so clips are held out by speaker
whenever the training selection allows it (:func:`~avemotion.speakers.speaker_folds`).
:func:`make_folds` decides, from the selection alone:

- ``n_folds == 1``: no folds (``"none"``): posteriors are in-sample;
- at least 2 speakers and at least ``n_folds`` of them (or ``n_folds == 0``): speaker folds;
- 2 or 3 speakers, fewer than ``n_folds``: one speaker fold per speaker when every speaker
  fold leaves clips of every class in the other folds (each fold's model then knows every
  class), else ``n_folds`` clip folds (unless a class has 1 clip, which clip folds cannot
  hold out either: then speaker folds, and the printed reason says so);
- fewer than 2 speakers: ``n_folds`` (``0``: :data:`CLIP_FOLDS`) stratified clip folds.

Clip folds are drawn with a seed (:func:`clip_folds`); their held-out scores are not
speaker-independent, and :meth:`Folds.line` says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from avemotion.speakers import speaker_folds
from avemotion.store import FeatureStore

CLIP_FOLDS = 4
"""Clip folds when ``n_folds`` is 0 (one per speaker) and the speakers are too few."""
FOLD_SEED = 0
"""Seed of the clip folds: fixed, so that every seed of an experiment (and the posterior
cache) shares one split of the training clips."""


@dataclass(frozen=True)
class Folds:
    """The folds a cross-fit used: ``kind`` (``"speaker"``, ``"clip"`` or ``"none"``), each
    fold's ``members`` (speaker names, or clip ids), and ``reason`` (why this kind)."""

    kind: str
    members: list[list[str]]
    reason: str = ""
    seed: int | None = None

    def __len__(self) -> int:
        return len(self.members)

    def held_out(self, store: FeatureStore) -> list[np.ndarray]:
        """Each fold's clips, as indices into ``store`` (in store order)."""
        keys = np.asarray(store.clip_ids if self.kind == "clip" else store.speakers)
        return [np.flatnonzero(np.isin(keys, group)) for group in self.members]

    def as_record(self) -> dict[str, Any]:
        """What ``rules.json`` and ``config.json`` record."""
        return {
            "kind": self.kind,
            "members": self.members,
            "reason": self.reason,
            "seed": self.seed,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Folds:
        return cls(record["kind"], record["members"], record.get("reason", ""), record.get("seed"))

    def line(self, n_speakers: int) -> str:
        """One line saying which folds the cross-fitting used, and what that means."""
        store = f"store has {n_speakers} speaker{'' if n_speakers == 1 else 's'}"
        if self.kind == "none":
            return f"{store}: cross-fitting off (1 fold); training posteriors are in-sample"
        if self.kind == "speaker":
            return f"{store}: cross-fitting on {len(self)} speaker folds ({self.reason})"
        why = f" ({self.reason})" if n_speakers >= 2 else ""  # one speaker: reason enough
        return (
            f"{store}: cross-fitting on {len(self)} stratified clip folds{why}; "
            "held-out scores are not speaker-independent"
        )


def make_folds(store: FeatureStore, n_folds: int, seed: int = FOLD_SEED) -> Folds:
    """The folds of ``store``'s clips for ``n_folds`` (0: one per speaker), by the rule of
    the module docstring."""
    if n_folds < 0:
        raise ValueError(f"folds: expected 0 (one per speaker) or a positive count, got {n_folds}")
    speakers = store.speaker_set
    if n_folds == 1:
        return Folds("none", [speakers], "1 fold asked")
    if len(speakers) >= 2 and (n_folds == 0 or len(speakers) >= n_folds):
        return Folds("speaker", speaker_folds(speakers, n_folds), "enough speakers")
    n_clip = n_folds or CLIP_FOLDS
    if len(speakers) < 2:
        return clip_folds(store, n_clip, seed, "fewer than 2 speakers")
    by_speaker = speaker_folds(speakers, 0)
    lacking = classes_left_out(store, Folds("speaker", by_speaker))
    if not lacking:
        reason = f"one per speaker: {len(speakers)} speakers, fewer than {n_folds} folds"
        return Folds("speaker", by_speaker, reason)
    reason = f"holding out speaker {lacking[0]} would leave class {lacking[1]!r} unseen"
    rare = rarest_class(store)
    if rare[1] < 2:  # clip folds cannot hold it out either: speaker folds, and say so
        reason += f", and class {rare[0]!r} has 1 clip, too few for clip folds"
        return Folds("speaker", by_speaker, reason)
    return clip_folds(store, n_clip, seed, reason)


def rarest_class(store: FeatureStore) -> tuple[str, int]:
    """The name and clip count of the class with the fewest clips in ``store``."""
    classes, counts = np.unique(np.asarray(store.labels), return_counts=True)
    return store.class_names[int(classes[counts.argmin()])], int(counts.min())


def classes_left_out(store: FeatureStore, folds: Folds) -> tuple[str, str] | None:
    """The first (fold's first member, class) such that holding that fold out leaves no
    clip of the class (present in ``store``) in the other folds; None when there is none."""
    labels = np.asarray(store.labels)
    present = np.unique(labels)
    for group, held in zip(folds.members, folds.held_out(store)):
        rest = np.setdiff1d(np.arange(store.n_clips), held)
        missing = np.setdiff1d(present, labels[rest])
        if len(missing):
            return group[0], store.class_names[int(missing[0])]
    return None


def clip_folds(store: FeatureStore, n_folds: int, seed: int = FOLD_SEED, reason: str = "") -> Folds:
    """``n_folds`` stratified clip folds, drawn with ``seed``: class by class (in label
    order), the class's clips (in store order) are shuffled by one generator and dealt to
    the folds in turn, the count carried from class to class so that fold sizes differ by
    at most one. Refuses a class of fewer than 2 clips (held out, it would be unseen)."""
    labels = np.asarray(store.labels)
    name, fewest = rarest_class(store)
    if fewest < 2:
        raise ValueError(
            f"{store.path}: labels: class {name!r} has {fewest} clip in the training "
            "selection; cross-fitting on clip folds needs at least 2 clips of every class"
        )
    n = min(n_folds, store.n_clips)
    rng = np.random.default_rng(seed)
    fold_of = np.empty(store.n_clips, np.int64)
    dealt = 0
    for k in np.unique(labels):
        clips = np.flatnonzero(labels == k)
        clips = clips[rng.permutation(len(clips))]
        fold_of[clips] = (dealt + np.arange(len(clips))) % n
        dealt += len(clips)
    ids = np.asarray(store.clip_ids)
    members = [ids[fold_of == f].tolist() for f in range(n)]
    return Folds("clip", members, reason, seed)
