"""The Whisper audio branch: a frozen pretrained encoder, a learnt layer weighting, a head.

- :class:`WhisperFeatures` runs the frozen encoder (:mod:`avemotion.encoders.whisper`) on a
  clip's causal schedule (:mod:`avemotion.encoders.whisper_schedule`) and pools each
  encoding per layer to mean ⊕ std; results are cached per clip on disk
  (:mod:`avemotion.encoders.whisper_cache`), so no clip is encoded twice.
- :class:`WhisperAudioNet` is what training learns: each layer's statistics normalised
  (layer norm without parameters), summed with softmax weights over the layers, then a
  128-unit ReLU layer (the branch embedding, stored at level ``embedding``) and a linear
  head. Its state dict holds only these (the encoder's weights stay in their package).
- :class:`WhisperStream` computes the same features one stream step at a time.

The encoder config's ``audio`` section: ``variant`` (``whisper-base`` or
``whisper-tiny-en``), ``model`` (that name, or a faster-whisper folder / OpenAI
checkpoint path), ``layers`` and ``width`` (the encoder's outputs), ``precision``
(``fp32`` or ``int8``: dynamic int8 linear layers) and the schedule (``hop``, ``window``,
``pool``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from avemotion.encoders.frontend import WINDOW_SAMPLES, step_hop
from avemotion.encoders.whisper_cache import FeatureCache, clip_key, model_identity
from avemotion.encoders.whisper_schedule import (
    WhisperSchedule,
    encoding_of_steps,
    encoding_spans,
    pool_layers,
)

WHISPER_MODELS = {"whisper-base": (7, 512), "whisper-tiny-en": (5, 384)}
"""Packaged Whisper variants: ``(outputs, width)`` of their encoders (the input of the first
layer, then every layer's output)."""
EMBED_DIM = 128
"""The branch embedding's size (as the other audio variants)."""
PRECISIONS = ("fp32", "int8")
DEFAULT_PRECISION = "fp32"
"""The frozen encoder's arithmetic in a new branch (docs/whisper-branch.md: int8 against
fp32 on held-out speakers)."""


def is_whisper(variant: object) -> bool:
    return isinstance(variant, str) and variant in WHISPER_MODELS


class WhisperAudioNet(nn.Module):
    """The trainable part over ``[B, layers, 2 · width]`` pooled encoder statistics."""

    def __init__(self, n_classes: int, section: dict[str, Any]) -> None:
        super().__init__()
        self.variant = str(section["variant"])
        self.layers, self.width = int(section["layers"]), int(section["width"])
        self.members, self.dim = 1, EMBED_DIM
        self.layer_logits = nn.Parameter(torch.zeros(self.layers))
        self.body = nn.Sequential(
            nn.Dropout(0.2), nn.Linear(2 * self.width, EMBED_DIM), nn.ReLU(inplace=True)
        )
        self.head = nn.Linear(EMBED_DIM, n_classes)

    def reset_head(self, n_classes: int) -> None:
        self.head = nn.Linear(EMBED_DIM, n_classes)

    def layer_weights(self) -> torch.Tensor:
        return torch.softmax(self.layer_logits, dim=0)

    def mix(self, stats: torch.Tensor) -> torch.Tensor:
        """``[B, layers, 2 · width]`` → ``[B, 2 · width]``: the softmax-weighted sum of the
        layers' statistics, each normalised over its values first (scales differ by layer)."""
        normed = F.layer_norm(stats.float(), (stats.shape[-1],))
        return torch.einsum("l,bld->bd", self.layer_weights(), normed)

    def embed(self, stats: torch.Tensor) -> torch.Tensor:
        return self.body(self.mix(stats))

    def forward(self, stats: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(stats))

    def augment(self, stats: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """No augmentation of the frozen statistics (the body's dropout regularises)."""
        return stats


@dataclass
class WhisperSteps:
    """A clip's Whisper input: ``features`` ``[encodings, layers, 2 · width]`` (float16)
    and the encoding each step reads (``index``, ``[T]``)."""

    features: torch.Tensor
    index: torch.Tensor

    def rows(self, steps: Any = slice(None)) -> torch.Tensor:
        """The float32 input rows of ``steps`` (an index, a slice or an index array)."""
        return self.features[self.index[steps]].float()


class WhisperFeatures:
    """The frozen encoder on a schedule, with the disk cache; ``encoder_runs`` counts the
    encodings actually computed (cache hits cost none)."""

    def __init__(
        self, section: dict[str, Any], steps_per_second: float, cache: bool = True
    ) -> None:
        self.model = str(section.get("model", section["variant"]))
        self.precision = str(section.get("precision", "fp32"))
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"audio.precision: expected one of {list(PRECISIONS)}, got {self.precision!r}"
            )
        self.schedule = WhisperSchedule.from_section(section)
        self.steps_per_second = float(steps_per_second)
        self.encoder_runs = 0
        self._encoder: nn.Module | None = None
        settings = {
            "model": model_identity(self.model),
            "precision": self.precision,
            "steps_per_second": self.steps_per_second,
            **self.schedule.as_dict(),
        }
        self.cache = FeatureCache(settings) if cache else None

    @property
    def encoder(self) -> nn.Module:
        """The frozen encoder, loaded on first use (cached clips never load it)."""
        if self._encoder is None:
            self._encoder = load_frozen(self.model, self.precision)
        return self._encoder

    @torch.inference_mode()
    def encode(self, audio: np.ndarray) -> torch.Tensor:
        """One encoding of ``audio`` (16 kHz), pooled: ``[layers, 2 · width]`` float16."""
        from avemotion.encoders.whisper import log_mel

        mel = log_mel(np.asarray(audio, dtype=np.float32))
        outputs = self.encoder.layer_outputs(mel[None])[:, 0]
        self.encoder_runs += 1
        return pool_layers(outputs, self.schedule.pool_frames).half()

    def clip(self, audio: np.ndarray, count: int) -> WhisperSteps:
        """The ``count`` steps of a whole clip (from the cache when it holds the clip)."""
        every = self.schedule.every(self.steps_per_second)
        key = clip_key(audio, count) if self.cache is not None else ""
        features = self.cache.get(key) if self.cache is not None else None
        if features is None:
            spans = encoding_spans(count, self.steps_per_second, self.schedule)
            features = torch.stack([self.encode(audio[a:b]) for a, b in spans])
            if self.cache is not None:
                self.cache.put(key, features)
        return WhisperSteps(features, encoding_of_steps(count, every))


class WhisperStream:
    """:meth:`WhisperFeatures.clip`'s rows, one stream step at a time: the audio heard so
    far is rebuilt from the overlapping step windows (the last ``window`` seconds kept), and
    re-encoded on the schedule's steps only."""

    def __init__(self, features: WhisperFeatures) -> None:
        self.features = features
        self.hop = step_hop(features.steps_per_second)
        self.every = features.schedule.every(features.steps_per_second)
        self.reset()

    def reset(self) -> None:
        self._audio = np.zeros(0, dtype=np.float32)
        self._start = 0  # stream sample index of self._audio[0]
        self._last_index = -2
        self._row: torch.Tensor | None = None

    def _hear(self, index: int, window: np.ndarray) -> None:
        window = np.asarray(window, dtype=np.float32)
        if window.size != WINDOW_SAMPLES:
            raise ValueError(
                f"window: expected {WINDOW_SAMPLES} samples at 16 kHz, got {window.size}"
            )
        if index == self._last_index + 1 and self._audio.size:
            self._audio = np.concatenate([self._audio, window[-self.hop :]])
        else:  # a new stream, or a gap: the window is all that was heard
            self._audio, self._start = window.copy(), index * self.hop
        keep = self.features.schedule.window_samples
        if self._audio.size > keep:
            self._start += self._audio.size - keep
            self._audio = self._audio[-keep:]
        self._last_index = index

    def step(self, index: int, window: np.ndarray) -> torch.Tensor:
        """Step ``index``'s ``[1, layers, 2 · width]`` input row (its window: 0.975 s)."""
        self._hear(index, window)
        if index % self.every == 0 or self._row is None:
            end = index * self.hop + WINDOW_SAMPLES
            begin = max(0, end - self.features.schedule.window_samples)
            segment = self._audio[max(0, begin - self._start) : end - self._start]
            self._row = self.features.encode(segment)
        return self._row[None].float()


def load_frozen(model: str, precision: str = "fp32") -> nn.Module:
    """The frozen Whisper encoder ``model`` (packaged name or path), int8 if asked;
    raises a one-line ``ValueError`` when it cannot be read."""
    try:
        from avemotion.encoders.whisper import WhisperWeightsError, load_whisper, quantize_int8
    except ImportError as error:  # the module ships with the package: a broken install
        raise ValueError(f"whisper: the encoder module cannot be imported ({error})") from None
    try:
        encoder = load_whisper(model)
    except WhisperWeightsError as error:
        raise ValueError(str(error).splitlines()[0]) from None
    encoder.eval()
    for parameter in encoder.parameters():
        parameter.requires_grad_(False)
    return quantize_int8(encoder) if precision == "int8" else encoder


def whisper_section(variant: str, model: str | None = None, **schedule: float) -> dict[str, Any]:
    """A fresh ``audio`` config section for ``variant``, from its packaged weights or from
    ``model`` (a faster-whisper folder or OpenAI checkpoint, read now to size the head)."""
    if model is None:
        layers, width = WHISPER_MODELS[variant]
    else:
        dims = load_frozen(model).dims
        layers, width = int(dims.n_layer) + 1, int(dims.n_state)
    return {
        "variant": variant,
        "model": model or variant,
        "layers": layers,
        "width": width,
        "precision": DEFAULT_PRECISION,
        **WhisperSchedule(**schedule).as_dict(),
    }


def whisper_features(config: dict[str, Any]) -> WhisperFeatures | None:
    """The feature provider of an encoder config whose audio part is Whisper (else None)."""
    section = config.get("audio") or {}
    if not is_whisper(section.get("variant")):
        return None
    from avemotion.store import STEPS_PER_SECOND

    return WhisperFeatures(section, float(config.get("steps_per_second", STEPS_PER_SECOND)))
