"""The earliness reward recomputed from outcomes, and its matched weight
(:mod:`avemotion.agents.dqn.earliness_weight`), by hand.

A step's outcome is the fraction of the clip observed when the action was taken and
whether it was a correct answer; a correct answer after ``t`` of ``T`` steps earns
``1 − w · t / T``. The matched weight ``w = A / ((1 − E)² + A E)`` (accuracy ``A``, mean
earliness ``E``) is tracked from finished episodes. ``test_dqn.py`` already checks one
matched value and a rate-1 update; here: the per-step outcome, the reward's values, the
clipping and the zero-denominator guard, partial (rate < 1) updates, the reset of the
pending episodes after an update, and the state dict's round trip.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from avemotion.agents.dqn.earliness_weight import (
    MatchedEarlinessWeight,
    matched_weight,
)
from avemotion.envs.core import RewardSpec


def test_earliness_reward_pays_correct_answers_less_the_later_they_come() -> None:
    """w = 0.4: a hit at 1/4 earns 1 − 0.4 · 0.25 = 0.9, a hit at the end 1 − 0.4 = 0.6;
    a miss (wrong answer or wait) earns 0 whatever the fraction."""
    reward = RewardSpec.preset("earliness", earliness_weight=0.4).answer_rewards(
        np.array([0.25, 0.5, 1.0, 0.75], np.float32), np.array([True, False, True, False])
    )
    assert reward.dtype == np.float32
    np.testing.assert_allclose(reward, [0.9, 0.0, 0.6, 0.0], rtol=0, atol=1e-7)


def test_earliness_reward_with_zero_weight_is_plain_accuracy() -> None:
    spec = RewardSpec.preset("earliness", earliness_weight=0.0)
    reward = spec.answer_rewards(np.array([0.1, 1.0]), np.array([True, True]))
    assert reward.tolist() == [1.0, 1.0]


def test_matched_weight_inside_and_at_the_bounds() -> None:
    # A = 0.3, E = 0.5: 0.3 / (0.5² + 0.3 · 0.5) = 0.3 / (0.25 + 0.15) = 0.75 (inside)
    assert matched_weight(0.3, 0.5, (0.1, 1.0)) == pytest.approx(0.75, abs=1e-12)
    # A = 0.1, E = 0: 0.1 / (1 + 0) = 0.1, raised to the lower bound 0.2
    assert matched_weight(0.1, 0.0, (0.2, 1.0)) == pytest.approx(0.2, abs=1e-12)
    # A = 0.6, E = 0.5: 0.6 / (0.25 + 0.3) = 1.0909..., cut to the upper bound 1
    assert matched_weight(0.6, 0.5, (0.1, 1.0)) == 1.0


def test_matched_weight_guards_a_zero_denominator() -> None:
    """A = 0 and E = 1 (every episode wrong, at the last step): (1 − 1)² + 0 · 1 = 0; the
    denominator is floored at 1e-6, so w = 0 / 1e-6 = 0, clipped to the lower bound 0.1
    (never a NaN)."""
    assert matched_weight(0.0, 1.0, (0.1, 1.0)) == pytest.approx(0.1, abs=1e-12)


def test_tracker_steps_part_way_toward_the_matched_weight() -> None:
    """rate 0.5, every 4 episodes, start 1: hits [T, F, F, F] at fraction 0.5 give
    A = 0.25, E = 0.5, target 0.25 / (0.25 + 0.125) = 2/3, value 1 + 0.5 · (2/3 − 1) = 5/6."""
    tracker = MatchedEarlinessWeight(None, start=1.0, every=4, rate=0.5)
    tracker.episodes(np.array([True, False, False]), np.full(3, 0.5))
    assert tracker.value == 1.0  # 3 < 4 episodes so far
    tracker.episodes(np.array([False]), np.array([0.5]))
    assert tracker.value == pytest.approx(5 / 6, abs=1e-12)


def test_tracker_forgets_the_episodes_of_its_last_update() -> None:
    """After the 5/6 update above, the next update reads only the next 4 episodes: hits
    [T, T, T, F] at fractions [0.2, 0.2, 0.4, 0.4] give A = 0.75, E = 0.3, target
    0.75 / (0.49 + 0.225) = 1.049 → 1 (upper bound), value 5/6 + 0.5 · (1 − 5/6) = 11/12.
    (Kept, the first 4 would make A = 0.5, E = 0.4, target 0.5 / 0.56 = 0.893, value 0.863.)"""
    tracker = MatchedEarlinessWeight(None, start=1.0, every=4, rate=0.5)
    tracker.episodes(np.array([True, False, False, False]), np.full(4, 0.5))
    tracker.episodes(np.array([True, True, True]), np.array([0.2, 0.2, 0.4]))
    assert tracker.value == pytest.approx(5 / 6, abs=1e-12)  # 3 new episodes: no update
    tracker.episodes(np.array([False]), np.array([0.4]))
    assert tracker.value == pytest.approx(11 / 12, abs=1e-12)


def test_tracker_ignores_an_empty_batch_and_a_fixed_weight() -> None:
    tracker = MatchedEarlinessWeight(None, start=0.5, every=1, rate=1.0)
    tracker.episodes(np.zeros(0, dtype=bool), np.zeros(0))
    assert tracker.value == 0.5 and tracker.state_dict()["hits"].numel() == 0
    fixed = MatchedEarlinessWeight(0.3, start=0.9, every=1, rate=1.0)
    assert fixed.value == 0.3  # a fixed weight wins over start
    fixed.episodes(np.array([False]), np.array([1.0]))
    assert fixed.value == 0.3


def test_state_dict_round_trip_keeps_the_pending_episodes() -> None:
    """Saved after 3 of 4 episodes (weights-only loadable), then restored into a new
    tracker: its 4th episode triggers the same update as the original's (5/6, as above)."""
    tracker = MatchedEarlinessWeight(None, start=1.0, every=4, rate=0.5)
    tracker.episodes(np.array([True, False]), np.array([0.5, 0.5]))
    tracker.episodes(np.array([False]), np.array([0.5]))
    buffer = io.BytesIO()
    torch.save(tracker.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert state["value"] == 1.0
    assert state["hits"].tolist() == [True, False, False]
    assert state["fractions"].dtype == torch.float64
    assert state["fractions"].tolist() == [0.5, 0.5, 0.5]
    restored = MatchedEarlinessWeight(None, start=0.2, every=4, rate=0.5)
    restored.load_state_dict(state)
    assert restored.value == 1.0
    restored.episodes(np.array([False]), np.array([0.5]))
    assert restored.value == pytest.approx(5 / 6, abs=1e-12)


def test_state_dict_of_a_fresh_tracker_restores_its_value() -> None:
    """A fresh tracker (value 0.25, no episodes) saved and restored into one started at
    0.5: the restored value is the base of the next update. 1 episode (a hit at 0.5) with
    every = 1: A = 1, E = 0.5, target 1 / (0.25 + 0.5) = 4/3 → 1 (upper bound), value
    0.25 + 0.5 · (1 − 0.25) = 0.625 (from the unrestored 0.5 it would be 0.75)."""
    restored = MatchedEarlinessWeight(None, start=0.5, every=1, rate=0.5)
    restored.load_state_dict(MatchedEarlinessWeight(None, start=0.25).state_dict())
    assert restored.value == 0.25
    restored.episodes(np.array([True]), np.array([0.5]))
    assert restored.value == pytest.approx(0.625, abs=1e-12)


def test_matched_weight_follows_the_harmonic_mean() -> None:
    # w = A / ((1 - E)^2 + A E): late, accurate policies get a larger weight on earliness
    assert matched_weight(0.4, 0.5, (0.0, 5.0)) == pytest.approx(0.4 / (0.25 + 0.2))
    assert matched_weight(0.9, 0.9, (0.1, 1.0)) == 1.0
    tracker = MatchedEarlinessWeight(None, start=1.0, every=4, rate=1.0)
    tracker.episodes(np.array([True, False]), np.array([0.5, 0.5]))
    assert tracker.value == 1.0  # not enough episodes yet
    tracker.episodes(np.array([False, False]), np.array([0.5, 0.5]))
    assert tracker.value == pytest.approx(matched_weight(0.25, 0.5, (0.1, 1.0)))
    fixed = MatchedEarlinessWeight(0.7)
    fixed.episodes(np.array([True] * 1000), np.full(1000, 0.1))
    assert fixed.value == 0.7
