"""A smoke run of ``avemotion bench env``: it runs and reports every figure (speed is not asserted)."""

from __future__ import annotations

import json

import pytest

from avemotion.benchmarks.env_speed import best_rate, random_store, single_env_rate
from avemotion.cli import main


def test_bench_env_quick_reports_all_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "env", "--quick"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result["single_env_steps_per_s"]) == {"AVEmotion-v0", "CartPole-v1"}
    assert all(v > 0 for v in result["single_env_steps_per_s"].values())
    keys = result["vector_env_steps_per_s"]
    for dim in (128, 1408):
        for n in (1, 64, 1024):
            assert keys[f"dim={dim},num_envs={n},obs_mode=frame"] > 0


def _fake_clock(monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    """A clock that only the steps below advance (best_rate reads ``time.perf_counter``)."""
    import types

    import avemotion.benchmarks.env_speed as env_speed

    clock = {"now": 5.0}
    monkeypatch.setattr(env_speed, "time", types.SimpleNamespace(perf_counter=lambda: clock["now"]))
    return clock


def test_rate_calls_the_step_exactly_steps_times_repeats_and_times_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock, calls = _fake_clock(monkeypatch), []

    def step(i: int) -> None:
        calls.append(i)
        clock["now"] += 0.01 if len(calls) <= 5 else 0.02  # the second repeat is slower

    rate = best_rate(step, steps=5, repeats=2)
    assert calls == [0, 1, 2, 3, 4] * 2
    assert rate == pytest.approx(100.0)  # 5 calls in 0.05 s, the better repeat


def test_rate_repeats_rounds_of_steps_until_min_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    clock, calls = _fake_clock(monkeypatch), []

    def step(i: int) -> None:
        calls.append(i)
        clock["now"] += 0.01

    # a round of 3 calls lasts 0.03 s: a 0.05 s repeat takes a second round
    rate = best_rate(step, steps=3, repeats=1, min_seconds=0.05)
    assert calls == [0, 1, 2, 3, 4, 5]
    assert rate == pytest.approx(100.0)


def test_random_store_has_the_documented_shape(tmp_path) -> None:
    store = random_store(tmp_path / "r", dim=3, n_clips=40, n_classes=4, seed=1)
    assert (store.n_clips, store.dim, store.n_classes) == (40, 3, 4)
    assert store.lengths.min() >= 20 and store.lengths.max() <= 80
    assert set(store.labels.tolist()) <= set(range(4))
    assert store.speaker_set == [f"B{i}" for i in range(8)]


def test_single_env_rate_plays_only_allowed_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    from avemotion.envs import AVEmotionEnv

    taken: list[bool] = []
    original = AVEmotionEnv.step

    def recording_step(self: AVEmotionEnv, action: object):
        taken.append(bool(self.action_masks()[int(action)]))
        return original(self, action)

    monkeypatch.setattr(AVEmotionEnv, "step", recording_step)
    assert single_env_rate("AVEmotion-v0", steps=300) > 0
    assert len(taken) == 300 * 3 and all(taken)  # 3 timed repeats, never a masked wait
