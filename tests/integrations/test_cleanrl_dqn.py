"""The CleanRL-style script ``experiments/cleanrl_dqn.py`` trains on Gymnasium 1.x autoreset."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "cleanrl_dqn.py"


@pytest.fixture(scope="module")
def cleanrl_dqn() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cleanrl_dqn", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["cleanrl_dqn"] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_parse_args_reads_every_config_field(cleanrl_dqn: ModuleType) -> None:
    args = cleanrl_dqn.parse_args(
        ["--total-timesteps", "123", "--learning-rate", "0.5", "--store", "x"]
    )
    assert (args.total_timesteps, args.learning_rate, args.store) == (123, 0.5, "x")
    assert args.seed == cleanrl_dqn.Args().seed


def test_every_config_field_has_a_docstring(cleanrl_dqn: ModuleType) -> None:
    source = SCRIPT.read_text()
    for field in cleanrl_dqn.dataclasses.fields(cleanrl_dqn.Args):
        after = source.split(f"    {field.name}:", 1)[1].splitlines()
        assert after[1].strip().startswith('"""'), f"{field.name} has no docstring"


def test_masked_argmax_never_picks_a_forbidden_action(cleanrl_dqn: ModuleType) -> None:
    q = torch.tensor([[5.0, 1.0, 2.0], [0.0, 9.0, 3.0]])
    mask = torch.tensor([[0, 1, 1], [1, 0, 1]], dtype=torch.int8)
    assert cleanrl_dqn.masked_argmax(q, mask).tolist() == [2, 2]


def test_short_run_learns_respects_the_mask_and_tests_every_held_out_clip(
    cleanrl_dqn: ModuleType, synthetic
) -> None:
    held_out = synthetic.speaker_set[-1]
    args = cleanrl_dqn.Args(
        store=str(synthetic.path),
        test_speakers=held_out,
        total_timesteps=4_000,
        num_envs=4,
        learning_starts=500,
        target_network_frequency=100,
        seed=0,
    )
    result = cleanrl_dqn.main(args)
    assert result["episodes"] == synthetic.subset(speakers=[held_out]).n_clips
    assert result["train_masked_waits"] == 0
    assert result["train_return_last_100"] > result["train_return_first_100"]
    assert 0.0 <= result["accuracy"] <= 1.0 and 0.0 < result["earliness"] <= 1.0
