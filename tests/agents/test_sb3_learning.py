"""SB3's six agents learn through our env and run interface: on a store whose class shows
from the first step, each one's held-out harmonic mean beats a random policy by a margin.

The budgets fit CI: a few thousand env steps, with the update schedules shortened where the
library's defaults would not update at all in that budget (PPO's 2048-step rollouts, DQN's
10,000-step target updates); the algorithms themselves are SB3's.
"""

from __future__ import annotations

import pytest
from tiny_store import onset_store

from avemotion.evaluation.evaluate import evaluate_run
from avemotion.store import FeatureStore
from avemotion.training.train import train

pytest.importorskip("sb3_contrib")

CLASSES, LENGTH = 4, 8
MARGIN = 0.3
"""How far above the random policy's harmonic mean each agent must score."""
SHORT_TARGETS = {"learning_starts": 200, "target_update_interval": 250, "exploration_fraction": 0.3}
"""DQN-family schedules that update within the budget (QR-DQN also gets DQN's learning
rate scale: its default, 5e-5, moves too little in 3,000 steps)."""
BUDGETS = {
    "sb3-dqn": (3_000, SHORT_TARGETS),
    "sb3-qrdqn": (
        3_000,
        {**SHORT_TARGETS, "learning_rate": 5e-4, "policy_kwargs": {"n_quantiles": 25}},
    ),
    "sb3-ppo": (4_000, {"n_steps": 64}),
    "sb3-a2c": (4_000, {}),
    "sb3-recurrent-ppo": (4_000, {"n_steps": 64}),
    "sb3-maskable-ppo": (4_000, {"n_steps": 64}),
}


def visible_store(path, seed: int, speakers: tuple[str, ...]) -> FeatureStore:
    """Clips of 8 steps, each step its class's prototype plus noise."""
    return onset_store(path, seed, speakers, LENGTH)


def random_hm(length: int = LENGTH, classes: int = CLASSES) -> float:
    """The random policy's expected HM, by hand: it waits with probability 1/(K+1) at every
    step but the last, so it answers at step t (1-based) with probability
    (1/(K+1))^(t-1)·K/(K+1), the last step taking the rest; its accuracy is 1/K."""
    wait = 1.0 / (classes + 1)
    answer_at = [wait ** (t - 1) * (1.0 - wait) for t in range(1, length)]
    answer_at.append(1.0 - sum(answer_at))
    earliness = sum(p * t / length for t, p in enumerate(answer_at, start=1))
    accuracy = 1.0 / classes
    return 2.0 * accuracy * (1.0 - earliness) / (accuracy + 1.0 - earliness)


def test_random_hm_by_hand() -> None:
    # Two classes, two steps: answers at step 1 w.p. 2/3, else at step 2; earliness
    # (2/3)(1/2) + (1/3)(1) = 2/3; HM(1/2, 2/3) = 2·(1/2)·(1/3) / (1/2 + 1/3) = 2/5.
    assert random_hm(length=2, classes=2) == pytest.approx(0.4)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("sb3-learning")
    return visible_store(root / "train", 0, ("A", "B")), visible_store(root / "test", 1, ("C",))


@pytest.mark.slow
@pytest.mark.parametrize("agent", sorted(BUDGETS))
def test_sb3_agent_learns_to_answer(agent: str, stores, tmp_path) -> None:
    train_store, test_store = stores
    steps, options = BUDGETS[agent]
    run = train(agent, train_store, steps, 0, tmp_path / agent, posterior="running-mean-softmax",
                progress=False, obs_mode="frame", **options)  # fmt: skip
    learnt = evaluate_run(run, test_store)["harmonic_mean"]
    assert learnt >= random_hm() + MARGIN, (agent, learnt, random_hm())
