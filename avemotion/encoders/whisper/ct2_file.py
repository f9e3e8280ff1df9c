"""The encoder of a CTranslate2 Whisper ``model.bin`` (faster-whisper's format), read with numpy.

Layout (binary version 6, little-endian): ``uint32`` version; the spec name and ``uint32``
revision; ``uint32`` variable count, then per variable its name, ``uint8`` rank, ``uint32``
dims, ``uint8`` dtype id and ``uint32`` byte count before the raw bytes; then ``uint32``
alias count and (alias, target) name pairs. A string is a ``uint16`` length and that many
bytes, the last a NUL. Only ``encoder/*`` bytes are read; the decoder is skipped.
Weights quantised by CTranslate2 (int8 rows or int16, with a ``*_scale`` variable) are
dequantised; float16 and bfloat16 are widened to float32.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from avemotion.encoders.whisper.files import PartsReader, WhisperWeightsError
from avemotion.encoders.whisper.model import WhisperDims

BINARY_VERSION = 6
SPEC_NAME = "WhisperSpec"
DTYPES = {0: "float32", 1: "int8", 2: "int16", 3: "int32", 4: "float16", 5: "bfloat16"}
ITEMSIZE = {"float32": 4, "int8": 1, "int16": 2, "int32": 4, "float16": 2, "bfloat16": 2}
MAX_RANK = 8


def _unpack(stream: PartsReader, fmt: str) -> int:
    return struct.unpack("<" + fmt, stream.read(struct.calcsize(fmt)))[0]


def _string(stream: PartsReader) -> str:
    raw = stream.read(_unpack(stream, "H"))
    try:
        return raw.rstrip(b"\0").decode("utf-8")
    except UnicodeDecodeError as error:
        raise WhisperWeightsError(
            f"{stream.label}: not a CTranslate2 model (bad name bytes)"
        ) from error


def _array(raw: bytes, dtype: str, dims: list[int]) -> np.ndarray:
    if dtype == "bfloat16":  # the high half of a float32
        wide = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return wide.view(np.float32).reshape(dims)
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(dims)


def read_variables(stream: PartsReader, wanted: str = "encoder/") -> dict[str, np.ndarray]:
    """The variables whose names start with ``wanted`` (aliases resolved), as numpy arrays."""
    version = _unpack(stream, "I")
    if version != BINARY_VERSION:
        raise WhisperWeightsError(
            f"{stream.label}: CTranslate2 binary version {version}, this reader reads {BINARY_VERSION}"
        )
    spec = _string(stream)
    if spec != SPEC_NAME:
        raise WhisperWeightsError(
            f"{stream.label}: a CTranslate2 {spec or 'unnamed'} model, not {SPEC_NAME}"
        )
    _unpack(stream, "I")  # the spec revision: reading the encoder does not need it
    variables: dict[str, np.ndarray] = {}
    for _ in range(_unpack(stream, "I")):
        name, rank = _string(stream), _unpack(stream, "B")
        if rank > MAX_RANK:
            raise WhisperWeightsError(
                f"{stream.label}: variable {name} has rank {rank}; file damaged"
            )
        dims = [_unpack(stream, "I") for _ in range(rank)]
        type_id, size = _unpack(stream, "B"), _unpack(stream, "I")
        dtype = DTYPES.get(type_id)
        if dtype is None or size != int(np.prod(dims)) * ITEMSIZE[dtype]:
            raise WhisperWeightsError(
                f"{stream.label}: variable {name} has dtype id {type_id} and {size} bytes "
                f"for dims {dims}; file damaged"
            )
        if name.startswith(wanted):
            variables[name] = _array(stream.read(size), dtype, dims)
        else:
            stream.skip(size)
    for _ in range(_unpack(stream, "I")):
        alias, target = _string(stream), _string(stream)
        if alias.startswith(wanted) and target in variables:
            variables[alias] = variables[target]
        elif alias.startswith(wanted):
            raise WhisperWeightsError(f"{stream.label}: alias {alias} names {target}, not read")
    return variables


def _float(variables: dict[str, np.ndarray], name: str, label: str) -> torch.Tensor:
    """A weight as float32, dequantised when CTranslate2 stored it as integers plus a scale."""
    try:
        value = variables[name]
    except KeyError:
        raise WhisperWeightsError(f"{label}: no variable {name}; not a Whisper encoder") from None
    if value.dtype.kind == "i":
        scale = variables.get(f"{name}_scale")
        if scale is None:
            raise WhisperWeightsError(f"{label}: {name} is {value.dtype} without {name}_scale")
        shape = (-1,) + (1,) * (value.ndim - 1) if scale.ndim == 1 else ()
        value = value.astype(np.float32) / scale.astype(np.float32).reshape(shape)
    return torch.from_numpy(np.array(value, dtype=np.float32))


def _scopes(n_layer: int) -> dict[str, str]:
    """Our module's parameter prefixes and CTranslate2's matching variable scopes."""
    scopes = {"conv1.": "conv1/", "conv2.": "conv2/", "ln_post.": "layer_norm/"}
    for i in range(n_layer):
        layer = f"layer_{i}/"
        scopes |= {
            f"blocks.{i}.attn_ln.": layer + "self_attention/layer_norm/",
            f"blocks.{i}.qkv.": layer + "self_attention/linear_0/",  # query, key, value fused
            f"blocks.{i}.out.": layer + "self_attention/linear_1/",
            f"blocks.{i}.mlp_ln.": layer + "ffn/layer_norm/",
            f"blocks.{i}.mlp1.": layer + "ffn/linear_0/",
            f"blocks.{i}.mlp2.": layer + "ffn/linear_1/",
        }
    return scopes


def encoder_state(
    variables: dict[str, np.ndarray], label: str
) -> tuple[WhisperDims, dict[str, torch.Tensor]]:
    """Our :class:`~avemotion.encoders.whisper.model.WhisperEncoder` state dict and sizes
    from CTranslate2's ``encoder/*`` variables."""
    layers = {int(m.group(1)) for n in variables if (m := re.match(r"encoder/layer_(\d+)/", n))}
    weight = _float(variables, "encoder/conv1/weight", label)
    if (
        "encoder/num_heads" not in variables
        or weight.ndim != 3
        or layers != set(range(len(layers)))
    ):
        raise WhisperWeightsError(
            f"{label}: its encoder variables are incomplete; not a Whisper encoder"
        )
    positions = _float(variables, "encoder/position_encodings/encodings", label)
    dims = WhisperDims(
        n_state=weight.shape[0],
        n_head=int(variables["encoder/num_heads"]),
        n_layer=len(layers),
        n_mels=weight.shape[1],
        n_ctx=positions.shape[0],
    )
    state = {"positional_embedding": positions}
    for ours, theirs in _scopes(dims.n_layer).items():
        norm = theirs.endswith("layer_norm/")
        for param, var in (
            (("weight", "gamma"), ("bias", "beta"))
            if norm
            else (("weight", "weight"), ("bias", "bias"))
        ):
            state[ours + param] = _float(variables, f"encoder/{theirs}{var}", label)
    return dims, state


def read_ct2_encoder(
    parts: Sequence[Path], label: str | None = None
) -> tuple[WhisperDims, dict[str, torch.Tensor]]:
    """The encoder of the CTranslate2 Whisper model stored in ``parts`` (one file, or the
    pieces of one in order): its sizes and our state dict."""
    label = label or str(parts[0])
    with PartsReader(parts, label) as stream:
        variables = read_variables(stream)
        if not stream.at_end():
            raise WhisperWeightsError(
                f"{label}: bytes after the aliases at {stream.position}; file damaged"
            )
    return encoder_state(variables, label)
