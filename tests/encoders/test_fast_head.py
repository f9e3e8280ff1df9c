"""The fusion DNN and the LSTM step on ONNX Runtime (:mod:`avemotion.encoders.fast_head`):
an LSTM step and a fusion embedding computed by hand, equality with the torch modules of a
tiny encoder within 1e-5, and which runners :func:`head_runners` gives on each path."""

from __future__ import annotations

import math

import pytest
import torch
from optional_extras import require_extra

from avemotion.encoders import fast_head
from avemotion.encoders.bundle import Encoder
from avemotion.encoders.fast_head import TemporalRunner, head_runners
from avemotion.encoders.models import FusionNet, TemporalNet

require_extra("onnxruntime", "onnx")

CLASSES = ["neutral", "happy", "sad"]


def _tiny_encoder(fusion: bool = True, temporal: bool = True) -> Encoder:
    """A tiny encoder of only the heads: fusion 6 → 8 → 8 (→ 3 classes), LSTM 8 → 4 (→ 3),
    seeded, with batch-norm statistics away from 0 and 1 so that folding them matters."""
    torch.manual_seed(0)
    nets: dict[str, torch.nn.Module] = {}
    if fusion:
        net = FusionNet(len(CLASSES), in_dim=6, hidden=8)
        for norm in (net.input_norm, net.body[1], net.body[4]):
            norm.running_mean.uniform_(-1.0, 1.0)
            norm.running_var.uniform_(0.5, 2.0)
            norm.weight.data.uniform_(0.5, 1.5)
            norm.bias.data.uniform_(-0.5, 0.5)
        nets["fusion"] = net
    if temporal:
        nets["temporal"] = TemporalNet(len(CLASSES), in_dim=8, hidden=4)
    return Encoder({"class_names": CLASSES}, nets)  # puts the nets in eval mode


def _hand_lstm() -> TemporalNet:
    """An LSTM whose step is computed by hand: every weight 0, gate biases (i, f, g, o) =
    (0, 0, 0, ln 3), head weights 0 and head biases (ln 3, 0)."""
    net = TemporalNet(2, in_dim=2, hidden=1)
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.zero_()
        net.lstm.bias_ih_l0.copy_(torch.tensor([0.0, 0.0, 0.0, math.log(3.0)]))
        net.head.bias.copy_(torch.tensor([math.log(3.0), 0.0]))
    return net.eval()


def test_temporal_runner_step_by_hand() -> None:
    """With c = ln 4: f = σ(0) = 1/2, g = tanh(0) = 0, so c' = f·c + i·g = ln 2;
    o = σ(ln 3) = 3/4, so h' = o·tanh(ln 2) = 3/4 · (4 − 1)/(4 + 1) = 0.45.
    Logits (ln 3, 0): softmax = (3/4, 1/4). Output: h' ⊕ posteriors = (0.45, 0.75, 0.25)."""
    runner = TemporalRunner(_hand_lstm())
    h = torch.zeros(1, 1, 1)
    c = torch.full((1, 1, 1), math.log(4.0))
    y, (h2, c2) = runner(torch.tensor([[5.0, -3.0]]), (h, c))
    torch.testing.assert_close(y, torch.tensor([[0.45, 0.75, 0.25]]), atol=1e-6, rtol=0)
    torch.testing.assert_close(h2, torch.full((1, 1, 1), 0.45), atol=1e-6, rtol=0)
    torch.testing.assert_close(c2, torch.full((1, 1, 1), math.log(2.0)), atol=1e-6, rtol=0)


def test_temporal_runner_starts_from_zeros() -> None:
    """State None is the zero state: c' = 1/2 · 0 + 0 = 0, h' = 3/4 · tanh(0) = 0, and the
    posteriors are still (3/4, 1/4)."""
    y, (h2, c2) = TemporalRunner(_hand_lstm())(torch.tensor([[1.0, 2.0]]), None)
    torch.testing.assert_close(y, torch.tensor([[0.0, 0.75, 0.25]]), atol=1e-6, rtol=0)
    assert h2.shape == c2.shape == (1, 1, 1)
    assert float(h2.abs().max()) < 1e-6 and float(c2.abs().max()) < 1e-6


def test_fusion_runner_embedding_by_hand() -> None:
    """Batch norms with eps 0: the input norm's mean (1, 2) and variance (4, 4) take
    x = (3, 0) to ((3 − 1)/2, (0 − 2)/2) = (1, −1); the first layer is the identity, its
    norm too (mean 0, var 1): ReLU → (1, 0); the second layer [[2, 0], [−1, 0]] gives
    (2, −1), ReLU → (2, 0)."""
    net = FusionNet(2, in_dim=2, hidden=2)
    with torch.no_grad():
        for norm in (net.input_norm, net.body[1], net.body[4]):
            norm.eps = 0.0
        net.input_norm.running_mean.copy_(torch.tensor([1.0, 2.0]))
        net.input_norm.running_var.copy_(torch.tensor([4.0, 4.0]))
        net.body[0].weight.copy_(torch.eye(2))
        net.body[0].bias.zero_()
        net.body[3].weight.copy_(torch.tensor([[2.0, 0.0], [-1.0, 0.0]]))
        net.body[3].bias.zero_()
    encoder = Encoder({"class_names": ["a", "b"]}, {"fusion": net})
    runners = head_runners(encoder, "fast")
    assert set(runners) == {"fusion"}  # no LSTM, no temporal runner
    embedding = runners["fusion"](torch.tensor([[3.0, 0.0]]))
    torch.testing.assert_close(embedding, torch.tensor([[2.0, 0.0]]), atol=1e-6, rtol=0)


def test_fusion_runner_equals_the_torch_embedding() -> None:
    encoder = _tiny_encoder()
    runner = head_runners(encoder, "fast")["fusion"]
    assert runner.backend == "onnxruntime"
    generator = torch.Generator().manual_seed(1)
    for _ in range(3):
        x = torch.randn(1, 6, generator=generator)
        with torch.no_grad():
            expected = encoder.fusion.embed(x)  # type: ignore[union-attr]
        got = runner(x)
        assert got.shape == (1, 8) and got.dtype == torch.float32
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_temporal_runner_follows_the_torch_lstm_over_a_stream() -> None:
    """Three steps from the zero state, each runner fed its own state: outputs and states
    equal ``Encoder.temporal_step`` within 1e-5 at every step."""
    encoder = _tiny_encoder()
    runner = head_runners(encoder, "fast")["temporal"]
    assert isinstance(runner, TemporalRunner) and runner.backend == "onnxruntime"
    generator = torch.Generator().manual_seed(2)
    torch_state = runner_state = None
    for _ in range(3):
        x = torch.randn(1, 8, generator=generator)
        expected, torch_state = encoder.temporal_step(x, torch_state)
        got, runner_state = runner(x, runner_state)
        assert got.shape == (1, 4 + 3)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
        for mine, theirs in zip(runner_state, torch_state, strict=True):
            torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=0)
    assert float(got[0, 4:].sum()) == pytest.approx(1.0, abs=1e-6)  # posteriors sum to one


@pytest.mark.parametrize("path", ["fast", "int8"])
def test_fast_and_int8_paths_run_both_heads_on_onnxruntime(path: str) -> None:
    """The heads stay in float on int8 too: the same outputs as torch."""
    encoder = _tiny_encoder()
    runners = head_runners(encoder, path)
    assert set(runners) == {"fusion", "temporal"}
    assert {runner.backend for runner in runners.values()} == {"onnxruntime"}
    x = torch.randn(1, 6, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(
            runners["fusion"](x),
            encoder.fusion.embed(x),  # type: ignore[union-attr]
            atol=1e-5,
            rtol=0,
        )


def test_fp32_path_leaves_both_heads_to_torch() -> None:
    """On fp32 the encoder's own torch modules run the heads (the default path)."""
    assert head_runners(_tiny_encoder(), "fp32") == {}
    assert head_runners(_tiny_encoder()) == {}


def test_only_the_parts_the_encoder_has_get_runners() -> None:
    assert set(head_runners(_tiny_encoder(fusion=False), "fast")) == {"temporal"}
    assert set(head_runners(_tiny_encoder(temporal=False), "fast")) == {"fusion"}
    assert head_runners(_tiny_encoder(fusion=False, temporal=False), "fast") == {}


def test_without_onnxruntime_torch_runs_the_heads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fast_head, "onnxruntime_available", lambda: False)
    assert head_runners(_tiny_encoder(), "fast") == {}
    assert head_runners(_tiny_encoder(), "int8") == {}
