"""Crash and resume: a real ``SIGKILL`` at seeded random points of three jobs run as
subprocesses (feature extraction, agent training, a Ray sweep), then a rerun.

Checked: extraction ends with a store identical to an uninterrupted run; training resumes
from its last checkpoint and ends at the step count asked; encoder training resumes after
its last finished epoch and ends with weights bit-identical to an uninterrupted run's; the
sweep redoes no finished trial; and after every kill, whatever sits under a final name is complete (a store opens,
JSON parses, checkpoints load) while half-written files are never taken as done.

Together these take minutes (each job starts torch, the sweep starts Ray), so they are
marked ``slow``; ``python experiments/crash_resume.py`` runs them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from avemotion.holds import HOLD_AT, HOLD_DIR
from avemotion.stopping.aeon import aeon_available
from avemotion.store import FeatureStore, StoreError

from .conftest import make_store, tone

pytestmark = pytest.mark.slow
SEED = int(os.environ.get("AVEMOTION_CRASH_SEED", "7"))
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
VOLATILE_META = ("created", "timestamp", "extracted_at")
"""Timestamps that may differ between two extractions (the store writes none today)."""


def avemotion(*argv: object) -> list[str]:
    return [sys.executable, "-m", "avemotion", *(str(a) for a in argv)]


def run_to_end(argv: list[str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def kill_when(
    argv: list[str],
    hold: str,
    holds: Path,
    timeout: float = 600,
    group: bool = False,
    log: Path | None = None,
) -> bool:
    """Start ``argv`` (stdout into ``log``) held at ``hold`` (``"<point>:<n>"``, see
    :mod:`avemotion.holds`), wait for the marker file the job writes there, then SIGKILL it
    (its process group with ``group``); return whether it was killed (False: it ended
    without reaching the point). ``timeout`` only bounds a job that hangs."""
    sink = open(log, "w") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    holds.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        argv,
        stdout=sink,
        stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
        env={**ENV, HOLD_AT: hold, HOLD_DIR: str(holds)},
        start_new_session=group,
    )
    marker = holds / f"{hold.rpartition(':')[0]}.held"
    try:
        wait_for(marker, process, timeout)
    finally:
        killed = process.poll() is None
        if killed:
            if group:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
        process.wait()
        if log is not None:
            sink.close()  # type: ignore[union-attr]
        marker.unlink(missing_ok=True)
    return killed


def wait_for(marker: Path, process: subprocess.Popen, timeout: float) -> None:
    """Return once ``marker`` exists or ``process`` has ended; fail past ``timeout``."""
    deadline = time.monotonic() + timeout
    while not marker.exists() and process.poll() is None:
        assert time.monotonic() < deadline, f"{marker.name}: not written in {timeout} s"
        time.sleep(0.01)


# ------------------------------------------------------------------ extraction
def _corpus(folder: Path, n: int = 16) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(SEED)
    rows = []
    for i in range(n):
        seconds = float(rng.uniform(1.2, 2.5))
        soundfile.write(folder / f"c{i:02d}.wav", tone(seconds, 16000, freq=150 + 40 * i), 16000)
        rows.append(f"c{i:02d}.wav,{['happy', 'sad', 'neutral'][i % 3]},s{i % 4}")
    (folder / "bad.wav").write_text("not audio\n")  # a skipped file must survive the resume too
    rows.insert(5, "bad.wav,sad,s1")
    (folder / "data.csv").write_text("\n".join(rows) + "\n")
    return folder


def _assert_same_store(a: FeatureStore, b: FeatureStore) -> None:
    for name in ("frames", "offsets", "lengths", "labels", "speaker_index"):
        np.testing.assert_array_equal(np.asarray(getattr(a, name)), np.asarray(getattr(b, name)))
    strip = lambda meta: {k: v for k, v in meta.items() if k not in VOLATILE_META}  # noqa: E731
    assert strip(a.meta) == strip(b.meta)


def test_extraction_killed_twice_ends_as_an_uninterrupted_run(
    audio_encoder: Path, tmp_path: Path
) -> None:
    from avemotion.encoders.extract import work_dir

    corpus = _corpus(tmp_path / "corpus")
    out = tmp_path / "resumed"
    work = work_dir(out)
    argv = avemotion(
        "extract", "--dataset", "csv", "--root", corpus, "--encoder", audio_encoder,
        "--out", out, "--workers", "1", "--no-progress",
    )  # fmt: skip
    target = int(np.random.default_rng(SEED).integers(1, 15))
    # The first run (one worker) is killed after its `target`-th clip; the second, a pool of
    # two workers, after the first clip either worker writes.
    for hold, workers in ((target, "1"), (1, "2")):
        job = [*argv[:-2], workers, argv[-1]]
        killed = kill_when(job, f"extract-clip:{hold}", tmp_path / "holds", group=True)
        assert killed, f"the extraction finished before clip {hold}"
        assert not (out / "meta.json").exists()
        with pytest.raises(StoreError):
            FeatureStore.open(out)  # nothing under the final name reads as a store
        for npy in work.glob("[0-9]*.npy"):  # every finished clip file is whole
            np.load(npy, allow_pickle=False)
    run_to_end(argv)
    whole = tmp_path / "whole"
    run_to_end([*argv[: argv.index("--out") + 1], str(whole), *argv[argv.index("--out") + 2 :]])
    resumed, uninterrupted = FeatureStore.open(out), FeatureStore.open(whole)
    assert resumed.n_clips == 16 and resumed.meta["files"] == {"seen": 18, "kept": 16, "skipped": 2}
    assert [Path(line.split(": ")[0]).name for line in resumed.meta["skipped"]] == [
        "bad.wav",
        "data.csv",
    ]
    _assert_same_store(resumed, uninterrupted)
    assert not work.exists()


# ------------------------------------------------------------------ training
def _checkpoint_step(run: Path) -> int:
    try:
        return int(torch.load(run / "checkpoint.pt", weights_only=True)["global_step"])
    except (FileNotFoundError, RuntimeError, EOFError, KeyError):
        return 0


def _log_rows(run: Path) -> list[str]:
    return (run / "training_log.csv").read_text().splitlines()[1:]


def test_training_killed_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    store = make_store(tmp_path / "store", clips_per_class=4)
    run, steps, every = tmp_path / "run", 3000, 200
    options = [
        "num_envs=4", "learning_starts=40", "batch_size=16", "hidden=[8]", "log_every=100",
        f"checkpoint_every={every}", "progress=false",
    ]  # fmt: skip
    argv = avemotion(
        "train", "--features", store.path, "--steps", steps, "--out", run, "--no-eval",
        "--set", *options,
    )  # fmt: skip
    rng = np.random.default_rng(SEED)
    saves = int(rng.integers(1, steps // every - 3))
    killed = kill_when(argv, f"dqn-checkpoint:{saves}", tmp_path / "holds")
    assert killed, "training finished before the kill"
    reached = _checkpoint_step(run)
    assert saves * every <= reached < min((saves + 1) * every, steps)  # the n-th save
    assert not (run / "summary.json").exists()  # an unfinished run does not look finished
    json.loads((run / "config.json").read_text())
    torch.load(run / "model.pt", weights_only=True)
    kept = [r for r in _log_rows(run) if int(float(r.split(",")[0])) <= reached]
    run_to_end(avemotion("train", "--features", store.path, "--steps", steps, "--out", run,
                         "--no-eval", "--resume", "--set", "progress=false"))  # fmt: skip
    summary = json.loads((run / "summary.json").read_text())
    # 3000 is a multiple of the 4 sub-envs our DQN steps together, so the resumed run
    # ends exactly at the budget
    assert summary["env_steps"] == steps
    assert _checkpoint_step(run) == summary["env_steps"]
    rows = _log_rows(run)
    assert rows[: len(kept)] == kept  # rows up to the checkpoint are the killed run's, verbatim
    logged = [int(float(r.split(",")[0])) for r in rows]
    assert logged == sorted(set(logged)) and logged[-1] == summary["env_steps"]


# ------------------------------------------------------------------ encoder training
def _encoder_epoch(out: Path) -> int:
    from avemotion.encoders.train_checkpoint import CHECKPOINT, work_dir

    try:
        return int(torch.load(work_dir(out) / CHECKPOINT, weights_only=True)["epoch"])
    except (FileNotFoundError, RuntimeError, EOFError, KeyError):
        return 0


def test_encoder_training_killed_resumes_bit_identically(tmp_path: Path) -> None:
    from avemotion.encoders.bundle import load_encoder

    corpus = _corpus(tmp_path / "corpus")
    out, epochs = tmp_path / "resumed", 10
    argv = avemotion(
        "train-encoder", "--dataset", "csv", "--root", corpus, "--modality", "audio",
        "--out", out, "--epochs", epochs, "--batch-size", 8, "--window-fraction", 1.0,
        "--heldout", "s3", "--threads", 1, "--seed", SEED,
    )  # fmt: skip
    target = int(np.random.default_rng(SEED).integers(2, epochs - 3))
    killed = kill_when(argv, f"encoder-epoch:{target}", tmp_path / "holds")
    assert killed, "training ended before the kill"
    reached = _encoder_epoch(out)
    assert reached == target
    assert not (out / "config.json").exists()  # an unfinished stage writes no encoder
    resumed = run_to_end(argv)
    # every file accounted for: bad.wav (not audio) and data.csv (the label sheet) skipped
    assert f"{corpus}: 18 file(s) seen = 16 kept + 2 skipped" in resumed.stdout
    whole = tmp_path / "whole"
    run_to_end([*argv[: argv.index("--out") + 1], str(whole), *argv[argv.index("--out") + 2 :]])
    first, second = load_encoder(out), load_encoder(whole)
    (entry,) = first.config["history"]
    assert entry["resumed_after_epoch"] == reached
    assert second.config["history"][0]["resumed_after_epoch"] == 0
    assert entry["metrics"] == second.config["history"][0]["metrics"]
    for name, value in first.audio.state_dict().items():  # type: ignore[union-attr]
        assert torch.equal(value, second.audio.state_dict()[name]), name  # type: ignore[union-attr]


# ------------------------------------------------------------------ sweep
def test_sweep_killed_redoes_no_finished_trial(tmp_path: Path) -> None:
    from optional_extras import require_extra

    require_extra("ray.tune", "ray")
    store = make_store(tmp_path / "store", speakers=3)
    out = tmp_path / "sweep"
    argv = avemotion(
        "sweep", "--features", store.path, "--agents", "dqn", "--seeds", "0,1",
        "--folds", "speakers:P1;P2", "--steps", 300, "--out", out, "--num-cpus", 1,
        "--cpus-per-trial", 1, "--quiet",
        "--agent-kwargs", json.dumps({"frontend": "raw", "q_head": "free", "num_envs": 4,
                                      "learning_starts": 40, "batch_size": 16, "hidden": [8]}),
    )  # fmt: skip
    wanted = int(np.random.default_rng(SEED).integers(1, 3))  # 1 or 2 of the 4 trials
    log = tmp_path / "sweep.log"

    def finished() -> list[str]:
        """Trials the driver announced as finished (Tune recorded their result)."""
        text = log.read_text() if log.is_file() else ""
        return [
            line.split()[1].rstrip(":")
            for line in text.splitlines()
            if line.startswith("finished ")
        ]

    killed = kill_when(argv, f"sweep-trial:{wanted}", tmp_path / "holds", group=True, log=log)
    assert killed, "the sweep finished before the kill"
    if (out / "results.json").exists():
        json.loads((out / "results.json").read_text())
    json.loads((out / "sweep.json").read_text())
    announced = finished()
    stamps = {name: (out / "runs" / name / "summary.json").stat().st_mtime_ns for name in announced}
    assert len(stamps) >= wanted
    done = run_to_end([*argv, "--resume"], timeout=900)
    results = json.loads((out / "results.json").read_text())
    assert len(results["trials"]) == 4 and not results["unfinished"] and not results["failed"]
    redone = [name for name, stamp in stamps.items()
              if (out / "runs" / name / "summary.json").stat().st_mtime_ns != stamp]  # fmt: skip
    assert not redone, f"finished trials run again after the resume: {redone}\n{done.stdout}"


# ------------------------------------------------------------------ evaluate --baselines
@pytest.mark.skipif(not aeon_available(), reason="aeon is not installed (optional extra)")
def test_baseline_evaluation_killed_redoes_no_finished_classifier(tmp_path: Path) -> None:
    """aeon's classifiers are evaluated one at a time and each kept as it finishes: a
    SIGKILL between them loses only the unfinished one, and the resumed evaluation prints
    what an uninterrupted one prints."""
    store = make_store(tmp_path / "store", speakers=6, clips_per_class=12)
    run = tmp_path / "run"
    run_to_end(avemotion(
        "train", "--features", store.path, "--steps", 200, "--out", run, "--no-eval",
        "--exclude-speakers", "P6", "--posterior", "running-mean-softmax",
        "--set", "num_envs=4", "learning_starts=40", "batch_size=16", "hidden=[8]",
        "progress=false",
    ))  # fmt: skip
    argv = avemotion(
        "evaluate", "--run", run, "--features", store.path, "--speakers", "P6", "--baselines",
        "--json",
    )  # fmt: skip
    first = run / "evaluations"
    killed = kill_when(argv, "aeon-classifier:1", tmp_path / "holds")
    assert killed, "the evaluation finished before the kill"
    (kept,) = first.glob("*/aeon_probability_threshold.json")
    assert not (kept.parent / "aeon_teaser.json").exists()
    stamp = kept.stat().st_mtime_ns
    resumed = json.loads(run_to_end(argv).stdout.strip().splitlines()[-1])
    assert kept.stat().st_mtime_ns == stamp  # not redone
    assert (kept.parent / "aeon_teaser.json").is_file()
    fresh_run = tmp_path / "fresh"
    shutil.copytree(run, fresh_run, ignore=shutil.ignore_patterns("evaluations"))
    fresh_argv = [a if a != str(run) else str(fresh_run) for a in argv]
    fresh = json.loads(run_to_end(fresh_argv).stdout.strip().splitlines()[-1])
    assert resumed["baselines"] == fresh["baselines"]
    assert set(resumed["baselines"]) >= {"threshold", "aeon_probability_threshold", "aeon_teaser"}
