"""The DQN's resumable checkpoint (:mod:`avemotion.agents.dqn.checkpoint`).

A checkpoint written mid-run and read into fresh objects must give back exactly what a
resumed run needs: both networks, the optimiser's moments, the env steps and updates, the
numpy and torch random streams (continuing where they stopped), the matched earliness
weight with its pending episodes, and the replay memory. It loads with
``weights_only=True``, so a file holding anything but tensors and plain values is
refused, and a checkpoint that is damaged or does not fit (another network, optimiser or
replay shape, a missing field) is refused in one line naming it, with nothing loaded.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from avemotion.agents.dqn.checkpoint import load_checkpoint, pack_rng, save_checkpoint, unpack_rng
from avemotion.agents.dqn.earliness_weight import MatchedEarlinessWeight
from avemotion.agents.dqn.networks import FrontEnd, MLPQNetwork
from avemotion.agents.dqn.replay import TransitionReplay


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


def everything(run: dict[str, Any]) -> dict[str, Any]:
    """Copies of all that loading a checkpoint may change: both networks, the optimiser's
    moments, both random streams (numpy's and torch's global one), the earliness weight
    and the replay memory."""
    online, target, optimiser = run["nets"]
    return copy.deepcopy(
        {
            "online": online.state_dict(),
            "target": target.state_dict(),
            "optimiser": optimiser.state_dict(),
            "rng": run["rng"].bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "earliness": run["earliness"].state_dict(),
            "replay": run["replay"].state_dict(),
        }
    )


def refused_untouched(path: Path, run: dict[str, Any]) -> str:
    """Load ``path`` into ``run``, expecting a one-line ValueError naming the path and no
    change to anything ``run`` holds; the message."""
    before = everything(run)
    with pytest.raises(ValueError) as refused:
        load(path, run)
    message = str(refused.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    assert_same_state(everything(run), before)
    return message


def other_run() -> dict[str, Any]:
    """A run of its own (trained a step, streams advanced) that a load must leave alone."""
    return mid_run(seed=7)


def test_a_checkpoint_holding_an_arbitrary_object_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    save(path, mid_run())
    state = torch.load(path, weights_only=True)
    state["extra"] = NotAWeight()
    torch.save(state, path)
    message = refused_untouched(path, other_run())
    assert message == (
        f"{path}: not a readable checkpoint: it holds objects other than tensors and plain "
        "values (weights_only refused it)"
    )


def test_a_truncated_checkpoint_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    save(path, mid_run())
    path.write_bytes(path.read_bytes()[:200])
    message = refused_untouched(path, other_run())
    assert message == (
        f"{path}: not a readable checkpoint (RuntimeError: PytorchStreamReader failed "
        "reading zip archive: failed finding central directory)"
    )


def test_an_empty_checkpoint_file_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"")
    assert refused_untouched(path, other_run()) == f"{path}: not a readable checkpoint (EOFError)"


def test_a_checkpoint_of_another_network_is_refused(tmp_path: Path) -> None:
    """Hidden size 3 saved, 5 given: torch's strict load would copy the parameters whose
    shapes agree before refusing; here nothing is copied."""
    path = tmp_path / "checkpoint.pt"
    save(path, mid_run())
    other = other_run()
    online, target = network(0, hidden=5), network(1, hidden=5)
    optimiser = torch.optim.AdamW(online.parameters())
    online(torch.tensor([[1.0, -1.0]])).sum().backward()
    optimiser.step()
    other["nets"] = (online, target, optimiser)
    assert refused_untouched(path, other) == (
        f"{path}: online 'body.0.weight' has shape (3, 2), expected (5, 2)"
    )


def test_a_checkpoint_of_another_replay_shape_is_refused(tmp_path: Path) -> None:
    """A replay of 4 sub-envs cannot take the columns of 2: refused before the networks,
    optimiser and random streams, which load before the replay, are overwritten."""
    path = tmp_path / "checkpoint.pt"
    save(path, mid_run())
    other = other_run()
    other["replay"] = TransitionReplay(capacity=16, num_envs=4, obs_dim=2, n_actions=3)
    assert refused_untouched(path, other) == (
        f"{path}: replay 'obs' has shape (4, 2, 2), expected (4, 4, 2)"
    )


def _set(*keys: Any, value: Any) -> Callable[[dict[str, Any]], None]:
    """An edit of the saved state: ``state[k1][k2]... = value``."""

    def edit(state: dict[str, Any]) -> None:
        for key in keys[:-1]:
            state = state[key]
        state[keys[-1]] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda state: state.pop("torch_rng"), "missing 'torch_rng'"),
        (lambda state: state.update(global_step=1.5), "'global_step' is not an integer"),
        (lambda state: state["online"].pop("head.value.bias"), "online is missing"),
        (_set("target", "extra", value=torch.zeros(1)), "target has an unexpected 'extra'"),
        (
            lambda state: state["optimiser"]["param_groups"].append({"params": []}),
            "optimiser has 2 parameter groups, expected 1",
        ),
        (
            lambda state: state["optimiser"]["param_groups"][0]["params"].pop(),
            "optimiser group 0 has",
        ),
        (
            _set("optimiser", "state", 0, "exp_avg", value=torch.zeros(7)),
            "optimiser 'exp_avg' of parameter 0 has shape (7,), expected",
        ),
        (
            _set("replay", "obs", value=torch.zeros(4, 2, 2, dtype=torch.float64)),
            "replay 'obs' has dtype torch.float64, expected torch.float32",
        ),
        (lambda state: state["replay"].pop("count"), "replay is missing 'count'"),
        (_set("rng", "inc", value="not a number"), "'rng' is not a PCG64 random state"),
        (_set("torch_rng", value=torch.zeros(3, dtype=torch.uint8)), "'torch_rng' has shape"),
        (
            _set("earliness_weight", "hits", value=torch.zeros(2, 2, dtype=torch.bool)),
            "earliness_weight 'hits' has ndim 2, expected 1",
        ),
        (_set("earliness_weight", "value", value="0.7"), "earliness_weight 'value' is not a"),
    ],
)
def test_a_checkpoint_that_does_not_fit_changes_nothing(
    edit: Callable[[dict[str, Any]], None], message: str, tmp_path: Path
) -> None:
    """Each field is checked before anything is loaded: the first misfit is named."""
    path = tmp_path / "checkpoint.pt"
    save(path, mid_run())
    state = torch.load(path, weights_only=True)
    edit(state)
    torch.save(state, path)
    refused = refused_untouched(path, other_run())
    assert refused.startswith(f"{path}: {message}"), refused


def test_a_missing_checkpoint_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "checkpoint.pt", fresh())


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
