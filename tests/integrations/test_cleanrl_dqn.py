"""The CleanRL-style script ``experiments/cleanrl_dqn.py`` trains on Gymnasium 1.x autoreset."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
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


class AnswerFirstClass(torch.nn.Module):
    """A Q-network stand-in that always prefers class 0 (action 1): it answers on step one."""

    def __init__(self, n_actions: int) -> None:
        super().__init__()
        self.q = torch.zeros(n_actions)
        self.q[1] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.q.expand(len(x), -1)


def test_evaluate_scores_every_held_out_clip_as_hand_computed(
    cleanrl_dqn: ModuleType, easy_store
) -> None:
    held_out = easy_store.subset(speakers=["E3"])
    result = cleanrl_dqn.evaluate(AnswerFirstClass(4), easy_store, ["E3"], reward="earliness")
    first_class = held_out.labels == 0
    one_step = 1.0 / held_out.lengths
    assert result["episodes"] == held_out.n_clips == 24
    assert result["accuracy"] == pytest.approx(first_class.mean()) == pytest.approx(1 / 3)
    assert result["earliness"] == pytest.approx(one_step.mean())
    assert result["mean_return"] == pytest.approx(np.mean(first_class * (1.0 - one_step)))
    signed = cleanrl_dqn.evaluate(AnswerFirstClass(4), easy_store, ["E3"], reward="signed")
    assert signed["mean_return"] == pytest.approx(np.mean(np.where(first_class, 1.0, -1.0)))


def test_reward_arguments_reach_the_env(cleanrl_dqn: ModuleType) -> None:
    assert cleanrl_dqn.reward_kwargs(cleanrl_dqn.parse_args([])) == {}
    args = cleanrl_dqn.parse_args(["--reward", "earliness", "--earliness-weight", "0.5"])
    assert cleanrl_dqn.reward_kwargs(args) == {"reward": "earliness", "earliness_weight": 0.5}
    with pytest.raises(SystemExit):
        cleanrl_dqn.parse_args(["--reward", "accuracy"])


def test_short_run_learns_the_easy_store_and_respects_the_mask(
    cleanrl_dqn: ModuleType, easy_store
) -> None:
    args = cleanrl_dqn.Args(
        store=str(easy_store.path),
        test_speakers="E3",
        total_timesteps=3_000,
        num_envs=4,
        learning_starts=500,
        target_network_frequency=100,
        seed=0,
    )
    result = cleanrl_dqn.main(args)
    assert result["episodes"] == easy_store.subset(speakers=["E3"]).n_clips
    assert result["train_masked_waits"] == 0
    assert result["train_return_last_100"] > result["train_return_first_100"]
    # Chance is 1/3 on three classes; the first step already names the class.
    assert result["accuracy"] >= 0.9
    assert result["reward"]["name"] == "earliness"  # the env's default reward
