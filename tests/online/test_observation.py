"""The agent's observation of a live stream (:mod:`avemotion.online.observation`).

:class:`StreamingObservation` step by step on a tiny made-up sequence, checked by hand and
against the env's own observation table; :func:`run_layout` and :func:`training_store`
rebuilding what a run was trained with; and the inputs they refuse.
"""

from __future__ import annotations

import numpy as np
import pytest

from avemotion.envs.core import FrameSource, ObservationLayout
from avemotion.online.observation import StreamingObservation, run_layout, training_store
from avemotion.store import FeatureStore
from avemotion.training.run_dir import training_record

# Two speakers, dim 2: clip A (speaker S1, 3 steps) and clip B (speaker S2, 1 step);
# T_max = 3, the longest clip.
CLIP_A = [[1.0, 2.0], [3.0, 6.0], [5.0, 1.0]]
CLIP_B = [[-2.0, 0.0]]
THIRD = 1 / 3


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    sequences = [np.array(CLIP_A, dtype=np.float32), np.array(CLIP_B, dtype=np.float32)]
    return FeatureStore.create(
        tmp_path_factory.mktemp("observation") / "store",
        sequences,
        [0, 1],
        ["S1", "S2"],
        ["calm", "sad"],
    )


def stream(observation: StreamingObservation, frames: list[list[float]]) -> np.ndarray:
    return np.stack([observation.advance(np.array(frame)) for frame in frames])


def test_frame_and_mean_observations_by_hand(store: FeatureStore) -> None:
    """``[frame, running mean of 0..t, t / T_max]``, T_max = 3, over clip A and two more
    steps past T_max (a live stream can outlast the longest training clip):

    t=0 frame (1, 2): mean (1, 2);                               time 0
    t=1 frame (3, 6): mean (1, 2) + ((3, 6) - (1, 2)) / 2 = (2, 4); time 1/3
    t=2 frame (5, 1): mean (2, 4) + ((5, 1) - (2, 4)) / 3 = (3, 3); time 2/3
    t=3 frame (3, -1): mean (3, 3) + ((3, -1) - (3, 3)) / 4 = (3, 2); time 3/3 = 1
    t=4 frame (8, 2): mean (3, 2) + ((8, 2) - (3, 2)) / 5 = (4, 2); time min(4/3, 1) = 1
    """
    observation = StreamingObservation(ObservationLayout(store, "frame+mean"))
    assert observation.max_length == 3
    seen = stream(observation, [*CLIP_A, [3.0, -1.0], [8.0, 2.0]])
    expected = [
        [1, 2, 1, 2, 0],
        [3, 6, 2, 4, THIRD],
        [5, 1, 3, 3, 2 * THIRD],
        [3, -1, 3, 2, 1],
        [8, 2, 4, 2, 1],
    ]
    np.testing.assert_allclose(seen, expected, rtol=1e-6, atol=1e-7)
    assert seen.dtype == np.float32 and observation.t == 5


@pytest.mark.parametrize("mode", ["frame+mean", "mean", "frame"])
def test_streaming_gives_the_env_observation_table(store: FeatureStore, mode: str) -> None:
    """Row by row, the stream's observations of each clip are the env's preloaded table
    rows (the same layout and float32 update), whatever the mode; a reset restarts the
    running mean and the time between clips as a new episode does."""
    layout = ObservationLayout(store, mode)
    table = FrameSource(store, layout, preload=True).obs_table
    observation = StreamingObservation(layout)
    clip_a = stream(observation, CLIP_A)
    observation.reset()
    clip_b = stream(observation, CLIP_B)
    np.testing.assert_array_equal(np.vstack([clip_a, clip_b]), table)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        # frame only: [frame, t / 3]
        ("frame", [[1, 2, 0], [3, 6, THIRD]]),
        # mean only: [mean, t / 3], mean (1, 2) then ((1, 2) + (3, 6)) / 2 = (2, 4)
        ("mean", [[1, 2, 0], [2, 4, THIRD]]),
    ],
)
def test_single_part_modes_by_hand(store: FeatureStore, mode: str, expected: list) -> None:
    observation = StreamingObservation(ObservationLayout(store, mode))
    np.testing.assert_allclose(stream(observation, CLIP_A[:2]), expected, rtol=1e-6)


def test_reset_restarts_the_running_mean_and_the_time(store: FeatureStore) -> None:
    """After clip A (mean (3, 3), t = 3) a reset starts over: frame (4, 0) at t = 0 has
    mean (4, 0) and time 0, not (3 + (4 - 3) / 4, 3 + (0 - 3) / 4) = (3.25, 2.25) at 1."""
    observation = StreamingObservation(ObservationLayout(store, "frame+mean"))
    stream(observation, CLIP_A)
    observation.reset()
    assert observation.t == 0
    np.testing.assert_array_equal(observation.advance(np.array([4.0, 0.0])), [4, 0, 4, 0, 0])


def test_each_observation_is_a_copy_that_later_steps_leave_alone(store: FeatureStore) -> None:
    observation = StreamingObservation(ObservationLayout(store, "frame+mean"))
    first = observation.advance(np.array([1.0, 2.0]))
    first[:] = 99.0  # the caller may write on what it got
    second = observation.advance(np.array([3.0, 6.0]))
    np.testing.assert_allclose(second, [3, 6, 2, 4, THIRD], rtol=1e-6)
    observation.advance(np.array([5.0, 1.0]))
    np.testing.assert_allclose(second, [3, 6, 2, 4, THIRD], rtol=1e-6)  # unchanged


@pytest.mark.parametrize("shape", [(3,), (1, 2), ()])
def test_a_frame_of_the_wrong_size_is_refused(store: FeatureStore, shape: tuple) -> None:
    observation = StreamingObservation(ObservationLayout(store, "frame+mean"))
    with pytest.raises(ValueError, match=r"frame: expected 2 values per step, got shape"):
        observation.advance(np.ones(shape))
    assert observation.t == 0  # nothing advanced


def run_config(obs_mode: str | None, obs_dim: int, **extra: object) -> dict:
    agent_config = {} if obs_mode is None else {"obs_mode": obs_mode}
    return {"agent_config": agent_config, "obs_dim": obs_dim, **extra}


def test_run_layout_defaults_to_frame_and_mean_over_the_longest_clip(store: FeatureStore) -> None:
    """No ``obs_mode`` recorded: ``frame+mean``, size 2 + 2 + 1 = 5, T_max = 3."""
    layout = run_layout(run_config(None, 5), store)
    assert (layout.mode, layout.size, layout.max_length) == ("frame+mean", 5, 3)


def test_run_layout_takes_the_runs_own_max_length(store: FeatureStore) -> None:
    """``mean`` mode: size 2 + 1 = 3; the run's T_max 4 replaces the store's 3, so step 2
    has time 2 / 4 = 0.5 (a ``max_length`` of 0 or None means none recorded)."""
    layout = run_layout(run_config("mean", 3, max_length=4), store)
    assert (layout.size, layout.max_length, layout.progress(2)) == (3, 4, 0.5)
    assert run_layout(run_config("mean", 3, max_length=None), store).max_length == 3
    assert run_layout(run_config("mean", 3, max_length=0), store).max_length == 3


def test_run_layout_refuses_an_observation_size_the_run_was_not_trained_with(
    store: FeatureStore,
) -> None:
    with pytest.raises(ValueError, match=r"obs_dim: the store gives 3, the run was trained with 5"):
        run_layout(run_config("frame", 5), store)
    with pytest.raises(ValueError, match=r"obs_mode: expected one of"):
        run_layout(run_config("frames", 3), store)


def test_training_store_reopens_the_runs_store_with_its_speakers(store: FeatureStore) -> None:
    """The run's recorded speaker selection applies: S1 keeps clip A only (T_max 3),
    excluding S1 leaves clip B (T_max 1). A run from before runs recorded their training
    data reads its top-level ``store`` and selection the same way."""
    kept_record = training_record(store.path, store, store.subset(speakers=["S1"]), ["S1"], None)
    kept = training_store({"training": kept_record, "store": "/nowhere"}, "run")
    assert kept.speakers == ["S1"] and kept.lengths.tolist() == [3]
    left_record = training_record(
        store.path, store, store.subset(exclude_speakers=["S1"]), None, ["S1"]
    )
    left = training_store({"training": left_record}, "run")
    assert left.lengths.tolist() == [1]
    assert ObservationLayout(left, "frame").max_length == 1
    path = str(store.path)
    assert training_store({"store": path}, "run").lengths.tolist() == [3, 1]
    legacy = training_store({"store": path, "exclude_speakers": ["S1"]}, "run")
    assert legacy.lengths.tolist() == [1]


def test_training_store_refuses_a_store_changed_since_training(store: FeatureStore) -> None:
    record = training_record(store.path, store, store, None, None)
    with pytest.raises(ValueError, match=r"^run/config\.json: training\.digest: .* changed"):
        training_store({"training": {**record, "digest": "0" * 16}}, "run")


def test_training_store_refuses_a_run_on_the_synthetic_corpus() -> None:
    with pytest.raises(ValueError, match=r"^my-run: store: the run was trained on the synthetic"):
        training_store({"training": {}}, "my-run")
