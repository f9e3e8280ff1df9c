"""The encoder network with hand-set weights: every output computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from avemotion.encoders.whisper import WhisperDims, WhisperEncoder

EPS = 1e-5  # LayerNorm's epsilon


def gelu(x: float) -> float:
    return x * (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0


def hand_set_encoder() -> WhisperEncoder:
    """Width 2, one head, two blocks. The convolutions give [g, 0] at every position
    (g = gelu(gelu(1))), the positions turn that into rows [1, -1] and [-1, 1]; block 1
    attends with identity query, key, value and output maps; block 2 is the identity."""
    encoder = WhisperEncoder(WhisperDims(n_state=2, n_head=1, n_layer=2, n_mels=1, n_ctx=2))
    with torch.no_grad():
        for p in encoder.parameters():
            p.zero_()
        for norm in (encoder.ln_post, *(m for b in encoder.blocks for m in (b.attn_ln, b.mlp_ln))):
            norm.weight.fill_(1.0)
        encoder.conv1.bias.copy_(torch.tensor([1.0, 0.0]))  # gelu -> [gelu(1), 0]
        encoder.conv2.weight[0, 0, 1] = 1.0  # centre tap: channel 0 -> gelu(gelu(1))
        g = gelu(gelu(1.0))
        encoder.positional_embedding.copy_(torch.tensor([[1.0 - g, -1.0], [-1.0 - g, 1.0]]))
        encoder.blocks[0].qkv.weight.copy_(torch.eye(2).repeat(3, 1))
        encoder.blocks[0].out.weight.copy_(torch.eye(2))
    return encoder.eval()


def test_hand_set_outputs() -> None:
    encoder = hand_set_encoder()
    mel = torch.tensor([[[0.3, -2.0, 7.0]]])  # 3 frames -> ceil(3 / 2) = 2 positions
    outputs = encoder.layer_outputs(mel)
    sign = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
    # Both rows normalise to +-[1, -1] / s; the scores q.k / sqrt(2) are +-sqrt(2) / s^2, so
    # a row keeps sigmoid(2 sqrt(2) / s^2) of itself: the average is tanh(sqrt(2) / s^2) / s.
    s = math.sqrt(1.0 + EPS)
    u = 1.0 + math.tanh(math.sqrt(2.0) / s**2) / s
    assert u == pytest.approx(1.888378, abs=1e-6)  # 1 + tanh(sqrt 2)
    assert outputs.shape == (3, 1, 2, 2)
    torch.testing.assert_close(outputs[0, 0], sign, atol=1e-6, rtol=0)
    torch.testing.assert_close(outputs[1, 0], u * sign, atol=1e-6, rtol=0)
    torch.testing.assert_close(outputs[2, 0], u / math.sqrt(u**2 + EPS) * sign, atol=1e-6, rtol=0)
    torch.testing.assert_close(encoder(mel), outputs[2], atol=0, rtol=0)


def test_outputs_up_to_a_layer() -> None:
    encoder, mel = hand_set_encoder(), torch.tensor([[[0.3, -2.0, 7.0]]])
    every = encoder.layer_outputs(mel)
    for up_to in range(3):
        assert torch.equal(encoder.layer_outputs(mel, up_to=up_to), every[: up_to + 1])
    with pytest.raises(ValueError, match="up_to=3, it has outputs 0..2"):
        encoder.layer_outputs(mel, up_to=3)


def test_batch_rows_are_independent() -> None:
    torch.manual_seed(0)
    encoder = WhisperEncoder(WhisperDims(n_state=8, n_head=2, n_layer=2, n_mels=4, n_ctx=8)).eval()
    mel = torch.randn(3, 4, 11)
    batched = encoder(mel)
    assert batched.shape == (3, 6, 8)
    for i in range(3):
        torch.testing.assert_close(encoder(mel[i : i + 1])[0], batched[i], atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((1, 3, 10), r"\[batch, 4, frames\]"),
        ((4, 10), r"\[batch, 4, frames\]"),
        ((1, 4, 17), "over its 16"),
    ],
)
def test_bad_input_is_one_line(shape: tuple[int, ...], message: str) -> None:
    encoder = WhisperEncoder(WhisperDims(n_state=8, n_head=2, n_layer=1, n_mels=4, n_ctx=8))
    with pytest.raises(ValueError, match=message) as error:
        encoder(torch.zeros(shape))
    assert "\n" not in str(error.value)
