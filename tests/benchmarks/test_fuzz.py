"""The invariant fuzz: clean on the real envs, and it does catch a broken one."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from avemotion import FeatureStore
from avemotion.benchmarks.fuzz import documented_reward, documented_table, run_fuzz
from avemotion.envs import AVEmotionEnv, RewardSpec


def test_fuzz_small_run_is_clean_and_checks_both_reward_presets(synthetic: FeatureStore) -> None:
    result = run_fuzz(store=synthetic, steps=5_000, seed=1)
    assert result["violations"] == 0 and result["checks"] > 10_000
    assert min(result["rewards_checked"].values()) > 1_000


def test_documented_table_by_hand() -> None:
    earliness = documented_table({"reward": "earliness"})
    # clip of 4 steps, label 2 (action 3): a wait, the masked last wait, right and wrong answers
    assert documented_reward(earliness, 0, 2, 1, 4) == 0.0
    assert documented_reward(earliness, 0, 2, 3, 4) == 0.0
    assert documented_reward(earliness, 3, 2, 0, 4) == pytest.approx(0.75)  # 1 - 1/4
    assert documented_reward(earliness, 3, 2, 2, 4) == pytest.approx(0.25)  # 1 - 3/4
    assert documented_reward(earliness, 1, 2, 0, 4) == 0.0
    half = documented_table({"reward": "earliness", "earliness_weight": 0.5})
    assert documented_reward(half, 3, 2, 1, 4) == pytest.approx(0.75)  # 1 - 0.5 * 2/4
    signed = documented_table({"reward": "signed", "wait_cost": 0.25})
    assert documented_reward(signed, 0, 2, 1, 4) == -0.25
    assert documented_reward(signed, 0, 2, 3, 4) == -1.0
    assert documented_reward(signed, 3, 2, 3, 4) == 1.0
    assert documented_reward(signed, 2, 2, 0, 4) == -1.0
    np.testing.assert_allclose(
        documented_reward(earliness, np.array([0, 3, 1]), np.array([2, 2, 2]), 0, 4),
        [0.0, 0.75, 0.0],
    )


def test_fuzz_catches_a_wrong_mask(
    synthetic: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = AVEmotionEnv._info

    def broken_info(self: AVEmotionEnv) -> dict[str, Any]:
        info = original(self)
        info["action_mask"] = np.ones_like(info["action_mask"])  # never masks the last wait
        return info

    monkeypatch.setattr(AVEmotionEnv, "_info", broken_info)
    result = run_fuzz(store=synthetic, steps=2_000, seed=1)
    assert result["violations"] > 0 and "wait mask wrong" in result["first_violations"]


def test_fuzz_catches_an_off_by_one_earliness_reward(
    synthetic: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Counting the steps seen before the answer instead of including its own step: a reward
    # 1 - w (t - 1) / T, off by w / T, in both the single and the vector env.
    original = RewardSpec.correct_reward
    monkeypatch.setattr(
        RewardSpec, "correct_reward", lambda self, t, length: original(self, t - 1, length)
    )
    result = run_fuzz(store=synthetic, steps=2_000, seed=1)
    kinds = result["violations_by_kind"]
    assert kinds["reward off the documented table"] > 0
    assert kinds["vector reward off the documented table"] > 0


def test_fuzz_catches_a_wrong_preset_value(
    synthetic: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A wrong answer that costs -0.5 under "signed" instead of the documented -1, in both envs.
    original = RewardSpec.preset.__func__

    def broken_preset(cls: type, reward: str = "earliness", *args: Any, **kwargs: Any) -> Any:
        spec = original(cls, reward, *args, **kwargs)
        if reward == "signed" and spec.wrong == -1.0:
            return RewardSpec(**{**spec.as_dict(), "wrong": -0.5})
        return spec

    monkeypatch.setattr(RewardSpec, "preset", classmethod(broken_preset))
    result = run_fuzz(store=synthetic, steps=5_000, seed=1)
    assert result["rewards_checked"]["signed"] > 0
    assert set(result["violations_by_kind"]) == {
        "reward off the documented table",
        "vector reward off the documented table",
    }
