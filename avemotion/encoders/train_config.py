"""The settings of one encoder training stage, shared by the stage runner
(:mod:`avemotion.encoders.train`), its optimisation loops (:mod:`avemotion.encoders.loops`)
and the cross-fitting of the temporal stage (:mod:`avemotion.encoders.crossfit`).

It lives on its own so that those three import it without importing each other.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from avemotion.store import STEPS_PER_SECOND

MODALITIES = ("audio", "visual", "fusion", "temporal")
PARAMS_KEYS = (
    "num_epochs",
    "batch_size",
    "learning_rate",
    "decay_step",
    "decay_rate",
    "modality",
    "speaker",
)


@dataclass
class TrainConfig:
    """One training stage (``avemotion train-encoder``)."""

    dataset: str = "ravdess"
    """Corpus adapter name (see ``avemotion.encoders.datasets.ADAPTERS``) or ``csv``."""
    root: str = ""
    """Corpus folder (or CSV file for ``csv``)."""
    modality: str = "audio"
    """Part to train: ``audio``, ``visual``, ``fusion`` or ``temporal``."""
    out: str = ""
    """Encoder directory to write."""
    init: list[str] = field(default_factory=list)
    """Encoder directories and/or branch weights files to start from (merged in order)."""
    speaker: list[str] = field(default_factory=list)
    """Held-out speakers (the official ``params.json`` key); evaluated, never trained on."""
    train_speakers: list[str] | None = None
    """Speakers to train on (default: every speaker not held out)."""
    num_epochs: int = 15
    """Passes over the training windows (clips for ``temporal``); 0 trains nothing and
    evaluates the starting weights (a zero-shot encoder from a pretrained branch)."""
    batch_size: int = 128
    """Windows (clips for ``temporal``) per gradient step."""
    learning_rate: float = 3e-3
    """Peak learning rate of Adam(W)."""
    decay_step: int = 0
    """StepLR period in epochs; 0 uses a one-cycle schedule instead."""
    decay_rate: float = 0.1
    """StepLR factor."""
    window_fraction: float = 0.3
    """Fraction of the (90 %-overlapping) training windows drawn per epoch."""
    audio_variant: str = "small"
    """``small`` (CPU-sized) or ``vggish``."""
    audio_members: int = 1
    """Audio branch as an ensemble of this many independently initialised members (each
    with its own head and augmentation draws): the embedding concatenates theirs (128 ×
    members values), the posteriors are their mean log-posterior."""
    visual_variant: str = "small"
    """``small`` (CPU-sized, 112 px), ``mobilenet_v2`` (224 px) or ``mini-xception`` (the
    FER2013 network, 64 px grey; starts from its Keras HDF5 file given in ``init``)."""
    fine_tune: bool | None = None
    """Visual branch: train the backbone too (``True``) or only the head (``False``);
    ``None`` keeps the branch's own setting (the mini-Xception is frozen by default)."""
    device: str = "cpu"
    """torch device the networks run on (``avemotion.device.resolve_device`` resolves the
    CLI's ``auto|cpu|cuda``); inputs and outputs stay on the CPU."""
    temporal_hidden: int = 128
    """LSTM hidden size."""
    temporal_copies: int = 2
    """Extra mel-warped views of each training clip for the LSTM (audio encoders only)."""
    temporal_input: str = "embedding"
    """What the LSTM reads per step, ``+``-joined: ``embedding`` (fusion hidden layer or
    branch embedding), ``posteriors`` (class log-posteriors of that part), ``statistics``
    (per-band mean and std of the step's log-mel patch; audio only)."""
    temporal_late_weight: float = 0.0
    """Temporal stage: weigh step ``t`` of a ``T``-step clip by ``((t + 1) / T) ** power`` in
    the loss (0: every step alike; larger: toward the clip's end, where the whole-clip answer
    is read)."""
    cross_fit: int = 0
    """Temporal stage: with >= 2, train the LSTM on out-of-fold features (the part below it
    retrained on the other folds of training speakers; ``avemotion.encoders.crossfit``)."""
    steps_per_second: float = STEPS_PER_SECOND
    """Time base of the steps."""
    seed: int = 0
    """Seed of initialisation, sampling and augmentation."""
    threads: int = 1
    """torch threads (1 is fastest for these small nets on 2 busy cores)."""
    allow_outside_root: bool = False
    """Let a CSV's paths leave the dataset root."""

    def __post_init__(self) -> None:
        for name in ("num_epochs", "batch_size", "threads", "temporal_hidden", "audio_members"):
            value = getattr(self, name)
            least = 0 if name == "num_epochs" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                kind = "a non-negative" if least == 0 else "a positive"
                raise ValueError(f"{name}: expected {kind} integer, got {value!r}")
        if self.visual_variant == "mini-xception" and self.modality == "visual" and not self.init:
            raise ValueError(
                "init: the mini-xception visual variant starts from the FER2013 weights file "
                "(emotion_model.hdf5); pass it with --init (see docs/visual.md)"
            )
        if not 0.0 < float(self.window_fraction) <= 1.0:
            raise ValueError(
                f"window_fraction: expected a value in (0, 1], got {self.window_fraction!r}"
            )

    @classmethod
    def from_params_json(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        """Read the official code's ``params.json`` (``num_epochs``, ``batch_size``,
        ``learning_rate``, ``decay_step``, ``decay_rate``, ``modality``, ``speaker``)."""
        path = Path(path)
        try:
            params = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: unreadable params.json ({error})") from None
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"{path}: unknown key(s) {unknown}; known: {list(PARAMS_KEYS)}")
        if "speaker" in params and not isinstance(params["speaker"], list):
            params["speaker"] = [str(params["speaker"])]
        return cls(**{**params, **{k: v for k, v in overrides.items() if v is not None}})
