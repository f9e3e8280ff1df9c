"""Whisper's audio encoder (Radford et al., 2022) in plain PyTorch, for frozen use.

Two convolutions (the second with stride 2, so ``F`` mel frames give ``ceil(F / 2)``
positions), sinusoidal position encodings, ``n_layer`` pre-norm transformer blocks and a
final layer norm. Unlike OpenAI's code, the input need not be padded to 30 s: the first
``ceil(F / 2)`` position encodings are added, as CTranslate2 does. Attention runs through
``scaled_dot_product_attention`` with the query, key and value projections fused into one
matrix (Whisper's key projection has no bias: its third of the fused bias is zero).
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.ao.quantization import (
    default_dynamic_qconfig,
    per_channel_dynamic_qconfig,
    quantize_dynamic,
)


@dataclass(frozen=True)
class WhisperDims:
    """The encoder's sizes: width ``n_state``, heads, blocks, mel bands and positions."""

    n_state: int
    n_head: int
    n_layer: int
    n_mels: int = 80
    n_ctx: int = 1500


def sinusoids(length: int, channels: int) -> torch.Tensor:
    """Whisper's position encodings ``[length, channels]``: sines then cosines of
    geometrically spaced timescales from 1 to 10,000."""
    increment = torch.log(torch.tensor(10000.0)) / (channels // 2 - 1)
    inverse = torch.exp(-increment * torch.arange(channels // 2))
    scaled = torch.arange(length)[:, None] * inverse[None, :]
    return torch.cat([torch.sin(scaled), torch.cos(scaled)], dim=1)


class EncoderBlock(nn.Module):
    """A pre-norm transformer block: self-attention, then a GELU MLP, each residual."""

    def __init__(self, n_state: int, n_head: int) -> None:
        super().__init__()
        self.n_head = n_head
        self.attn_ln = nn.LayerNorm(n_state)
        self.qkv = nn.Linear(n_state, 3 * n_state)
        self.out = nn.Linear(n_state, n_state)
        self.mlp_ln = nn.LayerNorm(n_state)
        self.mlp1 = nn.Linear(n_state, 4 * n_state)
        self.mlp2 = nn.Linear(4 * n_state, n_state)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, frames, width = x.shape
        qkv = self.qkv(self.attn_ln(x)).view(batch, frames, 3, self.n_head, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [batch, head, frame, head width]
        attended = F.scaled_dot_product_attention(q, k, v)
        x = x + self.out(attended.transpose(1, 2).reshape(batch, frames, width))
        return x + self.mlp2(F.gelu(self.mlp1(self.mlp_ln(x))))


class WhisperEncoder(nn.Module):
    """Whisper's encoder: ``mel [B, n_mels, F]`` -> ``[B, ceil(F / 2), n_state]``."""

    def __init__(self, dims: WhisperDims) -> None:
        super().__init__()
        self.dims = dims
        self.conv1 = nn.Conv1d(dims.n_mels, dims.n_state, 3, padding=1)
        self.conv2 = nn.Conv1d(dims.n_state, dims.n_state, 3, stride=2, padding=1)
        self.register_buffer("positional_embedding", sinusoids(dims.n_ctx, dims.n_state))
        self.blocks = nn.ModuleList(
            EncoderBlock(dims.n_state, dims.n_head) for _ in range(dims.n_layer)
        )
        self.ln_post = nn.LayerNorm(dims.n_state)

    def embed(self, mel: torch.Tensor) -> torch.Tensor:
        """The input of the first block: both convolutions with GELU, plus positions."""
        if mel.ndim != 3 or mel.shape[1] != self.dims.n_mels:
            raise ValueError(
                f"Whisper encoder: expected a log-mel [batch, {self.dims.n_mels}, frames], "
                f"got {tuple(mel.shape)}"
            )
        x = F.gelu(self.conv2(F.gelu(self.conv1(mel))))
        positions = x.shape[2]
        if positions > self.dims.n_ctx:
            raise ValueError(
                f"Whisper encoder: {mel.shape[2]} mel frames is over its "
                f"{2 * self.dims.n_ctx} (30 s); encode shorter windows"
            )
        return x.transpose(1, 2) + self.positional_embedding[:positions]

    def layer_outputs(self, mel: torch.Tensor, up_to: int | None = None) -> torch.Tensor:
        """``[n_layer + 1, B, ceil(F / 2), n_state]``: the first block's input, then each
        block's output, the last one after the final layer norm. With ``up_to`` only the
        outputs ``0..up_to`` are computed (later blocks are not run)."""
        last = self.dims.n_layer if up_to is None else up_to
        if not 0 <= last <= self.dims.n_layer:
            raise ValueError(
                f"Whisper encoder: up_to={up_to}, it has outputs 0..{self.dims.n_layer}"
            )
        x = self.embed(mel)
        outputs = [x]
        for i, block in enumerate(self.blocks[:last], start=1):
            x = block(x)
            outputs.append(self.ln_post(x) if i == self.dims.n_layer else x)
        return torch.stack(outputs)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """The encoder's output (after the final layer norm), as CTranslate2 and OpenAI give it."""
        x = self.embed(mel)
        for block in self.blocks:
            x = block(x)
        return self.ln_post(x)


def quantize_int8(
    encoder: WhisperEncoder, per_channel: bool = True, late_ffn_fp32: bool = True
) -> WhisperEncoder:
    """A copy of ``encoder`` whose linear layers run in int8: torch dynamic quantisation,
    int8 weights (one scale per output row with ``per_channel``, else one per matrix: no
    faster, and further from fp32), activations quantised on the fly.

    With ``late_ffn_fp32`` the MLP output projections of the second half of the blocks stay
    in float32: their inputs carry Whisper's outlier activations, and quantising them
    doubles the last layers' error (docs/whisper.md). CPU only, as torch's int8 kernels are."""
    qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    late = range(encoder.dims.n_layer // 2, encoder.dims.n_layer) if late_ffn_fp32 else range(0)
    targets = {
        name: qconfig
        for name, module in encoder.named_modules()
        if isinstance(module, nn.Linear) and name not in {f"blocks.{i}.mlp2" for i in late}
    }
    with warnings.catch_warnings():  # torch.ao's notice of its move to torchao after 2.9
        warnings.simplefilter("ignore", DeprecationWarning)
        quantized = quantize_dynamic(copy.deepcopy(encoder).cpu(), targets, dtype=torch.qint8)
    return quantized.eval()
