"""Rewards, observation layout and the observation table (:mod:`avemotion.envs.core`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avemotion.envs.core import FrameSource, ObservationLayout, RewardSpec
from avemotion.store import FeatureStore

# Two clips of dim 2: clip A (3 steps, rows 0-2) and clip B (1 step, row 3); T_max = 3.
CLIP_A = [[1.0, 2.0], [3.0, 6.0], [5.0, 1.0]]
CLIP_B = [[-2.0, 0.0]]


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    sequences = [np.array(CLIP_A, dtype=np.float32), np.array(CLIP_B, dtype=np.float32)]
    return FeatureStore.create(tmp_path / "store", sequences, [0, 1], ["P1", "P1"], ["a", "b"])


def test_earliness_preset_values() -> None:
    spec = RewardSpec.preset("earliness")
    assert (spec.correct, spec.wrong, spec.wait_cost, spec.masked_wait) == (1.0, 0.0, 0.0, 0.0)
    assert spec.earliness_weight == 1.0 and spec.name == "earliness"


def test_earliness_correct_reward_is_the_share_not_needed() -> None:
    spec = RewardSpec.preset("earliness")
    assert spec.correct_reward(3, 4) == pytest.approx(0.25)  # 1 * (1 - 1 * 3/4)
    assert spec.correct_reward(4, 4) == pytest.approx(0.0)  # last step: what a wrong one earns
    # vectorised: 1 of 4 -> 0.75, 2 of 8 -> 0.75, 1 of 2 -> 0.5
    np.testing.assert_allclose(
        spec.correct_reward(np.array([1, 2, 1]), np.array([4, 8, 2])), [0.75, 0.75, 0.5]
    )


def test_signed_preset_values() -> None:
    spec = RewardSpec.preset("signed")
    assert (spec.correct, spec.wrong, spec.masked_wait) == (1.0, -1.0, -1.0)
    assert spec.wait_cost == pytest.approx(0.01)  # a wait earns -0.01
    assert spec.earliness_weight == 0.0
    assert spec.correct_reward(3, 4) == pytest.approx(1.0)  # 1 * (1 - 0 * 3/4)


def test_preset_overrides_replace_single_values() -> None:
    spec = RewardSpec.preset("earliness", correct=2.0, earliness_weight=0.5, wait_cost=0.1)
    assert spec.correct_reward(2, 4) == pytest.approx(1.5)  # 2 * (1 - 0.5 * 2/4)
    assert spec.wait_cost == pytest.approx(0.1) and spec.wrong == 0.0
    assert spec.as_dict() == {
        "correct": 2.0,
        "wrong": 0.0,
        "wait_cost": 0.1,
        "masked_wait": 0.0,
        "earliness_weight": 0.5,
        "name": "earliness",
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        {"reward": "linear"},
        {"earliness_weight": 1.5},
        {"earliness_weight": -0.1},
        {"wrong": np.inf},
    ],
)
def test_preset_rejects_bad_values(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        RewardSpec.preset(**kwargs)


@pytest.mark.parametrize(
    ("mode", "frame", "mean", "size"),
    [
        ("frame+mean", slice(0, 2), slice(2, 4), 5),
        ("mean", slice(0, 0), slice(0, 2), 3),
        ("frame", slice(0, 2), slice(2, 2), 3),
    ],
)
def test_layout_slices_and_size(
    store: FeatureStore, mode: str, frame: slice, mean: slice, size: int
) -> None:
    layout = ObservationLayout(store, mode)
    assert (layout.frame_slice, layout.mean_slice, layout.size) == (frame, mean, size)


def test_layout_progress_is_t_over_longest_clip_saturating_at_one(store: FeatureStore) -> None:
    layout = ObservationLayout(store, "frame+mean")
    assert layout.max_length == 3  # longest clip
    # min(t / 3, 1) at t = 0, 1, 3, 5
    np.testing.assert_allclose(layout.progress(np.array([0, 1, 3, 5])), [0.0, 1 / 3, 1.0, 1.0])


def test_layout_fixed_max_length(store: FeatureStore) -> None:
    layout = ObservationLayout(store, "mean", max_length=4)
    assert layout.progress(2) == pytest.approx(0.5)  # 2 / 4
    with pytest.raises(ValueError, match="max_length"):
        ObservationLayout(store, "mean", max_length=0)


def test_layout_space_bounds_are_store_range_and_unit_time(store: FeatureStore) -> None:
    space = ObservationLayout(store, "frame+mean").space
    # frame values range over [-2, 6]; the time feature over [0, 1]
    np.testing.assert_array_equal(space.low, [-2.0, -2.0, -2.0, -2.0, 0.0])
    np.testing.assert_array_equal(space.high, [6.0, 6.0, 6.0, 6.0, 1.0])


def test_layout_advance_updates_the_running_mean(store: FeatureStore) -> None:
    layout = ObservationLayout(store, "frame+mean")
    obs = np.zeros(5, dtype=np.float32)
    mean = np.zeros(2, dtype=np.float32)
    layout.advance(obs, mean, np.array([2.0, 4.0], dtype=np.float32), 0)
    layout.advance(obs, mean, np.array([4.0, 0.0], dtype=np.float32), 1)
    # mean = [2, 4] + ([4, 0] - [2, 4]) / 2 = [3, 2]; time 1 / 3
    np.testing.assert_allclose(obs, [4.0, 0.0, 3.0, 2.0, 1 / 3], rtol=1e-6)
    np.testing.assert_allclose(mean, [3.0, 2.0])


def test_obs_table_holds_frame_running_mean_and_time(store: FeatureStore) -> None:
    source = FrameSource(store, ObservationLayout(store, "frame+mean"), preload=True)
    assert source.in_memory and source.obs_table is not None
    expected = [
        [1.0, 2.0, 1.0, 2.0, 0.0],  # A, t=0: mean = frame
        [3.0, 6.0, 2.0, 4.0, 1 / 3],  # A, t=1: mean ([1,2] + [3,6]) / 2
        [5.0, 1.0, 3.0, 3.0, 2 / 3],  # A, t=2: mean ([1,2] + [3,6] + [5,1]) / 3
        [-2.0, 0.0, -2.0, 0.0, 0.0],  # B, t=0: a new clip restarts the mean and the time
    ]
    np.testing.assert_allclose(source.obs_table, expected, rtol=1e-6, atol=1e-7)


def test_obs_table_mean_mode_has_no_frame(store: FeatureStore) -> None:
    source = FrameSource(store, ObservationLayout(store, "mean", max_length=2), preload=True)
    assert source.obs_table is not None
    # time t / 2, saturating: 0, 0.5, 1 for clip A
    expected = [[1.0, 2.0, 0.0], [2.0, 4.0, 0.5], [3.0, 3.0, 1.0], [-2.0, 0.0, 0.0]]
    np.testing.assert_allclose(source.obs_table, expected, rtol=1e-6, atol=1e-7)


def test_frame_source_without_preload_has_no_table(store: FeatureStore) -> None:
    source = FrameSource(store, ObservationLayout(store, "frame"), preload=False)
    assert not source.in_memory and source.obs_table is None
    np.testing.assert_array_equal(source.frames, np.array(CLIP_A + CLIP_B, dtype=np.float32))
    with pytest.raises(ValueError, match="preload"):
        FrameSource(store, ObservationLayout(store, "frame"), preload="yes")
