"""The cross-fitted posterior front end: out-of-fold logits, and the saved network."""

from __future__ import annotations

import json

import numpy as np
import torch

from avemotion.agents.dqn import DQNConfig, make_q_network
from avemotion.agents.frontend_fit import fit_softmax, out_of_fold_logits, transplant
from avemotion.agents.runner import load_agent, train
from avemotion.envs.core import ObservationLayout

TINY = {"num_envs": 4, "learning_starts": 20, "batch_size": 16, "hidden": [8]}


def test_out_of_fold_logits_come_from_models_blind_to_the_speaker(tiny_store, tmp_path) -> None:
    logits, calibration, everyone = out_of_fold_logits(tiny_store, 1e-2, 0, tmp_path)
    assert logits.dim == tiny_store.n_classes and logits.n_clips == tiny_store.n_clips
    assert logits.clip_ids == tiny_store.clip_ids and logits.speakers == tiny_store.speakers
    assert all(np.isfinite(calibration))
    for speaker in tiny_store.speaker_set:
        blind = fit_softmax(tiny_store.subset(exclude_speakers=[speaker]), 1e-2, init=everyone)
        for i in np.flatnonzero(np.array(tiny_store.speakers) == speaker)[:2]:
            expected = blind.logits(np.asarray(tiny_store.clip(int(i)).frames))
            np.testing.assert_allclose(logits.clip(int(i)).frames, expected, atol=1e-3)
    # The map is linear: the running mean of the logits is the logits of the running mean.
    frames = np.asarray(tiny_store.clip(0).frames)
    np.testing.assert_allclose(
        everyone.logits(frames).mean(axis=0),
        everyone.logits(frames.mean(axis=0)[None])[0],
        atol=1e-4,
    )


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


def test_crossfit_run_saves_a_network_over_the_embedding_store(tiny_store, tmp_path) -> None:
    run = train(
        "dqn", tiny_store, 200, 0, tmp_path / "run", exclude_speakers=["P3"], progress=False, **TINY
    )
    config = json.loads((run / "config.json").read_text())
    assert config["agent_config"]["frontend_crossfit"] is True
    agent = load_agent(run)
    assert agent.network.frontend.store_dim == tiny_store.dim
    # Acting on the embedding store works and agrees with the out-of-fold-free front end.
    layout = ObservationLayout(tiny_store, agent.obs_mode, config["max_length"])
    obs = np.zeros((2, layout.size), np.float32)
    mask = np.ones((2, tiny_store.n_classes + 1), bool)
    actions = agent.act_batch(obs, mask, np.ones(2, bool))
    assert actions.shape == (2,) and np.all((actions >= 0) & (actions <= tiny_store.n_classes))
