"""Ray RLlib: PPO trains on ``AVEmotion-v0`` through RLlib's Gymnasium support."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

pytest.importorskip(
    "ray.rllib", reason="the ray extra is not installed (pip install 'avemotion[ray]')"
)

import ray  # noqa: E402

from avemotion.integrations.rllib import make_env, ppo_config, train_ppo  # noqa: E402


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


def test_env_creator_reads_env_config(synthetic) -> None:
    env = make_env({"store": str(synthetic.path), "speakers": synthetic.speaker_set[:1]})
    assert env.unwrapped.store.speaker_set == synthetic.speaker_set[:1]


def test_config_refuses_an_in_memory_store(synthetic) -> None:
    with pytest.raises(TypeError, match="store"):
        ppo_config({"store": synthetic})


def test_short_ppo_run(local_ray: None, synthetic) -> None:
    result = train_ppo(
        iterations=2, seed=0, env_config={"store": str(synthetic.path)}, batch_size=400
    )
    assert result["env_steps"] >= 800
    assert result["episodes"] > 0
    assert math.isfinite(result["last_return_mean"])
