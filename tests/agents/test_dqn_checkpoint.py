"""The DQN's resumable checkpoint (:mod:`avemotion.agents.dqn_checkpoint`).

A checkpoint written mid-run and read into fresh objects must give back exactly what a
resumed run needs: both networks, the optimiser's moments, the env steps and updates, the
numpy and torch random streams (continuing where they stopped), the matched earliness
weight with its pending episodes, and the replay memory. It loads with
``weights_only=True``, so a file holding anything but tensors and plain values is
refused, and a checkpoint of another network or replay shape does not load silently.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from avemotion.agents.dqn_checkpoint import load_checkpoint, save_checkpoint
from avemotion.agents.networks import FrontEnd, MLPQNetwork
from avemotion.agents.replay import TransitionReplay
from avemotion.agents.rewards import MatchedEarlinessWeight


def network(seed: int, hidden: int = 3) -> MLPQNetwork:
    """A small dueling MLP over 2-dim observations, 3 actions, weights from ``seed``."""
    torch.manual_seed(seed)
    return MLPQNetwork(FrontEnd(2, 2, 2, "raw"), 3, [hidden], dueling=True)


def nets(seed: int) -> tuple[MLPQNetwork, MLPQNetwork, torch.optim.Optimizer]:
    """Online and target networks (different weights) and the online net's AdamW."""
    online, target = network(seed), network(seed + 1)
    return online, target, torch.optim.AdamW(online.parameters(), lr=1e-2)


def replay_with_two_steps() -> TransitionReplay:
    replay = TransitionReplay(capacity=8, num_envs=2, obs_dim=2, n_actions=3)
    for t in range(2):
        replay.add(
            np.full((2, 2), t, np.float32),
            np.array([0, 2]),
            np.array([0.0, 0.5], np.float32),
            np.full((2, 2), t + 1, np.float32),
            np.ones((2, 3), bool),
            np.array([False, True]),
            np.array([False, False]),
            np.array([True, t == 0]),
            np.array([1, 1]),
            np.array([0.25, 0.5], np.float32),
            np.array([False, True]),
        )
    return replay


def mid_run(seed: int = 0) -> dict[str, Any]:
    """Everything a run holds after some training: one optimiser step taken, both random
    streams advanced, 3 of 4 episodes pending in the earliness weight (value 0.7)."""
    online, target, optimiser = nets(seed)
    loss = online(torch.tensor([[1.0, -1.0]])).pow(2).sum()
    loss.backward()
    optimiser.step()
    rng = np.random.default_rng(seed)
    rng.random(5)
    torch.manual_seed(seed + 10)
    torch.rand(4)
    earliness = MatchedEarlinessWeight(None, start=0.7, every=4, rate=1.0)
    earliness.episodes(np.array([True, False, False]), np.array([0.5, 0.5, 0.5]))
    return {
        "nets": (online, target, optimiser),
        "rng": rng,
        "earliness": earliness,
        "replay": replay_with_two_steps(),
    }


def fresh() -> dict[str, Any]:
    """Newly built objects of the same shapes, in other states."""
    return {
        "nets": nets(100),
        "rng": np.random.default_rng(100),
        "earliness": MatchedEarlinessWeight(None, start=0.2, every=4, rate=1.0),
        "replay": TransitionReplay(capacity=8, num_envs=2, obs_dim=2, n_actions=3),
    }


def save(path: Path, run: dict[str, Any], counters: tuple[int, int] = (1234, 56)) -> None:
    save_checkpoint(path, run["nets"], counters, run["rng"], run["earliness"], run["replay"])


def load(path: Path, run: dict[str, Any]) -> tuple[int, int]:
    return load_checkpoint(path, run["nets"], run["rng"], run["earliness"], run["replay"])


def assert_same_state(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for key, value in a.items():
        if isinstance(value, dict):
            assert_same_state(value, b[key])
        elif isinstance(value, torch.Tensor):
            assert torch.equal(value, b[key]), key
        else:
            assert value == b[key], key


def test_round_trip_restores_networks_optimiser_and_counters(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    run = mid_run()
    save(path, run, counters=(1234, 56))
    resumed = fresh()
    assert load(path, resumed) == (1234, 56)
    for saved, loaded in zip(run["nets"], resumed["nets"]):
        assert_same_state(saved.state_dict(), loaded.state_dict())
    # the online net is the online net (not the target): they differ
    online, target, _ = resumed["nets"]
    assert not torch.equal(online.head.advantage.weight, target.head.advantage.weight)


def test_round_trip_continues_both_random_streams(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    run = mid_run()
    save(path, run)
    expected_numpy = run["rng"].random(3)
    expected_torch = torch.rand(3)  # the torch stream as it stood at the save
    resumed = fresh()
    torch.manual_seed(100)
    load(path, resumed)
    np.testing.assert_array_equal(resumed["rng"].random(3), expected_numpy)
    assert torch.equal(torch.rand(3), expected_torch)


def test_round_trip_keeps_the_earliness_weight_and_its_pending_episodes(tmp_path: Path) -> None:
    """Restored: value 0.7 and 3 pending episodes [hit, miss, miss] at 0.5. A 4th (a miss
    at 0.5) completes the update: A = 1/4, E = 0.5, w = 0.25 / (0.25 + 0.125) = 2/3, and
    rate 1 gives exactly 2/3 (without the pending three, 1 < 4 episodes: no update, 0.7)."""
    path = tmp_path / "checkpoint.pt"
    save(path, mid_run())
    resumed = fresh()
    load(path, resumed)
    earliness = resumed["earliness"]
    assert earliness.value == 0.7
    earliness.episodes(np.array([False]), np.array([0.5]))
    assert earliness.value == pytest.approx(2 / 3, abs=1e-12)


def test_round_trip_restores_the_replay_memory(tmp_path: Path) -> None:
    """4 rows per sub-env (8 // 2); sub-env 0 stored both steps, sub-env 1 only the first
    (its second was invalid): counts [2, 1], next rows [2, 1]; sampling from the restored
    replay then gives the same batch as from the original."""
    path = tmp_path / "checkpoint.pt"
    run = mid_run()
    save(path, run)
    resumed = fresh()
    load(path, resumed)
    replay = resumed["replay"]
    assert replay.count.tolist() == [2, 1] and replay.position.tolist() == [2, 1]
    assert_same_state(run["replay"].state_dict(), replay.state_dict())
    a = run["replay"].sample(6, 2, 0.5, np.random.default_rng(1))
    b = replay.sample(6, 2, 0.5, np.random.default_rng(1))
    assert torch.equal(a.returns, b.returns) and torch.equal(a.obs, b.obs)


def test_optimiser_restored_takes_the_same_next_step(tmp_path: Path) -> None:
    """AdamW's moments and step count come back: one more step with the same gradient
    moves the resumed online net exactly as the original."""
    path = tmp_path / "checkpoint.pt"
    run = mid_run()
    save(path, run)
    resumed = fresh()
    load(path, resumed)
    for online, _, optimiser in (run["nets"], resumed["nets"]):
        optimiser.zero_grad()
        online(torch.tensor([[0.5, 2.0]])).sum().backward()
        optimiser.step()
    assert_same_state(run["nets"][0].state_dict(), resumed["nets"][0].state_dict())
    assert resumed["nets"][2].state_dict()["state"][0]["step"].item() == 2.0


def test_checkpoint_holds_only_weights_only_values(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    save(path, mid_run(), counters=(7, 3))
    state = torch.load(path, weights_only=True)
    assert set(state) == {
        "online", "target", "optimiser", "global_step", "updates", "rng", "torch_rng",
        "earliness_weight", "replay",
    }  # fmt: skip
    assert (state["global_step"], state["updates"]) == (7, 3)
    assert state["earliness_weight"]["value"] == 0.7


def test_without_replay_and_earliness_the_given_ones_are_left_as_they_are(
    tmp_path: Path,
) -> None:
    """A run with ``checkpoint_replay`` off and a fixed earliness weight saves neither;
    loading then leaves the resumed run's own (empty replay, value 0.2) untouched."""
    path = tmp_path / "checkpoint.pt"
    run = mid_run()
    save_checkpoint(path, run["nets"], (10, 2), run["rng"], None, None)
    assert not {"replay", "earliness_weight"} & set(torch.load(path, weights_only=True))
    resumed = fresh()
    assert load(path, resumed) == (10, 2)
    assert len(resumed["replay"]) == 0 and resumed["earliness"].value == 0.2


def test_saving_again_replaces_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    run = mid_run()
    save(path, run, counters=(100, 1))
    save(path, run, counters=(200, 2))
    assert load(path, fresh()) == (200, 2)


def test_a_save_that_fails_midway_leaves_the_last_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills up while the next checkpoint is written: the previous one (steps
    100, updates 1) is still there, whole, and no temporary file is left behind."""
    path = tmp_path / "checkpoint.pt"
    run = mid_run()
    save(path, run, counters=(100, 1))

    def disk_full(obj: Any, f: Any) -> None:
        Path(f).write_bytes(b"half a checkpoint")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save(path, run, counters=(200, 2))
    monkeypatch.undo()
    assert load(path, fresh()) == (100, 1)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


class NotAWeight:
    """Any object other than tensors and plain values (what an untrusted pickle could hold)."""


def test_a_checkpoint_holding_an_arbitrary_object_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    save(path, mid_run())
    state = torch.load(path, weights_only=True)
    state["extra"] = NotAWeight()
    torch.save(state, path)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load(path, fresh())


def test_a_truncated_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    save(path, mid_run())
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(RuntimeError, match="zip archive"):
        load(path, fresh())


def test_a_checkpoint_of_another_network_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    save(path, mid_run())
    other = fresh()
    online, target = network(0, hidden=5), network(1, hidden=5)
    other["nets"] = (online, target, torch.optim.AdamW(online.parameters()))
    with pytest.raises(RuntimeError, match="size mismatch"):
        load(path, other)


def test_a_checkpoint_of_another_replay_shape_is_refused(tmp_path: Path) -> None:
    """A replay of 4 sub-envs cannot take the columns of 2: the message names the field."""
    path = tmp_path / "checkpoint.pt"
    save(path, mid_run())
    other = fresh()
    other["replay"] = TransitionReplay(capacity=16, num_envs=4, obs_dim=2, n_actions=3)
    with pytest.raises(ValueError, match="checkpoint: replay field 'obs' has shape"):
        load(path, other)


def test_a_missing_checkpoint_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "checkpoint.pt", fresh())
