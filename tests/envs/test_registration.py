"""Registration of ``AVEmotion-v0`` with Gymnasium (:mod:`avemotion.envs.registration`):
registered on import, once; registering again changes nothing and warns of nothing; its
single and vector entry points build our envs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.envs.registration import load_env_creator

import avemotion
from avemotion import FeatureStore
from avemotion.envs import AVEmotionEnv, AVEmotionVectorEnv
from avemotion.envs.registration import ENV_ID, register_envs

ENTRY_POINT = "avemotion.envs.av_emotion:AVEmotionEnv"
VECTOR_ENTRY_POINT = "avemotion.envs.vector:AVEmotionVectorEnv"


def test_env_id_and_entry_points() -> None:
    assert ENV_ID == "AVEmotion-v0"
    spec = gym.registry[ENV_ID]
    assert (spec.name, spec.version, spec.namespace) == ("AVEmotion", 0, None)
    assert spec.entry_point == ENTRY_POINT
    assert spec.vector_entry_point == VECTOR_ENTRY_POINT
    assert load_env_creator(spec.entry_point) is AVEmotionEnv
    assert load_env_creator(spec.vector_entry_point) is AVEmotionVectorEnv
    assert spec.max_episode_steps is None and spec.kwargs == {}  # the env ends its episodes


def test_registering_again_changes_nothing_and_warns_of_nothing() -> None:
    spec = gym.registry[ENV_ID]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # gymnasium warns when an id is registered over
        register_envs()
        register_envs()
    assert gym.registry[ENV_ID] is spec
    assert [key for key in gym.registry if "AVEmotion" in key] == [ENV_ID]


def test_registers_when_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the id taken out of the registry (restored after the test), one call puts it
    back with both entry points."""
    monkeypatch.delitem(gym.registry, ENV_ID)
    register_envs()
    spec = gym.registry[ENV_ID]
    assert (spec.entry_point, spec.vector_entry_point) == (ENTRY_POINT, VECTOR_ENTRY_POINT)


def test_importing_the_package_registers_it_once(tmp_path: Path) -> None:
    """In a fresh interpreter: absent before ``import avemotion``, present after, and a
    second import or call registers nothing more (no override warning)."""
    code = textwrap.dedent(
        """
        import warnings
        import gymnasium as gym
        assert "AVEmotion-v0" not in gym.registry
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import avemotion
            spec = gym.registry["AVEmotion-v0"]
            import avemotion.envs
            avemotion.envs.register_envs()
        assert gym.registry["AVEmotion-v0"] is spec
        assert not [w for w in caught if "AVEmotion-v0" in str(w.message)], caught
        print(spec.entry_point)
        """
    )
    package_root = Path(avemotion.__file__).resolve().parents[1]  # the package under test
    paths = [str(package_root), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ENTRY_POINT


def test_make_builds_our_env(tiny_store: FeatureStore) -> None:
    """The entry point takes the env's arguments: the tiny store's 8 dims and a time
    feature are one ``frame`` observation of 8 + 1 = 9 values; 3 classes + wait = 4 actions."""
    env = gym.make(ENV_ID, store=tiny_store, obs_mode="frame")
    try:
        assert isinstance(env.unwrapped, AVEmotionEnv)
        assert env.observation_space.shape == (9,)
        assert env.action_space.n == 4
        obs, _ = env.reset(seed=0)
        assert obs.shape == (9,)
    finally:
        env.close()


def test_make_vec_uses_the_native_vector_entry_point(tiny_store: FeatureStore) -> None:
    envs = gym.make_vec(
        ENV_ID,
        num_envs=2,
        vectorization_mode="vector_entry_point",
        store=tiny_store,
        obs_mode="frame",
    )
    try:
        assert isinstance(envs.unwrapped, AVEmotionVectorEnv) and envs.num_envs == 2
        obs, info = envs.reset(seed=0)
        assert obs.shape == (2, 9) and obs.dtype == np.float32
        assert info["action_mask"].shape == (2, 4)
    finally:
        envs.close()
