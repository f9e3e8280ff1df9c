"""Bad actions on ``AVEmotion-v0`` and its vector env: one-line errors that name the action,
``step`` after the end, and a masked wait taken anyway, scored as the docstring documents."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from avemotion.envs import AVEmotionEnv, AVEmotionVectorEnv
from avemotion.envs.core import InvalidActionError
from avemotion.store import FeatureStore

K = 3  # classes of the small store: actions are 0 (wait) .. 3


def _one_line(caught: pytest.ExceptionInfo, *words: str) -> None:
    message = str(caught.value)
    assert "\n" not in message and all(w in message for w in words), message


@pytest.fixture
def env(small_store: FeatureStore) -> AVEmotionEnv:
    env = AVEmotionEnv(small_store, masked_wait_reward=-2.5, reward_wrong=-1.5)
    env.reset(seed=0)
    return env


@pytest.mark.parametrize("action", [K + 1, 99, -1, np.int64(-3), np.array(K + 1)])
def test_out_of_range_action(env: AVEmotionEnv, action: Any) -> None:
    with pytest.raises(InvalidActionError, match="out of range") as caught:
        env.step(action)
    _one_line(caught, "action", str(int(action)), f"Discrete({K + 1})")


@pytest.mark.parametrize("action", [1.0, 0.5, "1", None, True, np.float32(2.0), [1]])
def test_non_integer_action(env: AVEmotionEnv, action: Any) -> None:
    with pytest.raises(InvalidActionError, match="expected an integer") as caught:
        env.step(action)
    _one_line(caught, "action")


def test_a_refused_action_leaves_the_episode_untouched(env: AVEmotionEnv) -> None:
    before = (env._t, env._clip, env._done)
    with pytest.raises(InvalidActionError):
        env.step(K + 1)
    assert (env._t, env._clip, env._done) == before
    _, reward, terminated, _, _ = env.step(0)
    assert not terminated and reward == pytest.approx(-env.rewards.wait_cost)


def test_step_after_the_end_raises(env: AVEmotionEnv) -> None:
    _, _, terminated, _, _ = env.step(1)
    assert terminated
    with pytest.raises(RuntimeError, match="after the episode ended") as caught:
        env.step(1)
    _one_line(caught, "reset()")
    fresh = AVEmotionEnv(env.store)  # never reset: the same refusal
    with pytest.raises(RuntimeError, match="reset"):
        fresh.step(0)


def test_masked_wait_is_scored_as_documented(env: AVEmotionEnv) -> None:
    """Waiting on the last step: reward ``masked_wait_reward``, the episode ends as wrong."""
    _, info = env.reset(options={"clip_index": 0})
    length = int(info["clip_length"])
    for _ in range(length - 1):
        _, reward, terminated, _, info = env.step(0)
        assert not terminated
    assert info["action_mask"][0] == 0 and not env.action_masks()[0]
    _, reward, terminated, truncated, info = env.step(0)
    assert reward == -2.5 and terminated and not truncated
    assert info["prediction"] == -1 and info["frame_index"] == length - 1


def test_vector_env_refuses_bad_actions_by_name(small_store: FeatureStore) -> None:
    envs = AVEmotionVectorEnv(num_envs=4, store=small_store)
    envs.reset(seed=0)
    cases = [
        (np.array([0, 1, K + 1, 0]), f"{K + 1} is out of range"),
        (np.array([0, -1, 0, 0]), "-1 is out of range"),
        (np.array([0.0, 1.0, 0.0, 0.0]), "expected integers"),
        (np.array([0, 1, 2]), "expected shape (4,)"),
    ]
    for actions, message in cases:
        with pytest.raises(InvalidActionError) as caught:
            envs.step(actions)
        _one_line(caught, "actions", message)
    fresh = AVEmotionVectorEnv(num_envs=2, store=small_store)
    with pytest.raises(RuntimeError, match="before reset"):
        fresh.step(np.zeros(2, np.int64))


def test_vector_env_masked_wait_and_the_step_after_the_end(small_store: FeatureStore) -> None:
    """A masked wait scores ``masked_wait_reward``; the next step is the documented
    NEXT_STEP autoreset: the action is ignored, reward 0, a new clip from step 0."""
    envs = gym.make_vec(
        "AVEmotion-v0", num_envs=2, store=small_store, sampling="sequential",
        masked_wait_reward=-2.5,
    )  # fmt: skip
    _, info = envs.reset(seed=0)
    length = int(info["clip_length"][0])
    for _ in range(length - 1):
        _, reward, terminated, _, info = envs.step(np.array([0, 1 + info["label"][1] % K]))
    _, reward, terminated, _, info = envs.step(np.array([0, 0]))
    assert terminated[0] and reward[0] == -2.5 and info["prediction"][0] == -1
    _, reward, terminated, truncated, info = envs.step(np.array([K, 0]))
    assert reward[0] == 0.0 and not terminated[0] and not truncated[0]
    assert info["frame_index"][0] == 0 and info["prediction"][0] == -1
    envs.close()
