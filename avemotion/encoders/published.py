"""Branches that start from a published weights file (a local path, never a download):
VGGish for the audio branch, MobileNetV2 or the FER2013 mini-Xception for the visual one.

The same file starts a branch's own training stage and, when the temporal stage
cross-fits, each fold's copy of that branch: a fold copy must start where the branch did,
from weights that saw none of the training speakers, not from the branch as trained on
all of them (which has seen the fold it is meant to be new to).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from avemotion.encoders.bundle import EncoderError, load_weights
from avemotion.encoders.models import (
    AudioNet,
    VisualNet,
    load_mobilenet_weights,
    load_vggish_weights,
    mini_xception_branch,
)

KERAS_SUFFIXES = (".h5", ".hdf5")
"""Suffixes of the Keras HDF5 files read as the FER2013 mini-Xception."""


def file_variant(part: str, path: str | Path, mini_xception: bool = False) -> str | None:
    """The variant a weights file fixes for the ``part`` branch it starts: VGGish for audio;
    for visual, the mini-Xception for a Keras file (or any file with ``mini_xception``),
    else None (a state dict's tensors tell MobileNetV2's widths apart)."""
    if part == "audio":
        return "vggish"
    if mini_xception or Path(path).suffix.lower() in KERAS_SUFFIXES:
        return "mini-xception"
    return None


def branch_from_weights(
    part: str,
    path: str | Path,
    class_names: Sequence[str],
    mini_xception: bool = False,
    fine_tune: bool = False,
) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The ``part`` branch (``audio`` or ``visual``) loaded from the weights file ``path``,
    and its encoder-config section (which names the file under ``weights``). A visual
    Keras file, or any file with ``mini_xception``, is the FER2013 mini-Xception (its head
    matched to ``class_names`` by name, its backbone fine-tuned only with ``fine_tune``); a
    visual state dict is MobileNetV2 at full or 0.35 width, told apart by its first layer."""
    path = str(path)
    k = len(class_names)
    if part == "visual" and file_variant(part, path, mini_xception) == "mini-xception":
        net, section = mini_xception_branch(path, list(class_names), fine_tune)
        return net, section
    if part not in ("audio", "visual"):
        raise EncoderError(
            f"{path}: a weights file initialises a branch; for {part} pass an encoder directory"
        )
    state = load_weights(path)
    if part == "audio":
        audio = AudioNet(k, "vggish")
        load_vggish_weights(audio, state, path)
        return audio, {"variant": "vggish", "weights": path}
    first = state.get("features.0.0.weight")
    variant = "mobilenet_v2" if first is not None and first.shape[0] == 32 else "small"
    visual = VisualNet(k, variant)
    load_mobilenet_weights(visual, state, path)
    return visual, {"variant": variant, "weights": path}


def fold_copy(section: dict[str, Any], part: str, class_names: Sequence[str]) -> Any:
    """A fold's copy of a ``part`` branch whose config ``section`` names the published file
    it started from, as that branch's stage built it (None when it names none: the copy
    is then a fresh network). Its fine-tuning is the branch's own."""
    weights = section.get("weights") if part in ("audio", "visual") else None
    if not weights:
        return None
    mini = section.get("variant") == "mini-xception"
    fine_tune = bool(section.get("fine_tune", not mini))
    net, _ = branch_from_weights(part, weights, class_names, mini, fine_tune)
    if part == "visual":
        net.set_fine_tune(fine_tune)
    return net
