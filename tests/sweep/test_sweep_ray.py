"""The sweep on a local Ray: 2 folds x 2 agents x 1 seed, one-by-one equality, and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from clip_replay import play_clip_by_clip
from optional_extras import require_extra

require_extra("ray.tune", "ray")

import ray  # noqa: E402

from avemotion.holds import HOLD_AT, HOLD_DIR  # noqa: E402
from avemotion.sweep import SweepError, TrialSpec, run_sweep, run_trial  # noqa: E402
from avemotion.training.train import load_agent  # noqa: E402

AGENTS = ("dqn", "dqn-recurrent")
FOLDS = "speakers:S01;S02"
STEPS = 400
# The cheapest configuration of our DQN (no fitted posterior front end): the sweep machinery
# is under test here, not the agent.
AGENT_KWARGS = {"frontend": "raw", "q_head": "free"}
COMPARED = ("accuracy", "earliness", "harmonic_mean", "confusion_matrix", "n_clips")


def replay_clip_by_clip(run_dir: Path, store) -> tuple[np.ndarray, np.ndarray]:
    """A second implementation of a trial's evaluation: the run's agent on one single env,
    one clip at a time (the sweep batches clips through ``act_batch`` on the vector env)."""
    return play_clip_by_clip(load_agent(run_dir), store)


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A small local Ray (2 CPUs, no dashboard, logs in a temp dir); yields its address."""
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=str(tmp_path_factory.mktemp("ray")),
    )
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def sweep(local_ray: str, synthetic, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sweep")
    results = run_sweep(
        synthetic.path, AGENTS, [0], FOLDS, STEPS, out, agent_kwargs=AGENT_KWARGS, verbose=0
    )
    return out, results


def test_sweep_writes_one_entry_per_trial_and_the_table(sweep, synthetic) -> None:
    out, results = sweep
    assert json.loads((out / "results.json").read_text()) == results
    trials = results["trials"]
    assert [(t["fold"], t["agent"], t["seed"]) for t in trials] == [
        (fold, agent, 0) for fold in ("S01", "S02") for agent in AGENTS
    ]
    for entry in trials:
        held_out = synthetic.subset(speakers=[entry["fold"]])
        predictions, steps = replay_clip_by_clip(Path(entry["run_dir"]), held_out)
        confusion = np.zeros((held_out.n_classes,) * 2, dtype=int)
        np.add.at(confusion, (held_out.labels, predictions), 1)
        accuracy = float(np.mean(predictions == held_out.labels))
        earliness = float(np.mean(steps / held_out.lengths))
        assert entry["confusion_matrix"] == confusion.tolist()
        assert entry["accuracy"] == pytest.approx(accuracy)
        assert entry["earliness"] == pytest.approx(earliness)
        hm = 2 * accuracy * (1 - earliness) / (accuracy + 1 - earliness)
        assert entry["harmonic_mean"] == pytest.approx(hm)
        assert entry["n_clips"] == 60 and entry["test_speakers"] == [entry["fold"]]
        assert entry["torch_threads"] == 1  # one CPU reserved per trial
        assert (Path(entry["run_dir"]) / "config.json").is_file()
    assert [row["agent"] for row in results["table"]] == list(AGENTS)
    assert all(row["n_trials"] == 2 and row["n_folds"] == 2 for row in results["table"])
    markdown = (out / "comparison.md").read_text()
    assert all(f"| {agent} |" in markdown for agent in AGENTS)
    assert (out / "comparison.csv").is_file()
    wins = results["wins"]  # the paired per-fold comparison of our DQN with the other agent
    assert wins["best_other"] == "dqn-recurrent" and wins["folds"] == ["S01", "S02"]
    assert wins["wins"] + wins["ties"] + wins["losses"] == 2
    assert f"{wins['wins']} wins, {wins['ties']} ties, {wins['losses']} losses" in markdown


def test_trained_on_other_speakers_only(sweep) -> None:
    for entry in sweep[1]["trials"]:
        config = json.loads((Path(entry["run_dir"]) / "config.json").read_text())
        assert entry["fold"] not in config["train_speakers"]


def test_results_match_running_the_trials_one_by_one(sweep, synthetic, tmp_path) -> None:
    for entry in sweep[1]["trials"]:
        spec = TrialSpec(
            entry["fold"], tuple(entry["test_speakers"]), entry["agent"], entry["seed"]
        )
        alone = run_trial(spec, synthetic.path, STEPS, tmp_path / "runs", agent_kwargs=AGENT_KWARGS)
        assert {k: alone[k] for k in COMPARED} == {k: entry[k] for k in COMPARED}, spec.trial_id


def test_an_existing_sweep_is_not_overwritten(sweep, synthetic) -> None:
    with pytest.raises(FileExistsError, match="resume"):
        run_sweep(synthetic.path, AGENTS, [0], FOLDS, STEPS, sweep[0], agent_kwargs=AGENT_KWARGS)


def test_resume_refuses_a_different_sweep(sweep, synthetic) -> None:
    with pytest.raises(ValueError, match="steps"):
        run_sweep(
            synthetic.path,
            AGENTS,
            [0],
            FOLDS,
            STEPS + 1,
            sweep[0],
            agent_kwargs=AGENT_KWARGS,
            resume=True,
        )


def test_an_interrupted_sweep_resumes_without_redoing_finished_trials(
    local_ray: str, synthetic, tmp_path
) -> None:
    out = tmp_path / "sweep"
    argv = [
        sys.executable,
        "-m",
        "avemotion",
        "sweep",
        "--features",
        str(synthetic.path),
        "--agents",
        "dqn",
        "--seeds",
        "0",
        "--folds",
        FOLDS,
        "--steps",
        "500",
        "--out",
        str(out),
        "--address",
        local_ray,
        "--cpus-per-trial",
        "2",
        "--quiet",
    ]
    # Two CPUs per trial on a two-CPU Ray: the trials run one after the other. The driver is
    # held right after it records the first trial (avemotion.holds), interrupted there, then
    # released: the interrupt lands before the second trial can finish, whatever the timing.
    holds = tmp_path / "holds"
    holds.mkdir()
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", HOLD_AT: "sweep-trial:1",
             HOLD_DIR: str(holds)},
    )  # fmt: skip
    while not (holds / "sweep-trial.held").exists():
        assert process.poll() is None, "the sweep ended before its first trial was recorded"
        time.sleep(0.01)
    lines: list[str] = []
    process.send_signal(signal.SIGINT)
    (holds / "sweep-trial.release").touch()
    output = "".join(lines) + process.communicate(timeout=120)[0]
    assert process.returncode == 1, output
    assert (out / "results.json").is_file(), output
    partial = json.loads((out / "results.json").read_text())
    assert len(partial["trials"]) == 1 and len(partial["unfinished"]) == 1, output
    done = Path(partial["trials"][0]["run_dir"])
    stamp = (done / "summary.json").stat().st_mtime_ns

    with pytest.raises(FileExistsError):
        run_sweep(synthetic.path, ["dqn"], [0], FOLDS, 500, out, cpus_per_trial=2, verbose=0)
    results = run_sweep(
        synthetic.path, ["dqn"], [0], FOLDS, 500, out, cpus_per_trial=2, resume=True, verbose=0
    )
    assert [t["fold"] for t in results["trials"]] == ["S01", "S02"]
    assert results["trials"][0] == partial["trials"][0]
    assert (done / "summary.json").stat().st_mtime_ns == stamp
    assert not results["unfinished"] and not results["failed"]
    assert [t["torch_threads"] for t in results["trials"]] == [2, 2]


def test_failed_trials_are_reported_after_the_others_are_written(
    local_ray: str, synthetic, tmp_path
) -> None:
    # Bad options are refused before Ray starts (test_sweep_arguments.py); a trial fails on
    # Ray when its run directory cannot be made: here a file is in its place.
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "S01__dqn__seed0").write_text("not a directory")
    with pytest.raises(SweepError, match="failed: .*S01__dqn__seed0"):
        run_sweep(synthetic.path, ["dqn"], [0], "speakers:S01", 50, tmp_path, verbose=0)
    results = json.loads((tmp_path / "results.json").read_text())
    assert list(results["failed"]) == ["S01__dqn__seed0"]
