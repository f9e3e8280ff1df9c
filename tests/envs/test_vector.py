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


@pytest.mark.parametrize("preload", [True, False])
def test_hand_computed_rollout_of_two_envs(tmp_path, preload: bool) -> None:
    """Two clips, two envs, sequential sampling, a fixed action sequence: every
    observation ``[frame, running mean, t / T_max]``, reward and termination by hand."""
    # clip 0 (class 0, 3 steps): frames (1,2) (3,6) (5,1); running means (1,2) (2,4) (3,3)
    # clip 1 (class 1, 2 steps): frames (4,0) (2,8);       running means (4,0) (3,4)
    # T_max = 3, so the time feature of step t is t / 3; actions: 0 wait, 1 + k class k
    store = FeatureStore.create(
        tmp_path / "two",
        [
            np.array([[1, 2], [3, 6], [5, 1]], np.float32),
            np.array([[4, 0], [2, 8]], np.float32),
        ],
        [0, 1],
        ["S1", "S1"],
        ["calm", "sad"],
    )
    env = AVEmotionVectorEnv(
        num_envs=2, store=store, obs_mode="frame+mean", sampling="sequential", preload=preload
    )
    third = 1 / 3
    obs, info = env.reset(seed=0)  # env 0 on clip 0, env 1 on clip 1 (the cursor is now 2)
    assert info["clip_index"].tolist() == [0, 1]
    np.testing.assert_allclose(obs, [[1, 2, 1, 2, 0], [4, 0, 4, 0, 0]], rtol=1e-6)
    script = [
        # env 0 waits (step 1 of clip 0); env 1 answers "sad", right after 1 of 2 steps:
        # 1 - 1/2 = 0.5, and its observation stays on the step it answered at
        ([0, 2], [[3, 6, 2, 4, third], [4, 0, 4, 0, 0]], [0.0, 0.5], [False, True]),
        # env 0 waits (the last step of clip 0); env 1's action is ignored: it restarts on
        # the cursor's clip 2 % 2 = 0 with a fresh running mean, reward 0, not done
        ([0, 1], [[5, 1, 3, 3, 2 * third], [1, 2, 1, 2, 0]], [0.0, 0.0], [False, False]),
        # env 0 waits on its last step (masked): ends, reward 0; env 1 answers "sad" on
        # clip 0 (class calm): wrong, reward 0
        ([0, 2], [[5, 1, 3, 3, 2 * third], [1, 2, 1, 2, 0]], [0.0, 0.0], [True, True]),
        # both restart: env 0 on clip 3 % 2 = 1, env 1 on clip 4 % 2 = 0
        ([1, 1], [[4, 0, 4, 0, 0], [1, 2, 1, 2, 0]], [0.0, 0.0], [False, False]),
        ([0, 0], [[2, 8, 3, 4, third], [3, 6, 2, 4, third]], [0.0, 0.0], [False, False]),
        # both right after 2 steps: clip 1 earns 1 - 2/2 = 0, clip 0 earns 1 - 2/3 = 1/3
        ([2, 1], [[2, 8, 3, 4, third], [3, 6, 2, 4, third]], [0.0, third], [True, True]),
    ]
    clips = [[0, 1], [0, 0], [0, 0], [1, 0], [1, 0], [1, 0]]
    predictions = [[-1, 1], [-1, -1], [-1, 1], [-1, -1], [-1, -1], [1, 0]]  # class answered
    for (actions, want_obs, want_reward, want_done), clip, prediction in zip(
        script, clips, predictions
    ):
        obs, reward, terminated, truncated, info = env.step(np.array(actions))
        np.testing.assert_allclose(obs, want_obs, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(reward, want_reward, rtol=1e-6, atol=1e-7)
        assert terminated.tolist() == want_done and not truncated.any()
        assert info["clip_index"].tolist() == clip
        assert info["prediction"].tolist() == prediction
