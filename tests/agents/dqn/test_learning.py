"""Our DQN learns: on a store where waiting pays, its held-out harmonic mean beats a random
policy and the best fixed-step policy, and a deliberately broken update does not.

The store (4 classes, 32 steps per clip): before a random onset (step 3–15) every step is
noise; from the onset on, it shows its class's prototype. An agent that answers just after
the onset scores HM ≈ 0.81; answering at any fixed step scores at most ≈ 0.70 (computed
below on the held-out store itself), so only a policy that reads the steps can pass.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_store import onset_store

from avemotion.evaluation.evaluate import evaluate_run
from avemotion.metrics import harmonic_mean
from avemotion.store import FeatureStore
from avemotion.training.train import train

CLASSES, LENGTH, DIM = 4, 32, 8
ONSETS = (3, 15)
NOISE = 0.5
MARGIN = 0.04
"""How far above the best fixed-step policy (and the random policy) the agent must score."""
LEARNER = {
    "frontend": "raw",
    "obs_mode": "frame",
    "learning_starts": 1_000,
    "log_every": 5_000,
    "checkpoint_every": 1_000_000,
    "progress": False,
}
"""Our DQN's defaults but for a raw front end and a free Q-head (added for the feed-forward
DQN; the recurrent one has it), so that every Q-value is learnt: the default stopping head
starts from a fitted posterior and a tuned wait bias."""
RECURRENT = {"learning_rate": 2e-4, "hidden": (64, 64)}
"""What the recurrent DQN changes: a GRU over the frames learns steadily at a lower rate."""
STEPS = {"dqn": 50_000, "dqn-recurrent": 60_000}


def learning_store(path, seed: int, speakers: tuple[str, ...]) -> FeatureStore:
    """Clips whose class shows only from a random onset on (see the module doc)."""
    return onset_store(path, seed, speakers, LENGTH, ONSETS, NOISE, scale=2.5, clips_per_class=24)


def best_fixed_step_hm(store: FeatureStore) -> float:
    """The best HM of answering at one fixed step, with the class whose prototype the
    current step is nearest to (an oracle decoder: no learnt policy reads a step better)."""
    frames = np.stack([store.clip(i).frames for i in range(store.n_clips)])
    scores = []
    for t in range(LENGTH):
        predicted = frames[:, t, :CLASSES].argmax(axis=1)
        accuracy = float((predicted == store.labels).mean())
        scores.append(harmonic_mean(accuracy, (t + 1) / LENGTH))
    return max(scores)


def random_policy_hm(store: FeatureStore, seed: int = 0) -> float:
    """HM of a policy that picks uniformly among the valid actions at every step."""
    rng = np.random.default_rng(seed)
    correct, seen = [], []
    for label in store.labels:
        t = 0
        while True:
            action = (
                int(rng.integers(0, CLASSES + 1))
                if t < LENGTH - 1
                else 1 + int(rng.integers(0, CLASSES))
            )
            if action > 0:
                correct.append(action - 1 == label)
                seen.append((t + 1) / LENGTH)
                break
            t += 1
    return harmonic_mean(float(np.mean(correct)), float(np.mean(seen)))


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("learning")
    return (
        learning_store(root / "train", 0, ("A", "B")),
        learning_store(root / "test", 1, ("C",)),
    )


def test_the_bars_are_computed_by_hand_on_a_two_clip_store(tmp_path) -> None:
    """The fixed-step bar on a store whose answer is known: clip 0 shows class 1 from step
    0, clip 1 shows class 2 only from step 8 (decoded as class 0 before: all zeros)."""
    one = np.zeros((LENGTH, DIM), np.float32)
    one[:, 1] = 1.0
    two = np.zeros((LENGTH, DIM), np.float32)
    two[8:, 2] = 1.0
    store = FeatureStore.create(
        tmp_path / "s", [one, two], [1, 2], ["A", "A"], [f"c{k}" for k in range(CLASSES)],
        meta={"steps_per_second": 10.0},
    )  # fmt: skip
    # At step 0 one of two is right: HM(1/2, 1/32) = 2·(1/2)·(31/32) / (1/2 + 31/32) = 31/47.
    # At step 8 both are right: HM(1, 9/32) = 2·(23/32) / (1 + 23/32) = 46/55, the best.
    assert best_fixed_step_hm(store) == pytest.approx(46 / 55)


@pytest.mark.slow
@pytest.mark.parametrize("agent", ["dqn", "dqn-recurrent"])
def test_dqn_beats_random_and_every_fixed_step(agent: str, stores, tmp_path) -> None:
    train_store, test_store = stores
    run = train(agent, train_store, STEPS[agent], 0, tmp_path / agent,
                posterior="running-mean-softmax", **_options(agent))  # fmt: skip
    learnt = evaluate_run(run, test_store)["harmonic_mean"]
    fixed, chance = best_fixed_step_hm(test_store), random_policy_hm(test_store)
    assert learnt >= fixed + MARGIN, (learnt, fixed)
    assert learnt >= chance + MARGIN, (learnt, chance)


@pytest.mark.slow
@pytest.mark.parametrize("broken", ["no_optimiser_step", "td_target_sign_flipped"])
def test_a_broken_update_does_not_learn(broken: str, stores, tmp_path, monkeypatch) -> None:
    """The learning test can fail: without the optimiser step, or with the sign of every
    TD target flipped, the same run stays below the bar."""
    if broken == "no_optimiser_step":
        monkeypatch.setattr(torch.optim.AdamW, "step", lambda self, *a, **k: None)
    else:
        huber = torch.nn.functional.smooth_l1_loss
        monkeypatch.setattr(
            torch.nn.functional, "smooth_l1_loss", lambda q, y, *a, **k: huber(q, -y, *a, **k)
        )
    train_store, test_store = stores
    run = train("dqn", train_store, STEPS["dqn"], 0, tmp_path / broken,
                posterior="running-mean-softmax", **_options("dqn"))  # fmt: skip
    learnt = evaluate_run(run, test_store)["harmonic_mean"]
    assert learnt < best_fixed_step_hm(test_store) + MARGIN


def _options(agent: str) -> dict:
    return {**LEARNER, **RECURRENT} if agent == "dqn-recurrent" else {**LEARNER, "q_head": "free"}
