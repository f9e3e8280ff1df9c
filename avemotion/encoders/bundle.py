"""The encoder directory (``ENC_DIR``) and the step-by-step :class:`Encoder` it loads.

Layout::

    ENC_DIR/
      config.json    format, class names, steps per second, one section per trained part
                     (audio, visual, fusion, temporal) with its variant and sizes, and the
                     training history (dataset, speakers, metrics of every stage)
      audio.pt       state dicts (tensors only; read with torch.load(weights_only=True))
      visual.pt
      fusion.pt
      temporal.pt

Writes are atomic (temporary sibling directory, then rename), so a stage can write its
result over the directory it started from.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avemotion.device import place_on
from avemotion.encoders.face import FaceConfig, FaceTracker
from avemotion.encoders.frontend import N_MELS, patch_statistics, window_patch
from avemotion.encoders.models import (
    AUDIO_DIM,
    VISUAL_DIMS,
    VISUAL_FACE_SEARCH,
    AudioNet,
    FusionNet,
    LSTMState,
    TemporalNet,
    VisualNet,
    unwrap_state_dict,
)
from avemotion.encoders.whisper_branch import WhisperAudioNet, is_whisper, whisper_features
from avemotion.store import STEPS_PER_SECOND

FORMAT = "avemotion-encoder"
VERSION = 1
PARTS = ("audio", "visual", "fusion", "temporal")
LEVELS = ("embedding", "fusion", "temporal")
"""What an extracted step holds: branch embeddings (visual 1280, or 135 for the
mini-Xception, ⊕ audio 128), the fusion
DNN's 512-d hidden layer, or the LSTM's hidden state ⊕ class posteriors."""


class EncoderError(ValueError):
    """An encoder directory or weights file is unusable; the message names the file."""


def load_weights(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a local state-dict file safely (``torch.load(weights_only=True)``, no pickle code)."""
    path = Path(path)
    if not path.is_file():
        raise EncoderError(f"{path}: no such weights file")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure is a bad file
        raise EncoderError(
            f"{path}: not a loadable tensor state dict ({str(error).splitlines()[0][:200]})"
        ) from None
    try:
        return unwrap_state_dict(blob, str(path))
    except ValueError as error:
        raise EncoderError(str(error)) from None


def visual_face_settings(visual: dict[str, Any]) -> dict[str, Any]:
    """The face-search settings of a ``visual`` config section: the variant's defaults
    (:data:`~avemotion.encoders.models.VISUAL_FACE_SEARCH`) overridden by its ``face`` keys."""
    return {**VISUAL_FACE_SEARCH.get(visual.get("variant", ""), {}), **visual.get("face", {})}


TEMPORAL_INPUTS = ("embedding", "posteriors", "statistics")
"""The parts the LSTM may read at each step (``temporal.input``, joined by ``+``)."""


class Encoder:
    """The trained parts of an encoder directory, usable clip-wise or one step at a time.

    Streaming use: :meth:`audio_embedding` on each step's 16 kHz window, a
    :meth:`face_tracker` plus :meth:`visual_embedding` on each step's frame, then
    :meth:`step_features` and :meth:`temporal_step` with an explicit LSTM state.
    """

    def __init__(
        self,
        config: dict[str, Any],
        nets: dict[str, torch.nn.Module],
        device: str | torch.device | None = None,
    ) -> None:
        self.config = config
        if device is not None:  # the nets take and return CPU tensors wherever they run
            place_on(nets, device)
        if config.get("visual"):  # explicit face settings: the variant's defaults filled in
            config["visual"]["face"] = visual_face_settings(config["visual"])
        self.class_names: list[str] = list(config["class_names"])
        self.steps_per_second = float(config.get("steps_per_second", STEPS_PER_SECOND))
        self.audio: AudioNet | None = nets.get("audio")  # type: ignore[assignment]
        self.visual: VisualNet | None = nets.get("visual")  # type: ignore[assignment]
        self.fusion: FusionNet | None = nets.get("fusion")  # type: ignore[assignment]
        self.temporal: TemporalNet | None = nets.get("temporal")  # type: ignore[assignment]
        self.audio_features = whisper_features(config)
        """The frozen Whisper encoder's schedule and cache, when the audio part is Whisper."""
        for net in nets.values():
            net.eval()

    def to(self, device: str | torch.device) -> Encoder:
        """Run the nets on ``device`` (they keep taking and returning CPU tensors)."""
        place_on({p: n for p in PARTS if (n := getattr(self, p)) is not None}, device)
        return self

    # ------------------------------------------------------------------ description
    @property
    def audio_reads_patches(self) -> bool:
        """Whether the audio part reads log-mel patches (not so for Whisper's statistics)."""
        return self.audio is not None and self.audio_features is None

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def modality(self) -> str:
        """``audio``, ``visual`` or ``audio-visual``: the media this encoder needs."""
        if self.audio is not None and self.visual is not None:
            return "audio-visual"
        if self.audio is not None:
            return "audio"
        if self.visual is not None:
            return "visual"
        raise EncoderError("encoder: no audio or visual part")

    @property
    def identity(self) -> str:
        """A short description of the parts and variants, stored in extracted stores."""
        names = {"fusion": "dnn{hidden}", "temporal": "lstm{hidden}"}
        parts = [
            f"{p}:{self.config[p].get('variant') or names[p].format(**self.config[p])}"
            + (f"x{self.config[p]['members']}" if self.config[p].get("members", 1) > 1 else "")
            for p in PARTS
            if self.config.get(p)
        ]
        return f"{FORMAT}-v{VERSION}(" + ", ".join(parts) + ")"

    @property
    def temporal_input(self) -> tuple[str, ...]:
        """What the LSTM reads at each step: the ``+``-joined parts of ``temporal.input`` in
        the config (default ``embedding``), concatenated in :data:`TEMPORAL_INPUTS` order:
        ``embedding`` (fusion hidden layer, or the branch embedding(s)), ``posteriors``
        (class log-posteriors of the part below the LSTM) and ``statistics`` (per-band mean
        and standard deviation of the step's log-mel patch, 128 values)."""
        value = str((self.config.get("temporal") or {}).get("input", "embedding"))
        parts = tuple(value.split("+"))
        if (
            not parts
            or any(p not in TEMPORAL_INPUTS for p in parts)
            or len(set(parts)) < len(parts)
        ):
            raise EncoderError(
                f"temporal.input: expected '+'-joined parts of {list(TEMPORAL_INPUTS)}, got {value!r}"
            )
        if "statistics" in parts and self.audio is None:
            raise EncoderError("temporal.input: statistics need an audio part")
        return tuple(p for p in TEMPORAL_INPUTS if p in parts)

    @property
    def feature_dim(self) -> int:
        """Size of :meth:`step_features`, the temporal model's input."""
        if self.fusion is not None:
            embedding = int(self.config["fusion"]["hidden"])
        else:
            embedding = (self.visual.dim if self.visual is not None else 0) + (
                self.audio.dim if self.audio is not None else 0
            )
        sizes = {"embedding": embedding, "posteriors": self.n_classes, "statistics": 2 * N_MELS}
        return sum(sizes[p] for p in self.temporal_input)

    def level_dim(self, level: str) -> int:
        """Size of one extracted step at ``level`` (raises when a needed part is missing)."""
        self.check_level(level)
        if level == "embedding":
            return (self.visual.dim if self.visual is not None else 0) + (
                self.audio.dim if self.audio is not None else 0
            )
        if level == "fusion":
            return int(self.config["fusion"]["hidden"])
        assert self.temporal is not None
        return self.temporal.hidden + self.n_classes

    def check_level(self, level: str) -> None:
        if level not in LEVELS:
            raise EncoderError(f"level: expected one of {list(LEVELS)}, got {level!r}")
        if level == "fusion" and self.fusion is None:
            raise EncoderError(
                "level fusion: this encoder has no fusion part (train one with --modality fusion)"
            )
        if level == "temporal" and self.temporal is None:
            raise EncoderError(
                "level temporal: this encoder has no temporal part (train one with --modality temporal)"
            )

    # ------------------------------------------------------------------ per step
    @torch.no_grad()
    def audio_embeddings(self, patches: torch.Tensor) -> torch.Tensor:
        """``[T, 96, 64]`` log-mel patches (Whisper: ``ClipSteps.audio_rows``) to ``[T, 128]``."""
        if self.audio is None:
            raise EncoderError("encoder: no audio part")
        return self.audio.embed(patches) if len(patches) else torch.zeros(0, self.audio.dim)

    def audio_embedding(self, window: np.ndarray) -> np.ndarray:
        """One step's 16 kHz window (15600 samples) to its 128-d embedding."""
        if self.audio_features is not None:  # it reads more than the step's window
            raise EncoderError("audio_embedding: a Whisper branch streams through StepEncoder")
        return self.audio_embeddings(window_patch(window)[None])[0].numpy()

    @property
    def face_config(self) -> FaceConfig:
        """The visual part's face search and cropping settings (``visual.face`` in the
        config, over the variant's defaults)."""
        if self.visual is None:
            raise EncoderError("encoder: no visual part")
        return FaceConfig(**visual_face_settings(self.config["visual"]))

    def face_tracker(self, face: FaceConfig | None = None) -> FaceTracker:
        """A fresh face cropper sized for the visual part (one per clip or stream)."""
        if self.visual is None:
            raise EncoderError("encoder: no visual part")
        return FaceTracker(self.visual.input_size, face or self.face_config)

    @torch.no_grad()
    def visual_embeddings(self, crops: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``[T, S, S, 3]`` uint8 face crops (or ``[T, P, S, S, 3]`` pooled) to ``[T, dim]``."""
        if self.visual is None:
            raise EncoderError("encoder: no visual part")
        crops = torch.as_tensor(np.asarray(crops))
        if len(crops) == 0:
            return torch.zeros(0, self.visual.dim)
        if crops.ndim == 5:  # pooled frames: mean embedding over the pool
            t, p = crops.shape[:2]
            return (
                self.visual.embed(crops.reshape(t * p, *crops.shape[2:])).reshape(t, p, -1).mean(1)
            )
        return self.visual.embed(crops)

    def visual_embedding(self, crop: np.ndarray) -> np.ndarray:
        """One face crop ``[S, S, 3]`` (from :meth:`face_tracker`) to its embedding."""
        return self.visual_embeddings(crop[None])[0].numpy()

    @torch.no_grad()
    def embeddings(self, audio: torch.Tensor | None, visual: torch.Tensor | None) -> torch.Tensor:
        """Concatenate branch embeddings in the paper's order: visual ⊕ audio."""
        parts = [x for x in (visual, audio) if x is not None]
        if not parts:
            raise EncoderError("encoder: no embedding given")
        return torch.cat(parts, dim=-1)

    @torch.no_grad()
    def step_features(
        self,
        audio: torch.Tensor | None,
        visual: torch.Tensor | None,
        patches: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The temporal model's ``[T, D]`` input (see :attr:`temporal_input`) from the branch
        embeddings (and, for ``statistics``, the ``[T, 96, 64]`` log-mel patches)."""
        joint = self.embeddings(audio, visual)
        embedding = self.fusion.embed(joint) if self.fusion is not None else joint
        wanted = self.temporal_input
        if wanted == ("embedding",):
            return embedding
        parts = [embedding] if "embedding" in wanted else []
        if "posteriors" in wanted:
            if self.fusion is not None:
                logits = self.fusion.head(embedding)
            elif audio is not None and self.audio is not None and visual is None:
                logits = self.audio.head(audio)
            elif visual is not None and self.visual is not None and audio is None:
                logits = self.visual.head(visual)
            else:
                raise EncoderError("temporal.input: posteriors need a fusion part or one branch")
            parts.append(torch.log_softmax(logits, dim=-1))
        if "statistics" in wanted:
            if patches is None:
                raise EncoderError("temporal.input: statistics need the steps' log-mel patches")
            parts.append(patch_statistics(patches))
        return torch.cat(parts, dim=-1)

    @torch.no_grad()
    def temporal_step(
        self, features: torch.Tensor, state: LSTMState | None = None
    ) -> tuple[torch.Tensor, LSTMState]:
        """One step ``[B, D]`` through the LSTM: ``[B, H + K]`` (hidden ⊕ posteriors), new state."""
        if self.temporal is None:
            raise EncoderError("encoder: no temporal part")
        logits, hidden, state = self.temporal.step(features, state)
        return torch.cat([hidden, torch.softmax(logits, -1)], dim=-1), state

    @torch.no_grad()
    def level_features(
        self,
        level: str,
        audio: torch.Tensor | None,
        visual: torch.Tensor | None,
        patches: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """A whole clip's ``[T, dim]`` rows at ``level`` from its branch embeddings (and its
        log-mel patches when the LSTM reads their statistics)."""
        self.check_level(level)
        if level == "embedding":
            return self.embeddings(audio, visual)
        if level == "fusion":
            assert self.fusion is not None
            return self.fusion.embed(self.embeddings(audio, visual))
        features = self.step_features(audio, visual, patches)
        assert self.temporal is not None
        logits, hidden, _ = self.temporal(features[None])
        return torch.cat([hidden[0], torch.softmax(logits[0], -1)], dim=-1)


# ---------------------------------------------------------------------- building and I/O
def build_nets(config: dict[str, Any]) -> dict[str, torch.nn.Module]:
    """Fresh (untrained) networks for the parts named in ``config``."""
    k = len(config["class_names"])
    nets: dict[str, torch.nn.Module] = {}
    if is_whisper((config.get("audio") or {}).get("variant")):
        nets["audio"] = WhisperAudioNet(k, config["audio"])
    elif config.get("audio"):
        nets["audio"] = AudioNet(
            k, config["audio"].get("variant", "small"), int(config["audio"].get("members", 1))
        )
    if config.get("visual"):
        variant = config["visual"].get("variant", "small")
        nets["visual"] = VisualNet(
            k, variant, bool(config["visual"].get("fine_tune", variant != "mini-xception"))
        )
    if config.get("fusion"):
        visual = config.get("visual")
        in_dim = (VISUAL_DIMS[visual.get("variant", "small")] if visual else 0) + (
            AUDIO_DIM * int(config["audio"].get("members", 1)) if config.get("audio") else 0
        )
        nets["fusion"] = FusionNet(k, in_dim, int(config["fusion"].get("hidden", 512)))
    if config.get("temporal"):
        t = config["temporal"]
        nets["temporal"] = TemporalNet(k, int(t["in_dim"]), int(t.get("hidden", 128)))
    return nets


def load_encoder(
    enc_dir: str | os.PathLike[str], device: str | torch.device | None = None
) -> Encoder:
    """Open an encoder directory written by :func:`save_encoder` (its nets on ``device``)."""
    enc_dir = Path(enc_dir)
    config_file = enc_dir / "config.json"
    if not config_file.is_file():
        raise EncoderError(f"{enc_dir}: config.json: missing (not an encoder directory)")
    try:
        config = json.loads(config_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise EncoderError(f"{config_file}: unreadable JSON ({error})") from None
    if config.get("format") != FORMAT or config.get("version") != VERSION:
        raise EncoderError(
            f"{config_file}: format: expected {FORMAT} v{VERSION}, got {config.get('format')} v{config.get('version')}"
        )
    if not config.get("class_names"):
        raise EncoderError(f"{config_file}: class_names: missing")
    nets = build_nets(config)
    for part, net in nets.items():
        state = load_weights(enc_dir / f"{part}.pt")
        try:
            net.load_state_dict(state)
        except RuntimeError as error:
            raise EncoderError(
                f"{enc_dir / f'{part}.pt'}: does not fit config.json ({str(error).splitlines()[0]})"
            ) from None
    return Encoder(config, nets, device)


def save_encoder(
    enc_dir: str | os.PathLike[str], config: dict[str, Any], nets: dict[str, torch.nn.Module]
) -> Path:
    """Write ``config`` and the nets' state dicts atomically to ``enc_dir`` (replacing it)."""
    enc_dir = Path(enc_dir)
    enc_dir.parent.mkdir(parents=True, exist_ok=True)
    config = {**config, "format": FORMAT, "version": VERSION}
    tmp = Path(tempfile.mkdtemp(prefix=f".{enc_dir.name}.tmp-", dir=enc_dir.parent))
    try:
        for part, net in nets.items():
            torch.save(
                {k: v.detach().clone() for k, v in net.state_dict().items()}, tmp / f"{part}.pt"
            )
        (tmp / "config.json").write_text(json.dumps(config, indent=1))
        if enc_dir.exists():
            old = enc_dir.with_name(f".{enc_dir.name}.old-{os.getpid()}")
            os.replace(enc_dir, old)
            os.replace(tmp, enc_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, enc_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return enc_dir
