"""The cross-fitted posterior front end: out-of-fold logits, and the saved network."""

from __future__ import annotations

import json

import numpy as np
import torch

from avemotion.agents.dqn import DQNConfig, make_q_network
from avemotion.agents.frontend_fit import transplant
from avemotion.agents.runner import load_agent, train
from avemotion.envs import AVEmotionEnv
from avemotion.envs.core import ObservationLayout
from avemotion.posterior import load_posterior_model

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
