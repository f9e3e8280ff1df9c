"""The DQN's collection helpers (:mod:`avemotion.agents.dqn_state`) on tiny fixed inputs."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import torch

from avemotion.agents.dqn_state import EpisodeScratch, SharpnessJitter, pack_rng, unpack_rng
from avemotion.agents.replay import EpisodeReplay

# Two sub-envs, observation [logit 0, logit 1, time].
LAYOUT = SimpleNamespace(size=3)
OBS = np.array([[1.0, -2.0, 0.25], [4.0, 0.5, 0.5]], dtype=np.float32)


def test_jitter_scales_logit_columns_by_exp_of_a_seeded_uniform() -> None:
    jitter = SharpnessJitter(0.5, LAYOUT, np.random.default_rng(7))
    out = jitter.start(np.array([True, True]), OBS)
    u = np.random.default_rng(7).uniform(-0.5, 0.5, 2)  # the same draw, one u per row
    factor = np.exp(u).astype(np.float32)
    # row i: [x0 * e^u_i, x1 * e^u_i, time unchanged]
    expected = np.array(
        [
            [1.0 * factor[0], -2.0 * factor[0], 0.25],
            [4.0 * factor[1], 0.5 * factor[1], 0.5],
        ],
        dtype=np.float32,
    )
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=0.0)
    assert np.all(np.abs(u) > 0.01)  # the factor is not 1, so a missing scale would show
    np.testing.assert_array_equal(out[:, -1], OBS[:, -1])


def test_jitter_redraws_only_where_an_episode_starts() -> None:
    jitter = SharpnessJitter(0.5, LAYOUT, np.random.default_rng(7))
    jitter.start(np.array([True, True]), OBS)
    out = jitter.start(np.array([False, True]), OBS)
    reference = np.random.default_rng(7)
    first = np.exp(reference.uniform(-0.5, 0.5, 2)).astype(np.float32)
    second = np.exp(reference.uniform(-0.5, 0.5, 1)).astype(np.float32)
    # row 0 keeps its first factor; row 1 gets the next draw of the stream
    np.testing.assert_allclose(out[0, :2], OBS[0, :2] * first[0], rtol=1e-6)
    np.testing.assert_allclose(out[1, :2], OBS[1, :2] * second[0], rtol=1e-6)


def test_jitter_rows_not_yet_started_keep_factor_one() -> None:
    jitter = SharpnessJitter(0.5, LAYOUT, np.random.default_rng(7))
    out = jitter.start(np.array([False, True]), OBS)
    np.testing.assert_array_equal(out[0], OBS[0])
    factor = np.float32(np.exp(np.random.default_rng(7).uniform(-0.5, 0.5, 1))[0])
    np.testing.assert_allclose(out[1, :2], OBS[1, :2] * factor, rtol=1e-6)


def test_jitter_leaves_the_input_unchanged() -> None:
    obs = OBS.copy()
    SharpnessJitter(0.5, LAYOUT, np.random.default_rng(7)).start(np.array([True, True]), obs)
    np.testing.assert_array_equal(obs, OBS)


def test_jitter_with_zero_range_is_the_identity() -> None:
    jitter = SharpnessJitter(0.0, LAYOUT, np.random.default_rng(7))
    assert jitter.start(np.array([True, True]), OBS) is OBS


def test_episode_scratch_records_steps_and_pushes_one_episode() -> None:
    scratch = EpisodeScratch(n_envs=2, max_length=2, obs_dim=1, n_actions=2)
    all_allowed = np.ones((2, 2), dtype=bool)
    scratch.start(np.array([True, True]), np.array([[1.0], [2.0]]), all_allowed)
    step_mask = np.array([[True, False], [True, True]])
    # step 1: both envs; step 2: env 0 only (env 1 is not valid)
    scratch.record(
        np.array([True, True]),
        np.array([0, 1]),
        np.array([-0.1, 1.0]),
        np.array([0.5, 0.5]),
        np.array([False, True]),
        np.array([[3.0], [4.0]]),
        step_mask,
    )
    scratch.record(
        np.array([True, False]),
        np.array([1, 0]),
        np.array([0.5, 9.0]),
        np.array([1.0, 9.0]),
        np.array([True, False]),
        np.array([[5.0], [9.0]]),
        all_allowed,
    )
    assert scratch.t.tolist() == [2, 1]
    replay = EpisodeReplay(capacity=2, max_length=2, obs_dim=1, n_actions=2)
    scratch.push(0, replay, terminated=True, label=1)
    assert replay.length[0] == 2 and replay.label[0] == 1 and replay.terminated[0]
    assert replay.obs[0, :, 0].tolist() == [1.0, 3.0, 5.0]
    assert replay.mask[0].tolist() == [[True, True], [True, False], [True, True]]
    assert replay.action[0].tolist() == [0, 1]
    np.testing.assert_allclose(replay.reward[0], [-0.1, 0.5], rtol=1e-6)
    np.testing.assert_allclose(replay.fraction[0], [0.5, 1.0], rtol=1e-6)
    assert replay.hit[0].tolist() == [False, True]


def test_episode_scratch_ignores_steps_past_max_length() -> None:
    scratch = EpisodeScratch(n_envs=1, max_length=1, obs_dim=1, n_actions=2)
    scratch.start(np.array([True]), np.array([[1.0]]), np.ones((1, 2), dtype=bool))
    for value in (2.0, 3.0):
        scratch.record(
            np.array([True]),
            np.array([0]),
            np.array([value]),
            np.array([0.0]),
            np.array([False]),
            np.array([[value]]),
            np.ones((1, 2), dtype=bool),
        )
    # the second step does not fit: t stays 1 and the first step's values are kept
    assert scratch.t.tolist() == [1]
    assert scratch.obs[0, :, 0].tolist() == [1.0, 2.0]
    assert scratch.reward[0].tolist() == [2.0]


def advanced_rng() -> np.random.Generator:
    rng = np.random.default_rng(3)
    rng.random(2)
    rng.integers(0, 10, dtype=np.uint32, size=1)  # leaves a buffered 32-bit half
    return rng


def test_pack_rng_stores_the_pcg64_state_as_strings_and_ints() -> None:
    state = advanced_rng().bit_generator.state
    packed = pack_rng(state)
    assert packed["state"] == str(state["state"]["state"])
    assert packed["inc"] == str(state["state"]["inc"])
    assert packed["has_uint32"] == 1 and packed["uinteger"] == state["uinteger"]
    buffer = io.BytesIO()
    torch.save(packed, buffer)
    buffer.seek(0)
    assert torch.load(buffer, weights_only=True) == packed


def test_unpack_rng_round_trips_and_continues_the_stream() -> None:
    original = advanced_rng()
    state = original.bit_generator.state
    assert unpack_rng(pack_rng(state)) == state
    restored = np.random.default_rng(0)
    restored.bit_generator.state = unpack_rng(pack_rng(state))
    # both the buffered 32-bit half and the 64-bit stream continue where they stopped
    expected_u32 = original.integers(0, 2**32, dtype=np.uint32, size=3)
    expected = original.random(3)
    np.testing.assert_array_equal(
        restored.integers(0, 2**32, dtype=np.uint32, size=3), expected_u32
    )
    np.testing.assert_array_equal(restored.random(3), expected)
