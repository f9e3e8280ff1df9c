"""``avemotion evaluate`` without ``--features``: the run's own store, on the speakers the
run left out, or a clear refusal when it left none out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from avemotion.agents.runner import train
from avemotion.cli import main
from avemotion.store import FeatureStore

TINY = {"num_envs": 4, "learning_starts": 20, "batch_size": 16, "hidden": [8]}


def tiny_run(store: FeatureStore, out: Path, **selection: object) -> Path:
    return train("dqn", store, 120, 0, out, progress=False, **selection, **TINY)


def test_without_features_the_left_out_speakers_of_the_runs_store(
    tiny_store: FeatureStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tiny_run(tiny_store, tmp_path / "run", speakers=["P1", "P2"])
    assert main(["evaluate", "--run", str(run), "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert result["speakers"] == ["P3"]
    assert result["n_clips"] == tiny_store.subset(speakers=["P3"]).n_clips
    assert f"evaluating on {Path(tiny_store.path).resolve()}, speakers the run left out: P3" in (
        captured.err
    )
    # a selection given keeps the run's store and uses that selection (P2 is said to be
    # a training speaker)
    with pytest.warns(UserWarning, match=r"\['P2'\] were trained on"):
        assert main(["evaluate", "--run", str(run), "--speakers", "P2", "P3", "--json"]) == 0
    chosen = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert chosen["speakers"] == ["P2", "P3"]


def test_a_run_on_every_speaker_needs_a_store(
    tiny_store: FeatureStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tiny_run(tiny_store, tmp_path / "run")
    assert main(["evaluate", "--run", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "trained on every speaker of its store" in err[0]
