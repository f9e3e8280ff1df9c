"""The invariant fuzz: clean on the real envs, and it does catch a broken one."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from avemotion import FeatureStore
from avemotion.benchmarks.fuzz import run_fuzz
from avemotion.envs import AVEmotionEnv


def test_fuzz_small_run_is_clean(synthetic: FeatureStore) -> None:
    result = run_fuzz(store=synthetic, steps=5_000, seed=1)
    assert result["violations"] == 0 and result["checks"] > 10_000


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
