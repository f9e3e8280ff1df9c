"""The training log: windowed episode means by hand, the resume that drops rows the
checkpoint did not keep, and reading the CSV back."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from avemotion.agents.training_log import BASE_COLUMNS, TrainingLog, read_log


def test_window_means_by_hand(tmp_path: Path) -> None:
    """Window 1: returns 1 and 0, one of two correct, earliness 2/4 and 3/6 (0.5 each):
    return 0.5, accuracy 0.5, earliness 0.5, HM 2·0.5·0.5 / (0.5 + 0.5) = 0.5.
    Window 2: three episodes at once, returns 1, 1, -1, correct 2 of 3, earliness 1/4,
    1/2, 3/4 (mean 0.5): return 1/3, accuracy 2/3, HM 2·(2/3)·0.5 / (2/3 + 0.5) = 4/7."""
    log = TrainingLog(tmp_path, ("loss",), tensorboard=False)
    log.episode(1.0, True, 2, 4)
    log.episode(0.0, False, 3, 6)
    first = log.row(100, loss=0.25)
    assert (first["episodes"], first["episode_return"], first["accuracy"]) == (2, 0.5, 0.5)
    assert (first["earliness"], first["harmonic_mean"], first["loss"]) == (0.5, 0.5, 0.25)
    log.episodes_batch(
        np.array([1.0, 1.0, -1.0]), np.array([1, 1, 0]), np.array([1, 2, 3]), np.array([4, 4, 4])
    )
    second = log.row(200)
    assert second["episodes"] == 5
    assert second["episode_return"] == pytest.approx(1 / 3)
    assert second["accuracy"] == pytest.approx(2 / 3)
    assert second["earliness"] == pytest.approx(0.5)
    assert second["harmonic_mean"] == pytest.approx(4 / 7)
    empty = log.row(300)  # no episode ended in this window
    assert math.isnan(empty["accuracy"]) and math.isnan(empty["harmonic_mean"])
    log.close()
    columns = read_log(tmp_path)
    assert list(columns) == [*BASE_COLUMNS, "loss"]
    np.testing.assert_array_equal(columns["env_steps"], [100, 200, 300])
    np.testing.assert_allclose(columns["accuracy"][:2], [0.5, 2 / 3])
    assert math.isnan(columns["loss"][1])  # not given in that row


def test_resume_drops_rows_past_the_checkpoint(tmp_path: Path) -> None:
    """Rows at 100, 200, 300 written; a checkpoint at 200 resumes: the row at 300 is
    dropped, the episode count (4 by then) and the wall clock continue from the row at 200."""
    log = TrainingLog(tmp_path, tensorboard=False)
    for steps in (100, 200, 300):
        log.episode(1.0, True, 1, 2)
        log.episode(0.0, False, 2, 2)
        log.row(steps)
    log.close()
    wall_at_200 = read_log(tmp_path)["wall_s"][1]
    resumed = TrainingLog(tmp_path, resume=True, start_step=200, tensorboard=False)
    assert resumed.episodes == 4
    assert resumed.elapsed() >= wall_at_200
    resumed.episode(1.0, True, 1, 2)
    resumed.row(250)
    resumed.close()
    columns = read_log(tmp_path)
    np.testing.assert_array_equal(columns["env_steps"], [100, 200, 250])
    np.testing.assert_array_equal(columns["episodes"], [2, 4, 5])


def test_a_fresh_log_replaces_an_old_one(tmp_path: Path) -> None:
    old = TrainingLog(tmp_path, tensorboard=False)
    old.episode(1.0, True, 1, 1)
    old.row(10)
    old.close()
    TrainingLog(tmp_path, tensorboard=False).close()  # not resuming: header only
    assert read_log(tmp_path) == {}
