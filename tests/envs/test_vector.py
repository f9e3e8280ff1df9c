"""The native vector env: make_vec modes, pinned NEXT_STEP autoreset, agreement with the single env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from avemotion import FeatureStore
from avemotion.envs import AVEmotionEnv, AVEmotionVectorEnv, InvalidActionError


@pytest.mark.parametrize("mode", ["sync", "async", "vector_entry_point"])
def test_make_vec_modes(synthetic: FeatureStore, mode: str) -> None:
    envs = gym.make_vec(
        "AVEmotion-v0",
        num_envs=3,
        vectorization_mode=mode,
        store=str(synthetic.path),
        obs_mode="frame",
    )
    try:
        obs, info = envs.reset(seed=0)
        assert obs.shape == (3, synthetic.dim + 1) and obs.dtype == np.float32
        assert info["action_mask"].shape == (3, synthetic.n_classes + 1)
        obs, reward, terminated, truncated, info = envs.step(np.zeros(3, dtype=np.int64))
        assert obs.shape == (3, synthetic.dim + 1) and reward.shape == (3,)
        assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
        if mode == "vector_entry_point":
            assert isinstance(envs, AVEmotionVectorEnv)
    finally:
        envs.close()


def test_next_step_autoreset_is_pinned(synthetic: FeatureStore) -> None:
    env = AVEmotionVectorEnv(num_envs=2, store=synthetic, obs_mode="frame", sampling="sequential")
    obs, info = env.reset(seed=0)
    assert info["clip_index"].tolist() == [0, 1]
    label0 = int(info["label"][0])
    obs, reward, terminated, truncated, info = env.step(np.array([label0 + 1, 0]))
    # a correct answer after 1 of the clip's T steps earns 1 - 1 / T
    expected = np.float32(1 - 1 / synthetic.lengths[0])
    assert terminated.tolist() == [True, False] and reward[0] == expected
    assert info["clip_index"][0] == 0  # the done step still shows the finished clip
    # Next step: sub-env 0's action is ignored, it restarts on the next clip with reward 0.
    obs, reward, terminated, truncated, info = env.step(np.array([3, 0]))
    assert reward[0] == 0.0 and not terminated[0] and not truncated[0]
    assert info["clip_index"].tolist() == [2, 1] and info["frame_index"].tolist() == [0, 2]
    np.testing.assert_array_equal(obs[0, :-1], synthetic.clip(2).frames[0])
    assert obs[0, -1] == 0.0


def test_vector_truncation(synthetic: FeatureStore) -> None:
    env = AVEmotionVectorEnv(num_envs=2, store=synthetic, max_episode_steps=3)
    env.reset(seed=0)
    flags = [env.step(np.zeros(2, dtype=np.int64))[3].tolist() for _ in range(4)]
    assert flags == [[False, False], [False, False], [True, True], [False, False]]


@pytest.mark.parametrize("obs_mode", ["frame", "mean", "frame+mean"])
@pytest.mark.parametrize("preload", [True, False])
def test_vector_matches_single_env(synthetic: FeatureStore, obs_mode: str, preload: bool) -> None:
    """Each sub-env sees exactly what a single env on the same clip and actions sees."""
    n = 4
    vec = AVEmotionVectorEnv(
        num_envs=n, store=synthetic, obs_mode=obs_mode, sampling="sequential", preload=preload
    )
    singles = [
        AVEmotionEnv(store=synthetic, obs_mode=obs_mode, preload=not preload) for _ in range(n)
    ]
    rng = np.random.default_rng(0)
    obs, info = vec.reset(seed=0)
    expected = [
        s.reset(options={"clip_index": int(c)})[0] for s, c in zip(singles, info["clip_index"])
    ]
    restart = np.zeros(n, dtype=bool)
    for _ in range(400):
        np.testing.assert_allclose(obs, np.stack(expected), rtol=1e-6, atol=1e-6)
        actions = np.where(rng.random(n) < 0.9, 0, rng.integers(1, vec.n_classes + 1, size=n))
        actions = np.where(info["action_mask"][:, 0] == 1, actions, 1)
        obs, reward, terminated, truncated, info = vec.step(actions)
        for i, single in enumerate(singles):
            if restart[i]:
                expected[i], _ = single.reset(options={"clip_index": int(info["clip_index"][i])})
                assert reward[i] == 0.0
            else:
                expected[i], r, term, _, _ = single.step(int(actions[i]))
                assert np.isclose(reward[i], r) and term == terminated[i]
        restart = terminated | truncated


def test_bad_actions_raise(synthetic: FeatureStore) -> None:
    env = AVEmotionVectorEnv(num_envs=2, store=synthetic)
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(np.zeros(2, dtype=np.int64))
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match="shape"):
        env.step(np.zeros(3, dtype=np.int64))
    with pytest.raises(InvalidActionError, match="integers"):
        env.step(np.zeros(2))
    with pytest.raises(InvalidActionError, match="-1 is out of range"):
        env.step(np.array([0, -1]))
    with pytest.raises(InvalidActionError, match="7 is out of range"):
        env.step(np.array([7, 0]))


def test_same_seed_same_rollout(synthetic: FeatureStore) -> None:
    def trace(seed: int) -> list[bytes]:
        env = gym.make_vec("AVEmotion-v0", num_envs=8, store=synthetic)
        obs, info = env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(200):
            actions = np.where(
                info["action_mask"][:, 0] & (rng.random(8) < 0.9), 0, rng.integers(1, 7, size=8)
            )
            obs, reward, terminated, truncated, info = env.step(actions)
            out.append(obs.tobytes() + reward.tobytes() + terminated.tobytes())
        return out

    assert trace(5) == trace(5)
    assert trace(5) != trace(6)


def test_vector_fuzz_keeps_invariants(synthetic: FeatureStore) -> None:
    """100k env-steps of random actions (masks sometimes ignored)."""
    n = 100
    env = AVEmotionVectorEnv(num_envs=n, store=synthetic, obs_mode="frame+mean")
    obs, info = env.reset(seed=1)
    rng = np.random.default_rng(1)
    episode_steps = np.zeros(n, dtype=np.int64)
    done = np.zeros(n, dtype=bool)
    for _ in range(1_000):
        assert env.observation_space.contains(obs)
        mask = info["action_mask"]
        assert (mask[:, 1:] == 1).all() and (
            mask[:, 0] == (info["frame_index"] < info["clip_length"] - 1)
        ).all()
        actions = np.where(rng.random(n) < 0.9, 0, rng.integers(1, 7, size=n))
        obs, reward, terminated, truncated, info = env.step(actions)
        episode_steps = np.where(done, 0, episode_steps + 1)
        assert (episode_steps <= info["clip_length"]).all() and not truncated.any()
        assert (reward[done] == 0).all()
        done = terminated | truncated
