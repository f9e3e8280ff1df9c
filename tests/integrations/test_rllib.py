"""Ray RLlib: masked PPO trains on ``AVEmotion-v0`` and learns an easy store."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from optional_extras import require_extra

require_extra("ray.rllib", "ray")

import ray  # noqa: E402
import torch  # noqa: E402
from ray.rllib.core.columns import Columns  # noqa: E402

from avemotion.envs import InvalidActionError  # noqa: E402
from avemotion.integrations.rllib import (  # noqa: E402
    MaskedPPOTorchRLModule,
    greedy_actions,
    make_env,
    ppo_config,
    train_ppo,
)


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=str(tmp_path_factory.mktemp("ray")),
        ignore_reinit_error=True,
    )
    yield
    ray.shutdown()


def test_env_creator_reads_env_config_and_carries_the_mask(synthetic) -> None:
    env = make_env({"store": str(synthetic.path), "speakers": synthetic.speaker_set[:1]})
    assert env.unwrapped.store.speaker_set == synthetic.speaker_set[:1]
    obs, info = env.reset(seed=0, options={"clip_index": 0})
    assert env.observation_space.contains(obs)
    np.testing.assert_array_equal(obs["action_mask"], info["action_mask"])
    for _ in range(int(info["clip_length"]) - 1):
        obs, *_ = env.step(0)
    assert obs["action_mask"].tolist() == [0.0] + [1.0] * synthetic.n_classes
    with pytest.raises(InvalidActionError, match="masked"):
        env.step(0)  # the forbidden last-step wait never reaches the env


def test_config_refuses_an_in_memory_store(synthetic) -> None:
    with pytest.raises(TypeError, match="store"):
        ppo_config({"store": synthetic})


def masked_module(env) -> MaskedPPOTorchRLModule:
    torch.manual_seed(0)
    return MaskedPPOTorchRLModule(
        observation_space=env.observation_space,
        action_space=env.action_space,
        model_config={"fcnet_hiddens": [16, 16]},
    )


def test_module_never_takes_a_masked_action(easy_store) -> None:
    env = make_env({"store": easy_store})
    module = masked_module(env)
    obs, _ = env.reset(seed=0)
    n = easy_store.n_classes + 1
    # Row i allows action i only; then rows that forbid just the wait, as on a last step.
    masks = np.vstack([np.eye(n), np.tile([0.0] + [1.0] * (n - 1), (200, 1))]).astype(np.float32)
    batch = {
        "observations": np.repeat(obs["observations"][None], len(masks), axis=0),
        "action_mask": masks,
    }
    greedy = greedy_actions(module, batch)
    assert greedy[:n].tolist() == list(range(n)) and (greedy[n:] != 0).all()
    tensors = {Columns.OBS: {k: torch.as_tensor(v) for k, v in batch.items()}}
    distribution = module.get_exploration_action_dist_cls()
    for forward in (module.forward_exploration, module.forward_train):
        logits = forward(dict(tensors))[Columns.ACTION_DIST_INPUTS]
        sampled = distribution.from_logits(logits).sample().numpy()
        assert sampled[:n].tolist() == list(range(n)) and (sampled[n:] != 0).all()
    assert set(tensors[Columns.OBS]) == {"observations", "action_mask"}  # batch unchanged


def test_ppo_learns_the_easy_store_and_never_takes_a_masked_action(
    local_ray: None, easy_store
) -> None:
    # The env raises on a masked action, so any masked sample would fail training itself.
    result = train_ppo(
        iterations=4,
        seed=0,
        env_config={"store": str(easy_store.path), "exclude_speakers": ["E3"]},
        test_config={"speakers": ["E3"], "exclude_speakers": None},
        batch_size=400,
        lr=1e-3,
        num_epochs=4,
    )
    assert result["env_steps"] >= 1_600
    assert result["test_episodes"] == easy_store.subset(speakers=["E3"]).n_clips
    assert result["test_masked_waits"] == 0
    # Chance is 1/3 on three classes; the first step already names the class.
    assert result["test_accuracy"] >= 0.9
    assert result["last_return_mean"] > result["first_return_mean"] + 0.2
    assert result["reward"]["name"] == "earliness"
