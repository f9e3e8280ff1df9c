"""``--device``: auto follows torch's view of CUDA; cuda without CUDA is one clear error."""

from __future__ import annotations

import argparse

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
