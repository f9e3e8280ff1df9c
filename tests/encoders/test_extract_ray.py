"""``avemotion extract --ray``: on a small local Ray (2 CPUs, no dashboard) over the synthetic
audio-visual corpus, the store equals the single-process store bit for bit (with media read
on the workers or staged through the object store), a worker killed mid-run is replaced, a
killed driver resumes; and, without Ray, the retry, stall and lost-clip rules."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from optional_extras import require_extra

require_extra("ray.data", "ray")

import ray  # noqa: E402

from avemotion import FeatureStore  # noqa: E402
from avemotion.cli import main as cli_main  # noqa: E402
from avemotion.encoders import extract_ray  # noqa: E402
from avemotion.encoders.bundle import build_nets, save_encoder  # noqa: E402
from avemotion.encoders.extract import ExtractConfig, ExtractionError, extract, work_dir  # noqa: E402
from avemotion.encoders.extract_ray import RayOptions, RayTimes, extract_on_ray  # noqa: E402
from avemotion.encoders.layouts import Item  # noqa: E402

ARRAYS = ("frames", "offsets", "lengths", "labels", "speaker_index")


@pytest.fixture(scope="module")
def corpus(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic AV corpus (12 clips) plus one file that is not a video, listed."""
    root = tmp_path_factory.mktemp("ray-corpus") / "corpus"
    shutil.copytree(synthetic_root, root)
    (root / "broken.mkv").write_text("not a video\n")
    with open(root / "data.csv", "a") as sheet:
        sheet.write("broken.mkv,happy,s2\n")
    return root


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded, untrained audio-visual encoder (both branches, face search, fusion)."""
    torch.manual_seed(0)
    config = {
        "class_names": ["happy", "sad"],
        "steps_per_second": 10.0,
        "audio": {"variant": "small"},
        "visual": {"variant": "small"},
        "fusion": {"hidden": 32},
    }
    return save_encoder(tmp_path_factory.mktemp("enc") / "av", config, build_nets(config))


def _config(corpus: Path, encoder: Path, out: Path, **kw: object) -> ExtractConfig:
    return ExtractConfig("csv", str(corpus), str(encoder), str(out), progress=False, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def single(corpus: Path, encoder: Path, tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    """The single-process store every Ray run must equal."""
    out = tmp_path_factory.mktemp("single") / "store"
    return extract(_config(corpus, encoder, out, workers=1))[0]


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=str(tmp_path_factory.mktemp("ray")),
    )
    yield
    ray.shutdown()


def assert_same_store(a: FeatureStore, b: FeatureStore) -> None:
    for name in ARRAYS:
        np.testing.assert_array_equal(np.asarray(getattr(a, name)), np.asarray(getattr(b, name)))
    assert a.meta == b.meta  # checksums, clip ids, speakers, skipped lines, face fraction


# ------------------------------------------------------------------ on a local Ray
def test_two_workers_write_the_single_process_store(
    local_ray: None, corpus: Path, encoder: Path, single: FeatureStore, tmp_path: Path
) -> None:
    out = tmp_path / "store"
    store, skipped, times = extract_on_ray(_config(corpus, encoder, out), RayOptions(workers=2))
    assert_same_store(store, single)
    (line,) = [s for s in skipped if "broken.mkv" in s]
    assert line.startswith(f"{corpus / 'broken.mkv'}: ")
    assert store.meta["files"] == {"seen": 14, "kept": 12, "skipped": 2}
    assert not work_dir(out).exists()
    assert len(times.encode_s) == 13 and 1 <= len(times.actor_load_s) <= 2  # one load per actor
    assert 0 < times.work_s <= times.total_s


def test_too_few_cpus_for_the_workers_is_said(
    local_ray: None, capsys: pytest.CaptureFixture[str]
) -> None:
    extract_ray._check_cpus(2)
    assert capsys.readouterr().err == ""
    extract_ray._check_cpus(3)
    assert capsys.readouterr().err == (
        "note: the Ray cluster has 2 CPUs, fewer than the 3 its workers ask "
        "(--workers x --threads-per-worker); some wait until CPUs are added\n"
    )


def _map_workers() -> list[int]:
    """PIDs of the live Ray Data actors that encode clips (Ray titles them by class)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"MapWorker(MapBatches(ClipEncoder))" in command and b"__init__" not in command:
            found.append(int(entry.name))
    return found


def test_a_worker_killed_mid_run_is_replaced_with_staged_media(
    local_ray: None, corpus: Path, encoder: Path, single: FeatureStore, tmp_path: Path
) -> None:
    """One run for two rules (a Ray start costs seconds): media shipped through the object
    store give the same store, and so does a run that lost a worker mid-way; the broken
    file's skip line (in meta) names the corpus's path, not the staged copy's."""
    out = tmp_path / "store"
    work = work_dir(out)
    result: dict[str, object] = {}
    options = RayOptions(workers=2, stage_media=True)
    run = threading.Thread(
        target=lambda: result.update(
            store=extract_on_ray(_config(corpus, encoder, out), options)[0]
        )
    )
    run.start()
    victim = None
    while run.is_alive() and victim is None:  # the first clip written: actors are encoding
        if any(work.glob("[0-9]*.json")):
            victim = next(iter(_map_workers()), None)
        time.sleep(0.01)
    assert victim is not None, "the run ended before a worker could be killed"
    done_at_kill = len(list(work.glob("[0-9]*.json")))
    os.kill(victim, signal.SIGKILL)
    run.join()
    assert done_at_kill < 12, "the kill came after the last clip"
    assert victim not in _map_workers()
    assert_same_store(result["store"], single)  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_killed_driver_resumes_to_the_same_store(
    local_ray: None, corpus: Path, encoder: Path, single: FeatureStore, tmp_path: Path
) -> None:
    """SIGKILL of the driver (and its local Ray) at about half-way, then a rerun."""
    out = tmp_path / "store"
    work = work_dir(out)
    argv = [sys.executable, "-m", "avemotion", "extract", "--dataset", "csv", "--root", corpus,
            "--encoder", encoder, "--out", out, "--ray", "--workers", "2", "--no-progress"]  # fmt: skip
    process = subprocess.Popen(
        [str(a) for a in argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        start_new_session=True,
    )
    try:
        while process.poll() is None and len(list(work.glob("[0-9]*.json"))) < 6:
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    written = len(list(work.glob("[0-9]*.json")))
    assert 6 <= written < 12, f"the kill came at {written} of 12 clips"
    assert not (out / "meta.json").exists()
    done = written + len(list(work.glob("*.skip")))
    store, _, times = extract_on_ray(_config(corpus, encoder, out), RayOptions(workers=2))
    assert_same_store(store, single)
    assert len(times.encode_s) == 13 - done  # the resumed run encoded only the clips left
    assert not work.exists()


# ------------------------------------------------------------------ the rules, without Ray
def _item(tmp_path: Path) -> Item:
    return Item(tmp_path / "a.wav", "happy", "s1", "a")


def test_a_failing_clip_is_tried_once_more(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[str] = []

    def flaky(item: Item, level: str) -> tuple[bytes | None, str]:
        calls.append(level)
        if len(calls) == 1:
            raise RuntimeError("out of memory")
        return b"rows", "{}"

    monkeypatch.setattr(extract_ray, "clip_output", flaky)
    assert extract_ray._attempt_twice(_item(tmp_path), "embedding") == (b"rows", "{}")
    assert calls == ["embedding", "embedding"]


def test_a_clip_failing_twice_is_skipped_with_its_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[int] = []

    def broken(item: Item, level: str) -> tuple[bytes | None, str]:
        calls.append(1)
        raise RuntimeError(f"attempt {len(calls)} failed\nsecond line")

    monkeypatch.setattr(extract_ray, "clip_output", broken)
    rows, reason = extract_ray._attempt_twice(_item(tmp_path), "embedding")
    assert rows is None and len(calls) == 2
    assert (
        reason
        == f"{tmp_path / 'a.wav'}: failed twice on a Ray worker (RuntimeError: attempt 2 failed)"
    )


def test_the_times_by_hand() -> None:
    """Worker 1 encodes from 10.0 s, worker 2 joins at 11.5 s (the dataset launched at 8.0):
    start-up is over at 11.5, after which 3 clips end by 13.5 s: 1.5 clips/s."""
    times = RayTimes(launch=8.0)
    times.spans = [
        (1, 10.0, 11.0),
        (1, 11.0, 12.0),
        (1, 12.0, 13.0),
        (2, 11.5, 12.5),
        (2, 12.5, 13.5),
    ]
    assert times.actor_start_s == 3.5  # 11.5 - 8.0
    assert times.work_s == 3.5  # 13.5 - 10.0
    assert times.steady_clips_per_s == 1.5  # 3 / (13.5 - 11.5)


def test_results_that_stall_time_out(tmp_path: Path) -> None:
    release = threading.Event()

    def stalling() -> Iterator[int]:
        yield 1
        yield 2
        release.wait()  # never set while the consumer waits: a stalled shard
        yield 3

    seen = []
    with pytest.raises(TimeoutError):
        for value in extract_ray._within(stalling(), timeout=0.3):
            seen.append(value)
    release.set()
    assert seen == [1, 2]
    assert list(extract_ray._within(iter([4, 5]), timeout=5)) == [4, 5]


def test_a_stalled_run_stops_with_one_line_and_keeps_its_clips(
    monkeypatch: pytest.MonkeyPatch, corpus: Path, encoder: Path, tmp_path: Path
) -> None:
    from avemotion.encoders.extract import prepare

    out = tmp_path / "store"
    job = prepare(_config(corpus, encoder, out))
    release = threading.Event()

    def first_clip_then_stall(job, options, times):  # type: ignore[no-untyped-def]
        yield {"index": 0, "rows": b"", "ok": False, "text": "x: unusable", "pid": 1,
               "load_s": 0.0, "encode_s": 0.0, "start": 0.0, "end": 0.0}  # fmt: skip
        release.wait()

    monkeypatch.setattr(extract_ray, "_results", first_clip_then_stall)
    with pytest.raises(ExtractionError) as error:
        extract_ray._collect(job, RayOptions(clip_timeout=0.5), RayTimes())
    release.set()
    assert str(error.value) == (
        f"--clip-timeout: no clip finished in 0.5 s; 12 clip(s) left (first: "
        f"{job.corpus.items[1].path}); the 1 done are kept in {work_dir(out)}: run again to resume"
    )
    assert (work_dir(out) / "000000.skip").read_text() == "x: unusable"


def test_clips_ray_gave_up_on_are_skipped_not_lost(
    corpus: Path, encoder: Path, tmp_path: Path
) -> None:
    from avemotion.encoders.extract import prepare

    job = prepare(_config(corpus, encoder, tmp_path / "store"))
    job.pending = [0, 1, 2]
    extract_ray._lost(job, returned={1})
    for index in (0, 2):
        assert (job.work / f"{index:06d}.skip").read_text() == (
            f"{job.corpus.items[index].path}: its Ray worker died twice while encoding it"
        )
    assert not (job.work / "000001.skip").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--stage-media"], "--stage-media: only read with --ray"),
        (["--threads-per-worker", "2"], "--threads-per-worker: only read with --ray"),
        (["--clip-timeout", "5"], "--clip-timeout: only read with --ray"),
        (["--ray", "--clip-timeout", "0"], "--clip-timeout: expected seconds > 0, got 0.0"),
        (["--ray", "--threads-per-worker", "0"], "--threads-per-worker: expected an integer >= 1, got 0"),
    ],
)  # fmt: skip
def test_ray_flags_are_checked_before_anything_runs(
    corpus: Path, encoder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    flags: list[str], message: str,
) -> None:  # fmt: skip
    argv = ["extract", "--dataset", "csv", "--root", str(corpus), "--encoder", str(encoder),
            "--out", str(tmp_path / "store"), "--no-progress", *flags]  # fmt: skip
    assert cli_main(argv) == 2
    assert capsys.readouterr().err.strip() == f"avemotion extract: error: {message}"
    assert not work_dir(tmp_path / "store").exists()
