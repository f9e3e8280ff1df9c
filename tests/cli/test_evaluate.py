"""``avemotion evaluate`` without ``--features``: the run's own store, on the speakers the
run left out, or a clear refusal when it left none out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from avemotion.cli import main
from avemotion.store import FeatureStore
from avemotion.training.train import train

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
    capsys.readouterr()  # what training said
    assert main(["evaluate", "--run", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "trained on every speaker of its store" in err[0]


def test_a_run_without_a_training_record_needs_a_store(
    tiny_store: FeatureStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tiny_run(tiny_store, tmp_path / "run", speakers=["P1", "P2"])
    config = json.loads((run / "config.json").read_text())
    del config["training"]  # as runs from before the record
    (run / "config.json").write_text(json.dumps(config))
    assert main(["evaluate", "--run", str(run)]) == 2
    assert "does not record its training store" in capsys.readouterr().err


def test_a_store_adapted_otherwise_than_the_training_store_is_refused(
    tiny_store: FeatureStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run on the adapted store evaluated on the raw one (or the reverse) would read rows
    it never learnt on: one line; the same adaptation evaluates."""
    from avemotion.adaptation.transform import adapt_store

    adapted = adapt_store(tiny_store, tiny_store.subset(speakers=["P1", "P2"]), tmp_path / "ad")
    on_adapted = tiny_run(adapted, tmp_path / "on-adapted", speakers=["P1", "P2"])
    on_raw = tiny_run(tiny_store, tmp_path / "on-raw", speakers=["P1", "P2"])
    capsys.readouterr()  # what training said
    for run, store in ((on_adapted, tiny_store), (on_raw, adapted)):
        argv = ["evaluate", "--run", str(run), "--features", str(store.path), "--speakers", "P3"]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "adaptation: the run was trained on an " in err[0]
    argv = ["evaluate", "--run", str(on_adapted), "--features", str(adapted.path)]
    assert main([*argv, "--speakers", "P3", "--json"]) == 0
