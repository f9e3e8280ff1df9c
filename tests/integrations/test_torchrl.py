"""TorchRL: ``GymEnv("AVEmotion-v0")`` passes ``check_env_specs``; DQN trains with TorchRL's parts."""

from __future__ import annotations

import pytest
from optional_extras import require_extra

require_extra("torchrl", "torchrl")

import torch  # noqa: E402
from torchrl.envs import GymEnv  # noqa: E402
from torchrl.envs.utils import check_env_specs  # noqa: E402

from avemotion.integrations.torchrl import (  # noqa: E402
    make_dqn_loss,
    make_env,
    make_q_policy,
    train_dqn,
)


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


def constant_q_policy(env, q_values: list[float]):
    """A :func:`make_q_policy` policy whose Q-values are ``q_values`` whatever the observation."""
    policy = make_q_policy(env)
    policy(env.reset())  # materialises the lazy layers
    layers = [m for m in policy.modules() if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        for layer in layers:
            layer.weight.zero_()
            layer.bias.zero_()
        layers[-1].bias.copy_(torch.tensor(q_values))
    return policy


def wait_while_allowed(td):
    """Wait (action 0) whenever the mask allows it, else answer class 0 (action 1)."""
    action = torch.zeros_like(td["action_mask"], dtype=torch.int64)
    action[..., 0 if bool(td["action_mask"][0]) else 1] = 1
    td["action"] = action
    return td


def test_dqn_target_never_bootstraps_the_masked_last_step_wait(easy_store) -> None:
    # Q = [10, 1, 2, 3]: the wait has the largest value, but on a clip's last step it is
    # forbidden, so the target after the wait into it is r + gamma * 3, not r + gamma * 10.
    env = make_env(store=easy_store)
    loss_module = make_dqn_loss(constant_q_policy(env, [10.0, 1.0, 2.0, 3.0]), env, gamma=0.5)
    episode = env.rollout(20, policy=wait_while_allowed, break_when_any_done=True)
    length = int(episode["clip_length"][0])
    assert len(episode) == length  # waits through the clip, answers on its last step
    assert episode["next", "action_mask"][:, 0].tolist() == [True] * (length - 2) + [False] * 2
    targets = loss_module.value_estimator.value_estimate(
        episode.clone(), target_params=loss_module.target_value_network_params
    ).squeeze(-1)
    # Waits earn 0 under the earliness reward; the last step ends the episode (no bootstrap).
    last_reward = float(episode["next", "reward"][-1])
    expected = [0.5 * 10.0] * (length - 2) + [0.5 * 3.0, last_reward]
    assert targets.tolist() == pytest.approx(expected)


def test_short_dqn_run_learns_the_easy_store(easy_store) -> None:
    result = train_dqn(total_frames=2_000, seed=0, store=easy_store)
    assert result["frames"] == 2_000
    assert result["masked_waits"] == 0
    assert result["last_loss"] < result["first_loss"]
    # Random answers earn about 0.15 a step here; answering right and early earns far more.
    assert result["last_batch_reward"] > result["first_batch_reward"] + 0.2
    assert result["reward"]["name"] == "earliness" and result["reward"]["earliness_weight"] == 1.0
