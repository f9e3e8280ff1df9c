"""The cross-fitted posterior front end: out-of-fold logits, and the saved network."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import torch

from avemotion.agents.dqn.dqn import DQNConfig, make_q_network
from avemotion.agents.dqn.posterior_input import SharpnessJitter, transplant
from avemotion.envs import AVEmotionEnv
from avemotion.envs.core import ObservationLayout
from avemotion.posterior import load_posterior_model
from avemotion.training.run_dir import load_agent
from avemotion.training.train import train

TINY = {"num_envs": 4, "learning_starts": 20, "batch_size": 16, "hidden": [8]}


def test_transplant_keeps_learnt_layers_and_the_new_front_end(tiny_store) -> None:
    config = DQNConfig(hidden=(8,))
    k = tiny_store.n_classes
    small = make_q_network(config, 2 * k + 1, k + 1, k)
    layout = ObservationLayout(tiny_store, config.obs_mode)
    big = make_q_network(config, layout.size, k + 1, tiny_store.dim)
    big.frontend.weight.fill_(0.5)
    out = transplant(small, big)
    assert torch.equal(out.body[0].weight, small.body[0].weight)
    assert torch.equal(out.frontend.weight, torch.full_like(out.frontend.weight, 0.5))


def test_saved_front_end_is_the_runs_posterior_model(tiny_store, tmp_path) -> None:
    """The saved network's front end gives exactly the posterior every rule of the run reads
    (``posterior.npz``), on the embedding store, step by step."""
    run = train(
        "dqn", tiny_store, 200, 0, tmp_path / "run", exclude_speakers=["P3"], progress=False, **TINY
    )
    config = json.loads((run / "config.json").read_text())
    agent = load_agent(run)
    assert agent.network.frontend.store_dim == tiny_store.dim
    posterior = load_posterior_model(run / "posterior.npz")
    test = tiny_store.subset(speakers=["P3"])
    expected = posterior.posteriors(test)
    env = AVEmotionEnv(store=test, obs_mode=agent.obs_mode, max_length=config["max_length"])
    obs, _ = env.reset(options={"clip_index": 0})
    k = tiny_store.n_classes
    for t in range(int(test.lengths[0])):
        with torch.no_grad():
            logits = agent.network.frontend(torch.from_numpy(obs)[None])[0, -k - 1 : -1]
        np.testing.assert_allclose(torch.softmax(logits, -1).numpy(), expected.proba[t], atol=1e-4)
        if t + 1 < test.lengths[0]:
            obs = env.step(0)[0]


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
