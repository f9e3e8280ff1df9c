"""The encoder of an OpenAI Whisper checkpoint (``base.pt`` and its kin), read with
``torch.load(weights_only=True)``: a dict of ``dims`` and ``model_state_dict``, whose
``encoder.*`` tensors are renamed to our module's (query, key and value fused; Whisper's
key projection has no bias, so its third of the fused bias is zero)."""

from __future__ import annotations

from pathlib import Path

import torch

from avemotion.encoders.whisper.files import WhisperWeightsError
from avemotion.encoders.whisper.model import WhisperDims


def _checkpoint(path: Path) -> dict:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as error:
        raise WhisperWeightsError(f"{path}: no such file") from error
    except Exception as error:  # noqa: BLE001 - any unreadable or unpicklable file is a bad file
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise WhisperWeightsError(f"{path}: not a readable torch checkpoint ({reason})") from error
    if not isinstance(checkpoint, dict) or not {"dims", "model_state_dict"} <= checkpoint.keys():
        raise WhisperWeightsError(
            f"{path}: not an OpenAI Whisper checkpoint (no dims / model_state_dict)"
        )
    return checkpoint


def read_openai_encoder(path: Path) -> tuple[WhisperDims, dict[str, torch.Tensor]]:
    """The encoder of the OpenAI Whisper checkpoint at ``path``: its sizes and our state dict."""
    checkpoint = _checkpoint(Path(path))
    raw, weights = checkpoint["dims"], checkpoint["model_state_dict"]
    try:
        dims = WhisperDims(
            n_state=int(raw["n_audio_state"]),
            n_head=int(raw["n_audio_head"]),
            n_layer=int(raw["n_audio_layer"]),
            n_mels=int(raw["n_mels"]),
            n_ctx=int(raw["n_audio_ctx"]),
        )
        state = {
            name.removeprefix("encoder."): weights[name].float()
            for name in (
                "encoder.conv1.weight",
                "encoder.conv1.bias",
                "encoder.conv2.weight",
                "encoder.conv2.bias",
            )
        }
        state |= {
            f"ln_post.{p}": weights[f"encoder.ln_post.{p}"].float() for p in ("weight", "bias")
        }
        state["positional_embedding"] = weights["encoder.positional_embedding"].float()
        for i in range(dims.n_layer):
            state |= _block(weights, i)
    except KeyError as error:
        raise WhisperWeightsError(f"{path}: no {error.args[0]}; not a Whisper checkpoint") from None
    except (TypeError, ValueError, AttributeError, RuntimeError) as error:  # odd dims or tensors
        reason = " ".join(str(error).split())
        raise WhisperWeightsError(f"{path}: not a Whisper checkpoint ({reason})") from None
    return dims, state


def _block(weights: dict[str, torch.Tensor], i: int) -> dict[str, torch.Tensor]:
    theirs, ours = f"encoder.blocks.{i}.", f"blocks.{i}."
    query, key, value = (weights[f"{theirs}attn.{n}.weight"] for n in ("query", "key", "value"))
    query_bias, value_bias = (
        weights[f"{theirs}attn.query.bias"],
        weights[f"{theirs}attn.value.bias"],
    )
    state = {
        f"{ours}qkv.weight": torch.cat([query, key, value]).float(),
        f"{ours}qkv.bias": torch.cat(
            [query_bias, torch.zeros_like(query_bias), value_bias]
        ).float(),
    }
    for ours_name, theirs_name in (
        ("attn_ln", "attn_ln"),
        ("out", "attn.out"),
        ("mlp_ln", "mlp_ln"),
        ("mlp1", "mlp.0"),
        ("mlp2", "mlp.2"),
    ):
        for p in ("weight", "bias"):
            state[f"{ours}{ours_name}.{p}"] = weights[f"{theirs}{theirs_name}.{p}"].float()
    return state
