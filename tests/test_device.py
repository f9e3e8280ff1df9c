"""``--device``: auto follows torch's view of CUDA; cuda without CUDA is one clear error."""

from __future__ import annotations

import argparse
import copy

import pytest
import torch

from avemotion.device import add_device_argument, resolve_device


def test_cpu_is_always_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("cpu") == torch.device("cpu")


def test_auto_picks_cuda_only_when_present(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda") == torch.device("cuda")


def test_cuda_without_cuda_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError) as error:
        resolve_device("cuda")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("--device cuda: CUDA is not available")


def test_unknown_spelling_is_rejected() -> None:
    with pytest.raises(ValueError, match="--device gpu: choose one of auto, cpu, cuda"):
        resolve_device("gpu")


def test_argument_defaults_to_auto() -> None:
    parser = argparse.ArgumentParser()
    add_device_argument(parser)
    assert parser.parse_args([]).device == "auto"
    assert parser.parse_args(["--device", "cpu"]).device == "cpu"


def test_nets_on_the_cpu_are_left_as_they_are() -> None:
    """place_on("cpu") moves nothing and hooks nothing; the device helpers find the first
    tensor of nested arguments."""
    from torch import nn

    from avemotion.device import _device_of, _move, place_on

    net = nn.Sequential(nn.Linear(3, 2))
    net.head = nn.Linear(2, 2)
    place_on({"visual": net}, "cpu")
    assert not net.head._forward_pre_hooks and not net.head._forward_hooks
    assert _device_of((None, [torch.zeros(1)])) == torch.device("cpu")
    assert _device_of(("text", 3)) == torch.device("cpu")
    moved = _move((torch.ones(2), [torch.zeros(1)], None), torch.device("cpu"))
    assert isinstance(moved, tuple) and isinstance(moved[1], list) and moved[2] is None


def test_bridge_keeps_values_and_gradients() -> None:
    """The bridge (forced on the CPU, as CI has no GPU) changes neither outputs nor
    gradients, for ``forward`` and a recurrent ``step``."""
    from torch import nn

    from avemotion.agents.dqn.dqn import DQNConfig, make_q_network
    from avemotion.device import bridge

    torch.manual_seed(0)
    plain = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    bridged = bridge(copy.deepcopy(plain), "cpu", always=True)
    assert bridged._forward_pre_hooks and bridged._forward_hooks
    x = torch.randn(5, 3)
    for net in (plain, bridged):
        net(x).pow(2).sum().backward()
    torch.testing.assert_close(bridged(x), plain(x))
    for a, b in zip(plain.parameters(), bridged.parameters()):
        torch.testing.assert_close(a.grad, b.grad)
    config = DQNConfig(
        recurrent="gru", obs_mode="frame", hidden=(4,), frontend="raw", q_head="free"
    )
    recurrent = make_q_network(config, 5, 3, 4)
    twin = bridge(copy.deepcopy(recurrent), "cpu", always=True)
    obs = torch.randn(2, 5)
    q1, h1 = recurrent.step(obs, recurrent.zero_state(2))
    q2, h2 = twin.step(obs, twin.zero_state(2))
    torch.testing.assert_close(q1, q2)
    torch.testing.assert_close(h1, h2)


def test_train_cli_refuses_cuda_without_cuda(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from avemotion.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["train", "--device", "cuda", "--steps", "10", "--out", "/nonexistent/run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "avemotion train: error: --device cuda: CUDA is not available on this machine "
        "(torch.cuda.is_available() is False)"
    ]
