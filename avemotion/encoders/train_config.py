"""The settings of one encoder training stage, shared by the stage runner
(:mod:`avemotion.encoders.train`), its optimisation loops (:mod:`avemotion.encoders.loops`)
and the cross-fitting of the temporal stage (:mod:`avemotion.encoders.crossfit`).

It lives on its own so that those three import it without importing each other. Besides the
settings it holds their allowed ranges (checked whatever the source: CLI, ``params.json`` or
code) and which settings each stage reads (:func:`check_stage_options`, for the CLI, which
alone knows what the user set).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from avemotion.encoders.bundle import TEMPORAL_INPUTS
from avemotion.encoders.models import AUDIO_VARIANTS, VISUAL_VARIANTS
from avemotion.encoders.published import file_variant
from avemotion.encoders.whisper_branch import WHISPER_MODELS
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


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


INTEGER_FLOORS = {
    "num_epochs": 0,  # 0 evaluates the starting weights (a zero-shot encoder)
    "batch_size": 1,
    "decay_step": 0,  # 0 selects the one-cycle schedule
    "audio_members": 1,
    "temporal_hidden": 1,
    "temporal_copies": 0,
    "seed": 0,  # numpy's generators refuse negative seeds
    "threads": 1,
}
"""The least value of each integer setting."""

REAL_RANGES: dict[str, tuple[str, Callable[[float], bool]]] = {
    "learning_rate": ("a number > 0", lambda x: 0 < x < math.inf),
    "decay_rate": ("a value in (0, 1]", lambda x: 0 < x <= 1),  # StepLR's factor
    "window_fraction": ("a value in (0, 1]", lambda x: 0 < x <= 1),
    "temporal_late_weight": ("a number >= 0", lambda x: 0 <= x < math.inf),
    "steps_per_second": ("a number > 0", lambda x: 0 < x < math.inf),
}
"""Each real-valued setting's range, as printed and as tested (NaN fails every test)."""

CHOICES = {
    "modality": MODALITIES,
    "audio_variant": AUDIO_VARIANTS + tuple(WHISPER_MODELS),
    "visual_variant": VISUAL_VARIANTS,
}


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
    """StepLR factor, in (0, 1]; read only with ``decay_step`` > 0."""
    window_fraction: float = 0.3
    """Fraction of the (90 %-overlapping) training windows drawn per epoch, in (0, 1]
    (window stages: the temporal stage trains on whole clips)."""
    audio_variant: str = "small"
    """``small`` (CPU-sized), ``vggish``, or a frozen pretrained Whisper encoder with a
    trained head (``whisper-base``, ``whisper-tiny-en``; ``init`` may name its weights:
    a faster-whisper folder or an OpenAI checkpoint; docs/whisper-branch.md)."""
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
        self._check_numbers()
        self._check_choices()

    def _check_numbers(self) -> None:
        for name, least in INTEGER_FLOORS.items():
            value = getattr(self, name)
            if not _is_integer(value) or value < least:
                kind = "a non-negative" if least == 0 else "a positive"
                raise ValueError(f"{name}: expected {kind} integer, got {value!r}")
        for name, (allowed, holds) in REAL_RANGES.items():
            value = getattr(self, name)
            if not _is_number(value) or not holds(value):
                raise ValueError(f"{name}: expected {allowed}, got {value!r}")
        if not _is_integer(self.cross_fit) or self.cross_fit < 0 or self.cross_fit == 1:
            raise ValueError(  # one fold would leave no other fold to train the part below on
                f"cross_fit: expected 0 (off) or an integer >= 2 (speaker folds), got {self.cross_fit!r}"
            )

    def _check_choices(self) -> None:
        for name, choices in CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(
                    f"{name}: expected one of {list(choices)}, got {getattr(self, name)!r}"
                )
        parts = str(self.temporal_input).split("+")
        if (
            not isinstance(self.temporal_input, str)
            or len(set(parts)) < len(parts)
            or any(p not in TEMPORAL_INPUTS for p in parts)
        ):
            raise ValueError(
                f"temporal_input: expected '+'-joined parts of {list(TEMPORAL_INPUTS)}, got {self.temporal_input!r}"
            )
        if self.audio_variant in WHISPER_MODELS and self.audio_members > 1:
            raise ValueError(  # one frozen encoder: members would differ only by their heads
                f"audio_members: the {self.audio_variant} branch has one member, got {self.audio_members}"
            )
        if self.fine_tune is not None and not isinstance(self.fine_tune, bool):
            raise ValueError(f"fine_tune: expected true, false or null, got {self.fine_tune!r}")
        if self.visual_variant == "mini-xception" and self.modality == "visual" and not self.init:
            raise ValueError(
                "init: the mini-xception visual variant starts from the FER2013 weights file "
                "(emotion_model.hdf5); pass it with --init (see docs/visual.md)"
            )

    @classmethod
    def from_params_json(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        """Read the official code's ``params.json`` (``num_epochs``, ``batch_size``,
        ``learning_rate``, ``decay_step``, ``decay_rate``, ``modality``, ``speaker``)."""
        params = read_params_json(path)
        return cls(**{**params, **{k: v for k, v in overrides.items() if v is not None}})


def read_params_json(path: str | Path) -> dict[str, Any]:
    """The settings of a ``params.json`` (any :class:`TrainConfig` field; the official code's
    keys are :data:`PARAMS_KEYS`), ``speaker`` as a list."""
    path = Path(path)
    try:
        params = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: unreadable params.json ({error})") from None
    if not isinstance(params, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(params).__name__}")
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; known: {list(PARAMS_KEYS)}")
    if "speaker" in params and not isinstance(params["speaker"], list):
        params["speaker"] = [str(params["speaker"])]
    return params


# ------------------------------------------------------------------ what each stage reads
SHARED_OPTIONS = (
    "dataset",
    "root",
    "modality",
    "out",
    "init",
    "speaker",
    "train_speakers",
    "num_epochs",
    "batch_size",
    "learning_rate",
    "decay_step",
    "decay_rate",  # only with decay_step > 0: see check_stage_options
    "device",
    "steps_per_second",
    "seed",
    "threads",
    "allow_outside_root",
)
"""Settings every stage reads."""

STAGE_OPTIONS = {
    "audio": ("window_fraction", "audio_variant", "audio_members"),
    "visual": ("window_fraction", "visual_variant", "fine_tune"),
    "fusion": ("window_fraction",),
    # the temporal stage trains on whole clips (no window_fraction); its cross-fitting
    # retrains the part below with that part's own saved stage settings
    "temporal": (
        "temporal_hidden",
        "temporal_copies",
        "temporal_input",
        "temporal_late_weight",
        "cross_fit",
        "fine_tune",  # only with cross_fit over a visual branch alone: see _check_temporal
    ),
}
"""Settings read by some stages only (``avemotion.encoders.train``, ``loops``, ``crossfit``)."""

FIXED_BY_INIT = {
    "audio_variant": ("audio", "variant", "small"),
    "audio_members": ("audio", "members", 1),
    "visual_variant": ("visual", "variant", "small"),
}
"""Settings of a branch stage that only a fresh branch reads: ``setting: (part, key of
its config section, default)``. Starting from an ``init`` branch, the branch's own value
holds."""

FLAGS = {"num_epochs": "--epochs", "learning_rate": "--lr", "speaker": "--heldout"}
"""``train-encoder`` flags not spelt as their setting (``decay_rate``: ``--decay-rate``)."""


def option_flag(name: str) -> str:
    """The ``train-encoder`` flag that sets :class:`TrainConfig` field ``name``."""
    return FLAGS.get(name, "--" + name.replace("_", "-"))


def check_stage_options(config: TrainConfig, given: Mapping[str, str]) -> None:
    """Refuse, in one line, a setting the user gave that ``config``'s stage would ignore.

    ``given`` maps each setting the user set to how they spelt it (a flag, or a
    ``params.json`` key): a default is nobody's choice, so only the caller, who knows what
    the user wrote, can tell them apart. Raises ``ValueError`` naming that spelling.
    """
    stage = config.modality
    for name, label in given.items():
        if name not in SHARED_OPTIONS and name not in STAGE_OPTIONS[stage]:
            readers = ", ".join(s for s, names in STAGE_OPTIONS.items() if name in names)
            raise ValueError(f"{label}: not read by the {stage} stage (only by {readers})")
    # a params.json in the official code's format carries decay_rate whatever decay_step is
    if given.get("decay_rate", "").startswith("--") and config.decay_step == 0:
        raise ValueError(
            f"{given['decay_rate']}: not read while decay_step is 0 (the one-cycle schedule); "
            "it is the StepLR factor of --decay-step N"
        )
    parts = init_parts(config)  # None: an --init the stage itself will report
    if parts is not None:
        _check_fixed_by_init(config, given, parts)
    if stage == "temporal":
        _check_temporal(config, given, parts)


def _check_fixed_by_init(
    config: TrainConfig, given: Mapping[str, str], parts: dict[str, tuple[str, dict]]
) -> None:
    """A branch setting that contradicts the ``init`` branch the stage starts from (which
    the stage keeps: an equal value is harmless)."""
    for name, (part, key, default) in FIXED_BY_INIT.items():
        if name in given and part == config.modality and part in parts:
            source, section = parts[part]
            fixed = section.get(key, default)
            if fixed is not None and fixed != getattr(config, name):
                raise ValueError(
                    f"{given[name]}: {getattr(config, name)!r} conflicts with --init {source}, "
                    f"whose {part} part ({key} {fixed!r}) the stage starts from"
                )


def _check_temporal(
    config: TrainConfig, given: Mapping[str, str], parts: dict[str, tuple[str, dict]] | None
) -> None:
    """The temporal stage's settings read only with some parts below the LSTM."""
    # fine_tune only matters to the copies of a visual branch that cross-fitting retrains
    if "fine_tune" in given and config.cross_fit < 2:
        raise ValueError(
            f"{given['fine_tune']}: the temporal stage reads it only with --cross-fit "
            "(whose folds retrain a visual branch below the LSTM)"
        )
    if not parts:  # unreadable, or nothing to sit on: the stage says so
        return
    below = "fusion" if "fusion" in parts else ("audio" if "audio" in parts else "visual")
    if "fine_tune" in given and below != "visual":
        raise ValueError(
            f"{given['fine_tune']}: not read here: --cross-fit retrains the {below} part "
            "below the LSTM, not a visual branch"
        )
    if "temporal_copies" in given and "audio" not in parts:
        raise ValueError(
            f"{given['temporal_copies']}: not read without an audio part (the copies are "
            "mel-warped audio), and --init has none"
        )
    if "temporal_copies" in given and parts["audio"][1].get("variant") in WHISPER_MODELS:
        raise ValueError(
            f"{given['temporal_copies']}: not read over a Whisper branch (the copies are "
            "mel-warped log-mel patches, which its frozen encoder does not read)"
        )


def init_parts(config: TrainConfig) -> dict[str, tuple[str, dict[str, Any]]] | None:
    """The parts ``config``'s stage starts from, merged as the stage merges its ``init``
    (a later source wins): ``part: (source, its config section)``; a branch weights file's
    section holds the variant it fixes (``None``: set by its tensors). ``None`` when a
    source is unreadable here or does not fit the stage; the stage reports that itself."""
    parts: dict[str, tuple[str, dict[str, Any]]] = {}
    for source in config.init:
        path = Path(source)
        if path.is_dir():
            try:
                saved = json.loads((path / "config.json").read_text())
            except (OSError, ValueError):
                return None
            if not isinstance(saved, dict):
                return None
            for part in MODALITIES:
                if saved.get(part) and isinstance(saved[part], dict):
                    parts[part] = (source, saved[part])
        elif config.modality == "audio" and config.audio_variant in WHISPER_MODELS:
            parts["audio"] = (source, {"variant": config.audio_variant})  # Whisper's weights
        elif config.modality in ("audio", "visual"):  # read as the stage reads the file
            mini = config.visual_variant == "mini-xception"
            variant = file_variant(config.modality, path, mini)
            parts[config.modality] = (source, {"variant": variant})
        else:
            return None
    return parts
