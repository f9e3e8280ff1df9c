"""Optimisation loops and held-out metrics shared by the training stages.

Window stages (audio, visual, fusion) classify single steps with the clip's label; the
whole-clip prediction averages log-posteriors over the clip's voiced steps. The temporal
stage trains the LSTM to name the clip's emotion at every step; its whole-clip prediction is
the posterior at the last step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pad_sequence
from tqdm.auto import tqdm

from avemotion.encoders.bundle import Encoder
from avemotion.encoders.models import AudioNet, TemporalNet
from avemotion.encoders.train_checkpoint import EpochCheckpoint
from avemotion.encoders.train_config import TrainConfig

EVAL_BATCH = 256


@dataclass
class ClipBatch:
    """The clips of one split, as tensors: per-clip inputs, voiced masks, labels."""

    clips: list[Any]
    labels: np.ndarray
    voiced: list[np.ndarray]
    embeddings: list[torch.Tensor] | None = None
    """Frozen branch embeddings per clip (visual ⊕ audio), for the fusion and temporal stages."""

    @classmethod
    def build(cls, clips: list[Any], encoder: Encoder, class_names: tuple[str, ...]) -> ClipBatch:
        labels = np.array([class_names.index(c.item.label) for c in clips], dtype=np.int64)
        return cls(clips, labels, [c.voiced for c in clips])

    def ensure_embeddings(self, encoder: Encoder) -> list[torch.Tensor]:
        """Compute (once) each clip's frozen branch embeddings."""
        if self.embeddings is None:
            self.embeddings = []
            for clip in tqdm(self.clips, desc="embed", unit="clip", leave=False):
                audio = (
                    encoder.audio_embeddings(clip.audio_rows())
                    if encoder.audio is not None
                    else None
                )
                visual = (
                    encoder.visual_embeddings(clip.crops) if encoder.visual is not None else None
                )
                self.embeddings.append(encoder.embeddings(audio, visual))
        return self.embeddings


def _inputs(modality: str, batch: ClipBatch, pairs: np.ndarray, encoder: Encoder) -> torch.Tensor:
    if modality == "audio":
        return torch.stack([batch.clips[c].audio_rows(s) for c, s in pairs])
    if modality == "visual":
        crops = [batch.clips[c].crops[s] for c, s in pairs]
        return torch.as_tensor(np.stack(crops))
    embeddings = batch.ensure_embeddings(encoder)
    return torch.stack([embeddings[c][s] for c, s in pairs])


def _window_pairs(batch: ClipBatch) -> np.ndarray:
    return np.array(
        [(c, s) for c, voiced in enumerate(batch.voiced) for s in np.flatnonzero(voiced)],
        dtype=np.int64,
    )


def warp_mel(patches: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Vocal-tract-length-style warp of log-mel patches ``[B, T, 64]``: band ``f`` takes the
    value at ``alpha · f`` (linear interpolation, clamped), one factor per patch ``[B]``."""
    bands = patches.shape[2]
    source = (torch.arange(bands, dtype=torch.float32)[None, :] * alpha[:, None]).clamp(
        0, bands - 1
    )
    low = source.floor().long()
    high = (low + 1).clamp(max=bands - 1)
    weight = (source - low.float())[:, None, :]
    index = (
        low[:, None, :].expand(-1, patches.shape[1], -1),
        high[:, None, :].expand(-1, patches.shape[1], -1),
    )
    return (
        torch.gather(patches, 2, index[0]) * (1 - weight)
        + torch.gather(patches, 2, index[1]) * weight
    )


WARP_RANGE = (0.85, 1.15)
"""Range of the mel warp factor: a stand-in for unseen speakers' vocal tracts."""
GAIN_RANGE = 0.7
"""Largest random level shift in log-mel units (about ±6 dB)."""


def speaker_augment(
    patches: torch.Tensor, rng: np.random.Generator, per_patch: bool = True
) -> torch.Tensor:
    """Random mel warp and level shift, per patch (or one draw for a whole clip)."""
    count = len(patches) if per_patch else 1
    alpha = torch.from_numpy(rng.uniform(*WARP_RANGE, size=count)).float().expand(len(patches))
    gain = (
        torch.from_numpy(rng.uniform(-GAIN_RANGE, GAIN_RANGE, size=count))
        .float()
        .expand(len(patches))
    )
    return warp_mel(patches, alpha) + gain[:, None, None]


def _augment(
    modality: str, x: torch.Tensor, rng: np.random.Generator, net: nn.Module | None = None
) -> torch.Tensor:
    """Augmentation: for audio a random mel-band mask, mel warp and level shift (speaker
    variety); for faces a random horizontal flip. A net with its own ``augment`` (the
    Whisper branch, whose input is not a log-mel patch) augments its input itself."""
    if net is not None and hasattr(net, "augment"):
        return net.augment(x, rng)
    if modality == "audio":
        x = x.clone()
        width = int(rng.integers(0, 9))
        start = int(rng.integers(0, x.shape[2] - width + 1))
        x[:, :, start : start + width] = x.mean()
        x = speaker_augment(x, rng)
    elif modality == "visual" and x.ndim == 4 and rng.random() < 0.5:
        x = x.flip(2)
    return x


def _optimiser(
    params: list[nn.Parameter], config: TrainConfig, steps_per_epoch: int
) -> tuple[torch.optim.Optimizer, Any, bool]:
    optimiser = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=1e-3)
    if config.decay_step > 0:
        return (
            optimiser,
            torch.optim.lr_scheduler.StepLR(optimiser, config.decay_step, config.decay_rate),
            False,
        )
    total = max(1, config.num_epochs * steps_per_epoch)
    return (
        optimiser,
        torch.optim.lr_scheduler.OneCycleLR(optimiser, config.learning_rate, total_steps=total),
        True,
    )


def fit_windows(
    net: nn.Module,
    modality: str,
    batch: ClipBatch,
    encoder: Encoder,
    config: TrainConfig,
    checkpoint: EpochCheckpoint | None = None,
) -> None:
    """Train ``net`` (a branch or the fusion DNN) on single steps labelled with their clip;
    with ``checkpoint``, resume after its last epoch and save after every epoch."""
    rng = np.random.default_rng(config.seed)
    pairs = _window_pairs(batch)
    per_epoch = max(1, int(len(pairs) * config.window_fraction))
    steps = (per_epoch + config.batch_size - 1) // config.batch_size
    if modality == "fusion":
        batch.ensure_embeddings(encoder)
        for part in (encoder.audio, encoder.visual):
            if part is not None:
                part.eval()
    optimiser, schedule, per_step = _optimiser(
        [p for p in net.parameters() if p.requires_grad], config, steps
    )
    labels = torch.as_tensor(batch.labels)
    done = checkpoint.restore(net, optimiser, schedule, rng) if checkpoint else 0
    for epoch in tqdm(
        range(done, config.num_epochs), desc=f"train {modality}", unit="epoch", leave=False
    ):
        net.train()
        chosen = pairs[rng.permutation(len(pairs))[:per_epoch]]
        for start in range(0, len(chosen), config.batch_size):
            part = chosen[start : start + config.batch_size]
            if len(part) < 2:  # batch norm needs two samples
                continue
            target = labels[part[:, 0]]
            raw = _inputs(modality, batch, part, encoder)
            if isinstance(net, AudioNet):  # each member on its own augmentation draw
                views = [_augment(modality, raw, rng) for _ in range(net.members)]
                loss = sum(
                    F.cross_entropy(logits, target, label_smoothing=0.1)
                    for logits in net.member_logits(views)
                )
            else:
                x = _augment(modality, raw, rng, net)
                loss = F.cross_entropy(net(x), target, label_smoothing=0.1)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if per_step:
                schedule.step()
        if not per_step:
            schedule.step()
        if checkpoint:
            checkpoint.save(epoch + 1, net, optimiser, schedule, rng)
    net.eval()


@torch.no_grad()
def window_log_probs(
    net: nn.Module, modality: str, batch: ClipBatch, encoder: Encoder
) -> tuple[np.ndarray, np.ndarray]:
    """Log-posteriors of every voiced step of every clip, and the clip index of each row."""
    net.eval()
    pairs = _window_pairs(batch)
    out = [
        torch.log_softmax(net(_inputs(modality, batch, pairs[i : i + EVAL_BATCH], encoder)), -1)
        for i in range(0, len(pairs), EVAL_BATCH)
    ]
    return torch.cat(out).numpy(), pairs[:, 0]


def _accuracy(predicted: np.ndarray, labels: np.ndarray, n_classes: int) -> dict[str, float]:
    correct = predicted == labels
    per_class = [correct[labels == k].mean() for k in range(n_classes) if (labels == k).any()]
    return {
        "accuracy": round(float(correct.mean()), 4),
        "unweighted_accuracy": round(float(np.mean(per_class)), 4),
    }


def evaluate_windows(
    net: nn.Module, modality: str, batch: ClipBatch, encoder: Encoder
) -> dict[str, Any]:
    """Per-window and whole-clip accuracy of a window classifier on ``batch``."""
    log_probs, clip_of = window_log_probs(net, modality, batch, encoder)
    k = log_probs.shape[1]
    window = _accuracy(log_probs.argmax(1), batch.labels[clip_of], k)
    clip_scores = np.stack([log_probs[clip_of == c].mean(0) for c in range(len(batch.clips))])
    clip = _accuracy(clip_scores.argmax(1), batch.labels, k)
    return {
        "per_window": window,
        "whole_clip": clip,
        "n_windows": int(len(clip_of)),
        "n_clips": len(batch.clips),
    }


def temporal_inputs(batch: ClipBatch, encoder: Encoder) -> list[torch.Tensor]:
    """Each clip's ``[T, D]`` LSTM input (:meth:`Encoder.step_features`)."""
    with torch.no_grad():
        return [
            encoder.step_features(*_split(encoder, e), clip.patches)
            for clip, e in zip(batch.clips, batch.ensure_embeddings(encoder))
        ]


def _split(
    encoder: Encoder, joint: torch.Tensor
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    if encoder.visual is not None and encoder.audio is not None:
        split = encoder.visual.dim  # visual first: 1280 (MobileNetV2) or 135 (mini-Xception)
        return joint[:, split:], joint[:, :split]
    return (joint, None) if encoder.audio is not None else (None, joint)


def augmented_sequences(
    batch: ClipBatch, encoder: Encoder, copies: int, seed: int
) -> list[torch.Tensor]:
    """``copies`` extra views of every training clip whose audio is warped and shifted as a
    whole (one draw per clip), so the LSTM also learns from features of "new" voices."""
    rng = np.random.default_rng(seed + 1)
    cached = batch.ensure_embeddings(encoder)
    views: list[torch.Tensor] = []
    with torch.no_grad():
        for _ in range(copies):
            for clip, joint in zip(batch.clips, cached):
                patches = speaker_augment(clip.patches, rng, per_patch=False)
                audio = encoder.audio_embeddings(patches)
                visual = _split(encoder, joint)[1]
                views.append(encoder.step_features(audio, visual, patches))
    return views


def step_weights(lengths: torch.Tensor, steps: int, power: float = 0.0) -> torch.Tensor:
    """Loss weight of every step ``[B, steps]``: ``((t + 1) / T_i) ** power`` inside each
    sequence of length ``T_i`` (0 beyond it), so ``power`` 0 weighs all steps alike and a
    larger power puts the weight on later steps, where the whole-clip answer is read."""
    position = torch.arange(steps, dtype=torch.float32)[None, :] + 1
    inside = position <= lengths[:, None]
    weight = (position / lengths[:, None].float()).clamp(max=1.0) ** power
    return weight * inside


def fit_sequences(
    net: TemporalNet,
    sequences: list[torch.Tensor],
    labels: np.ndarray,
    config: TrainConfig,
    checkpoint: EpochCheckpoint | None = None,
) -> None:
    """Train ``net`` on ``[T_i, D]`` sequences with the clip label as every step's target;
    with ``checkpoint``, resume after its last epoch and save after every epoch."""
    rng = np.random.default_rng(config.seed)
    steps = (len(sequences) + config.batch_size - 1) // config.batch_size
    optimiser, schedule, per_step = _optimiser(list(net.parameters()), config, steps)
    targets = torch.as_tensor(labels)
    done = checkpoint.restore(net, optimiser, schedule, rng) if checkpoint else 0
    epochs = range(done, config.num_epochs)
    for epoch in tqdm(epochs, desc="train temporal", unit="epoch", leave=False):
        net.train()
        order = rng.permutation(len(sequences))
        for start in range(0, len(order), config.batch_size):
            chosen = order[start : start + config.batch_size]
            x = pad_sequence([sequences[i] for i in chosen], batch_first=True)
            lengths = torch.tensor([len(sequences[i]) for i in chosen])
            mask = torch.arange(x.shape[1])[None, :] < lengths[:, None]
            logits, _, _ = net(x)
            per_step_loss = F.cross_entropy(
                logits.transpose(1, 2),
                targets[chosen][:, None].expand_as(mask),
                reduction="none",
                label_smoothing=0.1,
            )
            weight = step_weights(lengths, x.shape[1], config.temporal_late_weight)
            loss = (per_step_loss * weight).sum() / weight.sum()
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimiser.step()
            if per_step:
                schedule.step()
        if not per_step:
            schedule.step()
        if checkpoint:
            checkpoint.save(epoch + 1, net, optimiser, schedule, rng)
    net.eval()


@torch.no_grad()
def evaluate_sequences(
    net: TemporalNet, sequences: list[torch.Tensor], labels: np.ndarray
) -> dict[str, Any]:
    """Per-step accuracy, whole-clip (last-step) accuracy, and accuracy after 25/50/75 % of each clip."""
    net.eval()
    k = net.head.out_features
    step_pred: list[np.ndarray] = []
    step_label: list[np.ndarray] = []
    at: dict[float, list[int]] = {0.25: [], 0.5: [], 0.75: [], 1.0: []}
    mean_posterior: list[int] = []
    for seq, label in zip(sequences, labels):
        logits, _, _ = net(seq[None])
        predicted = logits[0].argmax(-1).numpy()
        mean_posterior.append(int(torch.softmax(logits[0], -1).mean(0).argmax()))
        step_pred.append(predicted)
        step_label.append(np.full(len(predicted), label))
        for fraction in at:
            at[fraction].append(int(predicted[max(0, int(np.ceil(fraction * len(predicted))) - 1)]))
    metrics: dict[str, Any] = {
        "per_window": _accuracy(np.concatenate(step_pred), np.concatenate(step_label), k)
    }
    metrics["whole_clip"] = _accuracy(np.array(at[1.0]), labels, k)
    metrics["whole_clip_mean_posterior"] = _accuracy(np.array(mean_posterior), labels, k)
    metrics["after_fraction"] = {
        str(f): _accuracy(np.array(p), labels, k)["accuracy"] for f, p in at.items()
    }
    metrics["n_clips"] = len(sequences)
    return metrics
