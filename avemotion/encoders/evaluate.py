"""Whole-clip accuracy of an encoder on a corpus, with classes matched by name.

An encoder names its own classes (``class_names`` in its config); a corpus has its own. A
pretrained network brought in zero-shot (the FER2013 mini-Xception, say) names seven
expressions, and a corpus may spell them otherwise (MEAD: disgusted, surprised) or have one
the network cannot name (contempt). So classes are matched by name
(:func:`~avemotion.encoders.mini_xception.canonical_emotion`), and clips of a corpus class
the encoder cannot name are counted apart, not as errors.

Like extraction, every file under the corpus root is accounted for: scored, or skipped with
a one-line reason (left out by the listing, a speaker not selected, a class the encoder
cannot name, undecodable) in ``skipped``, with the counts in ``files``.

A clip's prediction is the argmax, over the classes the encoder can name, of its mean
posterior over steps (voiced steps when the encoder hears audio): the posteriors of the
LSTM when there is one, else of the fusion DNN, else of the single branch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from avemotion.encoders.bundle import Encoder, load_encoder
from avemotion.encoders.datasets import Item, list_corpus
from avemotion.encoders.extract import decode_clip
from avemotion.encoders.face import load_cascade
from avemotion.encoders.media import MediaError
from avemotion.encoders.mini_xception import canonical_emotion
from avemotion.encoders.steps import ClipSteps, StepConfig


def named_classes(encoder: Encoder) -> list[str]:
    """The encoder's classes it can actually name: all of them, except, while no stage has
    trained anything (``--epochs 0`` throughout), the classes its pretrained visual branch
    has no name for (``visual.unnamed_classes``)."""
    history = encoder.config.get("history", [])
    trained = any(int(h.get("config", {}).get("num_epochs", 1)) > 0 for h in history)
    unnamed = set((encoder.config.get("visual") or {}).get("unnamed_classes", []))
    return [c for c in encoder.class_names if trained or c not in unnamed]


def clip_posterior(encoder: Encoder, clip: ClipSteps) -> np.ndarray:
    """The clip's mean posterior over the encoder's classes ``[K]``."""
    with torch.no_grad():
        audio = encoder.audio_embeddings(clip.audio_rows()) if encoder.audio is not None else None
        visual = encoder.visual_embeddings(clip.crops) if encoder.visual is not None else None
        if encoder.temporal is not None:
            rows = encoder.level_features("temporal", audio, visual, clip.patches)
            posterior = rows[:, -encoder.n_classes :]
        else:
            joint = encoder.embeddings(audio, visual)
            if encoder.fusion is not None:
                logits = encoder.fusion(joint)
            elif encoder.audio is not None:
                logits = encoder.audio.head(joint)
            else:
                logits = encoder.visual.head(joint)  # type: ignore[union-attr]
            posterior = torch.softmax(logits, dim=-1)
    steps = clip.voiced if encoder.audio is not None and clip.voiced.any() else slice(None)
    return posterior.numpy()[steps].mean(axis=0)


@dataclass
class Evaluation:
    """Whole-clip results: correct counts per matched corpus class, the confusion matrix
    (rows: matched corpus classes, columns: the encoder's named classes), clips of
    unmatched classes, every file not scored with its reason (``skipped``, as extraction
    lists them) and the file counts (``files``: seen = kept + skipped)."""

    corpus_classes: list[str]
    encoder_classes: list[str]
    confusion: np.ndarray
    unmatched: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    files: dict[str, int] = field(default_factory=dict)

    @property
    def n_clips(self) -> int:
        return int(self.confusion.sum())

    @property
    def correct(self) -> int:
        return int(
            sum(self.confusion[r, self._column(c)] for r, c in enumerate(self.corpus_classes))
        )

    @property
    def accuracy(self) -> float:
        return self.correct / self.n_clips if self.n_clips else 0.0

    def _column(self, corpus_class: str) -> int:
        key = canonical_emotion(corpus_class)
        return next(j for j, c in enumerate(self.encoder_classes) if canonical_emotion(c) == key)

    def per_class_recall(self) -> dict[str, float]:
        recall = {}
        for row, name in enumerate(self.corpus_classes):
            total = self.confusion[row].sum()
            if total:
                recall[name] = round(float(self.confusion[row, self._column(name)] / total), 4)
        return recall

    def summary(self) -> dict[str, Any]:
        """The JSON line of ``avemotion evaluate-encoder``."""
        return {
            "accuracy": round(self.accuracy, 4),
            "n_clips": self.n_clips,
            "n_correct": self.correct,
            "per_class_recall": self.per_class_recall(),
            "confusion": {
                "rows": self.corpus_classes,
                "columns": self.encoder_classes,
                "counts": self.confusion.astype(int).tolist(),
            },
            "unmatched_clips": self.unmatched,
            "files": self.files,
            "n_skipped": len(self.skipped),
            "skipped": self.skipped,
        }


def _decode(encoder: Encoder, item: Item, cascade: object | None) -> ClipSteps:
    steps = StepConfig(
        encoder.steps_per_second,
        encoder.visual.input_size if encoder.visual is not None else 112,
    )
    return decode_clip(encoder, item, steps, cascade)


UNNAMED = "the encoder cannot name this class (not scored)"
"""The reason given for the files of a clip whose class the encoder cannot name."""


def evaluate_encoder(
    enc_dir: str | os.PathLike[str],
    dataset: str,
    root: str | os.PathLike[str],
    speakers: list[str] | None = None,
    device: str = "cpu",
    allow_outside_root: bool = False,
    progress: bool = True,
) -> Evaluation:
    """Decode every clip of the corpus (of ``speakers``) and score the encoder on it;
    ``progress`` shows a bar on stderr."""
    encoder = load_encoder(enc_dir, device)
    media = {"audio": "audio", "visual": "visual", "audio-visual": "fusion"}[encoder.modality]
    corpus = list_corpus(dataset, root, media, allow_outside_root)
    if speakers:
        corpus.select(speakers, None, "--speakers")
    named = named_classes(encoder)
    keys = {canonical_emotion(c): i for i, c in enumerate(encoder.class_names) if c in named}
    columns = [encoder.class_names.index(c) for c in named]
    matched = [c for c in corpus.classes if canonical_emotion(c) in keys]
    result = Evaluation(matched, named, np.zeros((len(matched), len(named)), dtype=np.int64))
    cascade = load_cascade() if encoder.visual is not None else None
    failures: list[str] = []
    items = list(corpus.items)  # corpus.drop edits corpus.items
    # leave=False: the bar is cleared, so a failure stays one line on stderr
    bar = tqdm(items, desc=f"evaluate {dataset}", unit="clip", leave=False, disable=not progress)
    for item in bar:
        if canonical_emotion(item.label) not in keys:
            result.unmatched[item.label] = result.unmatched.get(item.label, 0) + 1
            corpus.drop(item, f"{item.path}: class {item.label}: {UNNAMED}")
            continue
        try:
            posterior = clip_posterior(encoder, _decode(encoder, item, cascade))
        except MediaError as error:
            failures.append(str(error))
            corpus.drop(item, str(error))
            continue
        predicted = int(np.argmax(posterior[columns]))
        result.confusion[matched.index(item.label), predicted] += 1
    result.skipped, result.files = corpus.account.lines(), corpus.account.counts()
    if result.n_clips == 0 and failures:
        raise MediaError(f"{root}: no clip could be scored ({failures[0]})")
    return result
