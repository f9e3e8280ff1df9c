"""TorchRL: ``GymEnv("AVEmotion-v0")`` passes ``check_env_specs``; DQN trains with TorchRL's parts."""

from __future__ import annotations

import pytest

pytest.importorskip(
    "torchrl", reason="the torchrl extra is not installed (pip install 'avemotion[torchrl]')"
)

import torch  # noqa: E402
from torchrl.envs import GymEnv  # noqa: E402
from torchrl.envs.utils import check_env_specs  # noqa: E402

from avemotion.integrations.torchrl import make_env, make_q_policy, train_dqn  # noqa: E402


def test_plain_gym_env_passes_check_env_specs() -> None:
    check_env_specs(GymEnv("AVEmotion-v0"))


def test_adapted_env_reads_the_mask_and_labels_and_passes_check_env_specs(synthetic) -> None:
    env = make_env(store=synthetic)
    check_env_specs(env)
    td = env.rollout(5)
    assert td["action_mask"].dtype == torch.bool
    assert td["action_mask"].shape == (len(td), synthetic.n_classes + 1)
    assert set(td["label"].tolist()) <= set(range(synthetic.n_classes))


def test_q_policy_picks_only_allowed_actions(synthetic) -> None:
    env = make_env(store=synthetic)
    policy = make_q_policy(env)
    td = env.reset()
    for allowed in range(synthetic.n_classes + 1):
        td["action_mask"] = torch.zeros(synthetic.n_classes + 1, dtype=torch.bool)
        td["action_mask"][allowed] = True
        assert int(policy(td)["action"].argmax()) == allowed


def test_short_dqn_run_trains(synthetic) -> None:
    result = train_dqn(total_frames=2_000, seed=0, store=synthetic)
    assert result["frames"] == 2_000
    assert result["masked_waits"] == 0
    assert result["last_loss"] < result["first_loss"]
    assert result["last_batch_reward"] > result["first_batch_reward"]
