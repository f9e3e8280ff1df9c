"""The temporal stage's fit, and its cross-fitted (out-of-fold) training inputs.

On its own training speakers a window model (a branch, or the fusion DNN) is far more sure
of itself than on new speakers, so an LSTM trained on its outputs there learns to trust
them too much. With ``cross_fit`` folds, the training speakers are split into folds; for each
fold a fresh copy of the part below the LSTM is trained (with the settings of its own
training stage) on the other folds, and the LSTM's training sequences of that fold's clips
are computed with it. The held-out speakers and the stored encoder keep the part trained
on every training speaker, whose outputs on new voices resemble these out-of-fold ones.

:func:`fit_temporal` lives here rather than in :mod:`avemotion.encoders.loops` so that the
imports run one way (train → crossfit → loops → train_config), with no cycle.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from avemotion.encoders.bundle import Encoder, build_nets
from avemotion.encoders.loops import (
    ClipBatch,
    augmented_sequences,
    evaluate_sequences,
    fit_sequences,
    fit_windows,
    temporal_inputs,
)
from avemotion.encoders.models import TemporalNet
from avemotion.encoders.published import fold_copy
from avemotion.encoders.train_checkpoint import EpochCheckpoint
from avemotion.encoders.train_config import TrainConfig
from avemotion.speakers import speaker_folds


def window_part(encoder: Encoder) -> str:
    """The part the LSTM sits on: ``fusion`` when fused, else the single branch."""
    if encoder.fusion is not None:
        return "fusion"
    return "audio" if encoder.audio is not None else "visual"


def part_config(encoder: Encoder, part: str, temporal: TrainConfig) -> TrainConfig:
    """The training settings of ``part``'s last stage in the encoder's history (defaults
    when it came from a weights file), with the temporal stage's seed and threads."""
    known = {f.name for f in fields(TrainConfig)}
    stages = [h for h in encoder.config.get("history", []) if h.get("stage") == part]
    saved: dict[str, Any] = stages[-1].get("config", {}) if stages else {}
    kept = {k: v for k, v in saved.items() if k in known and k not in ("init", "out", "root")}
    # the published file the part started from (see fold_copy), never an encoder of ours
    weights = (encoder.config.get(part) or {}).get("weights")
    start = {"init": [str(weights)]} if weights else {}
    return TrainConfig(
        **{**kept, **start, "modality": part, "seed": temporal.seed, "threads": temporal.threads}
    )


def cross_fit_folds(speakers: list[str], folds: int) -> list[list[str]]:
    """:func:`avemotion.speakers.speaker_folds`, refusing a count the speakers cannot fill."""
    names = sorted(set(speakers))
    if folds < 2 or len(names) < folds:
        raise ValueError(
            f"cross_fit: {folds} folds need at least 2 and at most {len(names)} (the training speakers)"
        )
    return speaker_folds(names, folds)


def _subset(batch: ClipBatch, index: list[int], keep_embeddings: bool) -> ClipBatch:
    embeddings = (
        [batch.embeddings[i] for i in index]
        if keep_embeddings and batch.embeddings is not None
        else None
    )
    return ClipBatch(
        [batch.clips[i] for i in index],
        batch.labels[index],
        [batch.voiced[i] for i in index],
        embeddings,
    )


def out_of_fold_sequences(
    batch: ClipBatch, encoder: Encoder, config: TrainConfig, copies: int
) -> list[torch.Tensor]:
    """The LSTM's training sequences (each clip, then ``copies`` augmented views of every
    clip, in the order of :func:`fit_temporal`), each computed by a
    window model that did not see the clip's speaker."""
    part = window_part(encoder)
    if part == "fusion":
        batch.ensure_embeddings(encoder)  # frozen branches: shared by every fold
    folds = cross_fit_folds([c.item.speaker for c in batch.clips], config.cross_fit)
    n = len(batch.clips)
    base: list[torch.Tensor | None] = [None] * n
    views: list[torch.Tensor | None] = [None] * (n * copies)
    settings = part_config(encoder, part, config)
    fresh_config = {k: v for k, v in encoder.config.items() if k != "temporal"}
    for f, fold in enumerate(tqdm(folds, desc="cross-fit", unit="fold", leave=False)):
        inside = [i for i, c in enumerate(batch.clips) if c.item.speaker in fold]
        outside = [i for i in range(n) if i not in set(inside)]
        torch.manual_seed(config.seed + 1000 + f)
        section = encoder.config.get(part) or {}
        net = fold_copy(section, part, encoder.class_names)
        if net is None:  # a part trained from scratch: a fresh one
            net = build_nets(fresh_config)[part]
        settings.seed = config.seed + 1000 + f
        fit_windows(net, part, _subset(batch, outside, part == "fusion"), encoder, settings)
        nets = {p: getattr(encoder, p) for p in ("audio", "visual", "fusion", "temporal")}
        fold_encoder = Encoder(encoder.config, {**{k: v for k, v in nets.items() if v}, part: net})
        held = _subset(batch, inside, part == "fusion")
        for i, sequence in zip(inside, temporal_inputs(held, fold_encoder)):
            base[i] = sequence
        extra = augmented_sequences(held, fold_encoder, copies, config.seed + f)
        for c in range(copies):
            for j, i in enumerate(inside):
                views[c * n + i] = extra[c * len(inside) + j]
    assert all(x is not None for x in base) and all(x is not None for x in views)
    return [*base, *views]  # type: ignore[list-item]


def fit_temporal(
    net: TemporalNet,
    batches: dict[str, ClipBatch],
    encoder: Encoder,
    config: TrainConfig,
    checkpoint: EpochCheckpoint | None = None,
) -> dict[str, Any]:
    """Train the LSTM over frozen per-step features to name the clip at every step (from
    ``checkpoint`` on, when given); return its held-out metrics (empty without held-out
    clips)."""
    labels = batches["train"].labels
    # mel-warped copies re-embed warped log-mel patches: a Whisper branch reads no patch
    # (its encoder would have to run again on warped audio), so it trains on the clips only
    copies = config.temporal_copies if encoder.audio_reads_patches else 0
    if config.cross_fit >= 2:
        sequences = out_of_fold_sequences(batches["train"], encoder, config, copies)
    else:
        sequences = temporal_inputs(batches["train"], encoder)
        if copies:
            sequences += augmented_sequences(batches["train"], encoder, copies, config.seed)
    labels = np.tile(labels, copies + 1)
    fit_sequences(net, sequences, labels, config, checkpoint)
    if "test" not in batches:
        return {}
    return evaluate_sequences(
        net, temporal_inputs(batches["test"], encoder), batches["test"].labels
    )


__all__ = ["fit_temporal", "out_of_fold_sequences", "cross_fit_folds", "window_part", "part_config"]
