"""The single env: checkers, semantics, masks, seeding, pickling and a random-action fuzz."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import avemotion
from avemotion import FeatureStore
from avemotion.envs import AVEmotionEnv, InvalidActionError
from avemotion.envs.vector import AVEmotionVectorEnv


def tiny_store(path: Path) -> FeatureStore:
    sequences = [
        np.full((3, 2), i, dtype=np.float32) + np.arange(3, dtype=np.float32)[:, None]
        for i in range(4)
    ]
    return FeatureStore.create(
        path, sequences, [0, 1, 1, 0], ["a", "a", "b", "b"], ["neutral", "happy"]
    )


@pytest.mark.parametrize("obs_mode", ["frame", "mean", "frame+mean"])
def test_checkers_pass_without_warnings(synthetic: FeatureStore, obs_mode: str) -> None:
    env = gym.make("AVEmotion-v0", store=synthetic, obs_mode=obs_mode, render_mode="ansi").unwrapped
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(env, skip_render_check=False)
        sb3_check_env(env, warn=True)


def test_registration_forms() -> None:
    assert "AVEmotion-v0" in gym.registry
    avemotion.envs.register_envs()  # idempotent
    env = gym.make("avemotion:AVEmotion-v0")
    assert env.unwrapped.store.meta["corpus"] == "synthetic"
    assert isinstance(gym.make("AVEmotion-v0").unwrapped, AVEmotionEnv)


def test_episode_semantics(tmp_path: Path) -> None:
    env = AVEmotionEnv(
        store=tiny_store(tmp_path / "s"), obs_mode="frame+mean", reward="signed", wait_cost=0.25
    )
    obs, info = env.reset(options={"clip_index": 1})
    assert set(info) == {
        "label",
        "frame_index",
        "clip_index",
        "speaker",
        "clip_length",
        "prediction",
        "action_mask",
    }
    assert all(isinstance(v, (np.generic, np.ndarray)) for v in info.values())
    np.testing.assert_allclose(obs, [1, 1, 1, 1, 0])  # frame, running mean, t / T_max
    obs, reward, terminated, truncated, info = env.step(0)
    assert (reward, terminated, truncated) == (-0.25, False, False) and type(terminated) is bool
    np.testing.assert_allclose(obs, [2, 2, 1.5, 1.5, 1 / 3], rtol=1e-6)
    env.step(0)
    assert env.action_masks().tolist() == [False, True, True]
    assert info["action_mask"].dtype == np.int8
    obs, reward, terminated, _, info = env.step(2)  # clip 1 is "happy" = class 1 -> action 2
    assert (reward, terminated, int(info["prediction"])) == (1.0, True, 1)
    with pytest.raises(RuntimeError, match="after the episode ended"):
        env.step(0)


@pytest.mark.parametrize("vector", [False, True])
def test_earliness_reward_by_hand(tmp_path: Path, vector: bool) -> None:
    """Default reward: a correct answer after t of T steps earns 1 - w t / T; wrong, wait 0."""
    store = FeatureStore.create(
        tmp_path / "one", [np.zeros((3, 2), np.float32)], [1], ["a"], ["neutral", "happy"]
    )
    if vector:
        env = AVEmotionVectorEnv(num_envs=1, store=store, earliness_weight=0.6)
        env.reset(seed=0)

        def step(action: int) -> tuple[float, bool]:
            _, reward, terminated, _, _ = env.step(np.array([action]))
            if terminated[0]:
                env.step(np.array([0]))  # NEXT_STEP autoreset: the restart transition
            return float(reward[0]), bool(terminated[0])
    else:
        single = AVEmotionEnv(store=store, earliness_weight=0.6)
        single.reset(seed=0)

        def step(action: int) -> tuple[float, bool]:
            _, reward, terminated, _, _ = single.step(action)
            if terminated:
                single.reset()
            return float(reward), terminated

    episodes = [[2], [0, 2], [0, 0, 2], [0, 1]]  # action 2 = "happy" (right), 1 = wrong
    rewards = [step(a)[0] for episode in episodes for a in episode]
    expected = [1 - 0.6 / 3, 0.0, 1 - 0.6 * 2 / 3, 0.0, 0.0, 1 - 0.6, 0.0, 0.0]
    np.testing.assert_allclose(rewards, expected, rtol=1e-6)


def test_wrong_answer_and_masked_wait(tmp_path: Path) -> None:
    env = AVEmotionEnv(
        store=tiny_store(tmp_path / "s"),
        reward="signed",
        reward_wrong=-2.0,
        masked_wait_reward=-3.0,
    )
    env.reset(options={"clip_index": 0})
    _, reward, terminated, _, info = env.step(2)
    assert (reward, terminated, int(info["prediction"])) == (-2.0, True, 1)
    env.reset(options={"clip_index": 0})
    env.step(0)
    env.step(0)
    _, reward, terminated, _, info = env.step(
        0
    )  # waiting on the last step: masked, scored as documented
    assert (reward, terminated, int(info["prediction"])) == (-3.0, True, -1)


@pytest.mark.parametrize("action", [7, -1, 1.5, "1", None, True, np.array([1, 2])])
def test_bad_actions_raise(synthetic: FeatureStore, action: object) -> None:
    env = AVEmotionEnv(store=synthetic)
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match="action"):
        env.step(action)


def test_numpy_integer_actions_accepted(synthetic: FeatureStore) -> None:
    # Each numpy form must act exactly as the same Python int does on a twin env.
    numpy_env, int_env = (AVEmotionEnv(store=synthetic, reward="earliness") for _ in range(2))
    numpy_env.reset(seed=0, options={"clip_index": 3})
    int_env.reset(seed=0, options={"clip_index": 3})
    label = int(synthetic.labels[3])
    for numpy_action, int_action in [
        (np.int64(0), 0),
        (np.array(0), 0),
        (np.int32(label + 1), label + 1),
    ]:
        got, expected = numpy_env.step(numpy_action), int_env.step(int_action)
        np.testing.assert_array_equal(got[0], expected[0])
        assert got[1:4] == expected[1:4]
        assert int(got[4]["frame_index"]) == int(expected[4]["frame_index"])
    assert int(got[4]["frame_index"]) == 2 and int(got[4]["prediction"]) == label
    assert got[1] == pytest.approx(1.0 - 3 / int(synthetic.lengths[3]))  # correct after 3 steps


def test_bad_arguments(tmp_path: Path, synthetic: FeatureStore) -> None:
    with pytest.raises(ValueError, match="obs_mode"):
        AVEmotionEnv(store=synthetic, obs_mode="pixels")
    with pytest.raises(ValueError, match="sampling"):
        AVEmotionEnv(store=synthetic, sampling="shuffled")
    with pytest.raises(TypeError, match="store"):
        AVEmotionEnv(store=42)
    with pytest.raises(avemotion.StoreError, match="meta.json"):
        AVEmotionEnv(store=tmp_path)


def test_wrong_dtype_store_raises(synthetic: FeatureStore) -> None:
    bad = FeatureStore(
        synthetic.path, synthetic.frames.astype(np.float64), *synthetic._full, synthetic.meta
    )
    with pytest.raises(TypeError, match="float32"):
        AVEmotionEnv(store=bad)


def test_speaker_selection(synthetic: FeatureStore) -> None:
    env = AVEmotionEnv(store=synthetic, speakers=["S01", "S02"])
    assert set(env.store.speakers) == {"S01", "S02"}
    env = AVEmotionEnv(store=synthetic, exclude_speakers=["S01"])
    assert "S01" not in env.store.speakers


def rollout(env: gym.Env, seed: int, steps: int) -> list[tuple]:
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    trace = []
    for _ in range(steps):
        action = int(env.action_space.sample(mask=info["action_mask"]))
        obs, reward, terminated, truncated, info = env.step(action)
        trace.append((obs.tobytes(), reward, terminated, truncated, int(info["clip_index"])))
        if terminated or truncated:
            obs, info = env.reset()
    return trace


def test_same_seed_same_rollout(synthetic: FeatureStore) -> None:
    first = rollout(gym.make("AVEmotion-v0", store=synthetic), seed=3, steps=500)
    second = rollout(gym.make("AVEmotion-v0", store=synthetic), seed=3, steps=500)
    other = rollout(gym.make("AVEmotion-v0", store=synthetic), seed=4, steps=500)
    assert first == second
    assert first != other


def test_pickling_keeps_state(synthetic: FeatureStore) -> None:
    env = AVEmotionEnv(store=synthetic)
    env.reset(seed=1)
    env.step(0)
    clone = pickle.loads(pickle.dumps(env))
    a = env.step(0)
    b = clone.step(0)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1:4] == b[1:4]


def test_sequential_sampling_covers_each_clip_once(synthetic: FeatureStore) -> None:
    env = AVEmotionEnv(store=synthetic.subset(speakers=["S03"]), sampling="sequential")
    seen = []
    _, info = env.reset(seed=0)
    for _ in range(env.store.n_clips):
        seen.append(int(info["clip_index"]))
        env.step(1)
        _, info = env.reset()
    assert sorted(seen) == list(range(env.store.n_clips))


def test_time_limit_is_the_only_truncation(synthetic: FeatureStore) -> None:
    env = gym.make("AVEmotion-v0", store=synthetic, max_episode_steps=5)
    env.reset(seed=0)
    results = [env.step(0) for _ in range(5)]
    assert [r[3] for r in results] == [False] * 4 + [True]


def test_random_action_fuzz_keeps_invariants(synthetic: FeatureStore) -> None:
    """100k random steps (mask ignored 1 % of the time): obs in space, masks valid, episodes <= clip."""
    env = AVEmotionEnv(store=synthetic, obs_mode="frame+mean")
    rng = np.random.default_rng(0)
    obs, info = env.reset(seed=0)
    length = 0
    for _ in range(100_000):
        mask = info["action_mask"]
        assert mask[1:].all() and mask[0] == (info["frame_index"] < info["clip_length"] - 1)
        if rng.random() < 0.01:
            action = int(rng.integers(env.action_space.n))
        else:
            action = (
                0 if (mask[0] and rng.random() < 0.95) else int(rng.integers(1, env.action_space.n))
            )
        obs, reward, terminated, truncated, info = env.step(action)
        length += 1
        assert env.observation_space.contains(obs)
        assert not truncated and length <= info["clip_length"]
        if terminated:
            obs, info = env.reset()
            length = 0


def test_fixed_max_length_sets_the_time_feature(tmp_path: Path) -> None:
    store = tiny_store(tmp_path / "s")
    for preload in (True, False):
        env = AVEmotionEnv(store=store, obs_mode="frame", max_length=2, preload=preload)
        obs, _ = env.reset(options={"clip_index": 0})
        assert obs[-1] == 0.0
        assert env.step(0)[0][-1] == 0.5
        assert env.step(0)[0][-1] == 1.0  # t = 2 saturates at 1, inside the Box
        assert env.observation_space.contains(env._last_obs())
    with pytest.raises(ValueError, match="max_length"):
        AVEmotionEnv(store=store, max_length=0)
