"""The packaged weights against CTranslate2 (``whisper_ct2.npz``, written by
``make_fixture.py``), on a second of synthetic audio; the int8 path; devices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from avemotion.encoders.whisper import WhisperEncoder, log_mel, quantize_int8
from avemotion.encoders.whisper.files import check_sha256
from avemotion.encoders.whisper.load import PACKAGED, packaged_parts
from avemotion.encoders.whisper.model import sinusoids

from .make_fixture import FIXTURE, LONG_ROWS, LONG_SECONDS, signal


@pytest.mark.parametrize(
    ("encoder", "key"), [("whisper_base", "base"), ("whisper_tiny_en", "tiny_en")]
)
def test_matches_ctranslate2(encoder: str, key: str, request: pytest.FixtureRequest) -> None:
    model: WhisperEncoder = request.getfixturevalue(encoder)
    fixture = np.load(FIXTURE)
    with torch.no_grad():
        ours = model(torch.from_numpy(fixture["mel"])[None])[0].numpy()
        from_audio = model(log_mel(signal())[None])[0].numpy()
    expected = fixture[f"{key}_out"]
    assert ours.shape == (50, model.dims.n_state)
    np.testing.assert_allclose(ours[fixture["rows"]], expected, atol=1e-3, rtol=0)
    np.testing.assert_allclose(from_audio[fixture["rows"]], expected, atol=1e-3, rtol=0)


def test_four_seconds_match_ctranslate2(whisper_base: WhisperEncoder) -> None:
    fixture = np.load(FIXTURE)
    with torch.no_grad():
        ours = whisper_base(log_mel(signal(LONG_SECONDS))[None])[0].numpy()
    assert ours.shape == (200, 512)
    np.testing.assert_allclose(ours[LONG_ROWS], fixture["base_long_out"], atol=1e-3, rtol=0)


def test_layer_outputs_of_base(whisper_base: WhisperEncoder) -> None:
    mel = log_mel(signal())[None]
    with torch.no_grad():
        outputs = whisper_base.layer_outputs(mel)
        final = whisper_base(mel)
    assert whisper_base.dims.n_layer == 6 and whisper_base.dims.n_state == 512
    assert outputs.shape == (7, 1, 50, 512)
    assert torch.equal(outputs[-1], final)
    assert torch.isfinite(outputs).all()
    # the last block's output is layer-normalised: zero mean over the width at every frame
    assert outputs[-1].mean(-1).abs().max() < 0.05 < outputs[3].mean(-1).abs().max()


def test_int8_stays_close(whisper_base: WhisperEncoder) -> None:
    mel = log_mel(signal())[None]
    default, every = quantize_int8(whisper_base), quantize_int8(whisper_base, late_ffn_fp32=False)
    with torch.no_grad():
        fp32, int8, all_int8 = (m.layer_outputs(mel) for m in (whisper_base, default, every))
    assert isinstance(default, WhisperEncoder)
    quantized = {
        n for n, m in default.named_modules() if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)
    }
    assert (
        len(quantized) == 4 * 6 - 3
        and "blocks.2.mlp2" in quantized
        and "blocks.3.mlp2" not in quantized
    )
    assert torch.equal(int8[0], fp32[0])  # the convolutions stay in float32
    assert whisper_base.blocks[0].qkv.weight.dtype == torch.float32  # the original is untouched
    # mean |int8 - fp32| relative to each layer's spread (docs/whisper.md has the figures)
    relative = [float((int8[i] - fp32[i]).abs().mean() / fp32[i].std()) for i in range(1, 7)]
    assert all(0 < r < 0.12 for r in relative), relative
    assert float((all_int8[6] - fp32[6]).abs().mean() / fp32[6].std()) > relative[-1]
    cosine = torch.nn.functional.cosine_similarity(int8[6], fp32[6], dim=-1)
    assert cosine.min() > 0.95 and cosine.mean() > 0.99


def test_position_encodings_are_whisper_sinusoids(whisper_base: WhisperEncoder) -> None:
    # the file stores them in float16: equal to ours within its rounding (2^-11 near 1)
    torch.testing.assert_close(
        whisper_base.positional_embedding, sinusoids(1500, 512), atol=5e-4, rtol=0
    )


def test_to_a_device(whisper_tiny_en: WhisperEncoder) -> None:
    device = torch.device("cpu")
    mel = log_mel(signal(0.5), device=device)[None]
    with torch.no_grad():
        out = whisper_tiny_en.to(device)(mel)
    assert out.device == device and out.shape == (1, 25, 384)


def test_packaged_bytes_are_hashed_once(
    whisper_base: WhisperEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AVEMOTION_CACHE", str(tmp_path))
    weights, parts = PACKAGED["whisper-base"], packaged_parts("whisper-base")
    assert [p.name for p in parts] == ["model.bin.part1", "model.bin.part2"]
    assert sum(p.stat().st_size for p in parts) == weights.size == 145_217_532
    assert check_sha256(parts, weights.sha256, weights.size, "whisper-base") is True
    assert check_sha256(parts, weights.sha256, weights.size, "whisper-base") is False
