"""Extraction sharded over a Ray cluster with Ray Data: the same store as :func:`extract`.

The clips still to encode (:func:`~avemotion.encoders.extract.prepare`) become a dataset of
one-clip blocks, mapped by a fixed pool of actors (``map_batches`` with ``concurrency``);
each actor loads the encoder once, from bytes broadcast through the object store, and
encodes a clip with :func:`~avemotion.encoders.extract.clip_output`, as a single-process
run does (same decode, batch-1 embedding, one torch thread by default). The driver keeps
each clip in the work directory as it arrives and assembles the store in corpus order, so a
killed driver resumes from the clips written. A dead actor is restarted by Ray and its clip
retried once; a clip that raises twice, or whose worker dies twice, is skipped with the
reason; no clip finishing for ``clip_timeout`` seconds stops the run with one line.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avemotion.encoders.extract import (
    ExtractConfig,
    ExtractionError,
    Job,
    _init_worker,
    clip_output,
    prepare,
    save_clip,
)
from avemotion.encoders.layouts import Item
from avemotion.ray_cluster import connect_ray
from avemotion.store import FeatureStore

LOCAL = "local"
"""``--ray`` without an address: start a Ray instance on the local machine."""


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide an extraction runs on Ray (``avemotion extract --ray``)."""

    address: str = LOCAL
    """``local`` (start one here), ``auto`` or ``ray://host:port`` (join a cluster)."""
    workers: int = 2
    """Actors, each with one encoder and ``threads_per_worker`` CPUs."""
    threads_per_worker: int = 1
    """torch threads (and Ray CPUs) per actor. 1 is what a single-process run uses; more
    round differently (oneDNN), so the store is then not bit-identical to one."""
    clip_timeout: float = 600.0
    """Seconds without any clip finishing before the run stops (the first clip also waits
    for the actors to start)."""
    stage_media: bool = False
    """Ship the media bytes through the object store (for workers that cannot read the
    paths); otherwise the workers open the driver's paths."""

    def __post_init__(self) -> None:
        for name in ("workers", "threads_per_worker"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"--{name.replace('_', '-')}: expected an integer >= 1, got {value!r}"
                )
        if not self.clip_timeout > 0:
            raise ValueError(f"--clip-timeout: expected seconds > 0, got {self.clip_timeout!r}")


@dataclass
class RayTimes:
    """Where the wall clock of a Ray extraction went, in seconds."""

    startup_s: float = 0.0
    """Starting (or joining) Ray."""
    broadcast_s: float = 0.0
    """Putting the encoder's files into the object store (once per run)."""
    actor_load_s: list[float] = dataclasses.field(default_factory=list)
    """Each actor's start: fetching the encoder and loading it."""
    encode_s: list[float] = dataclasses.field(default_factory=list)
    """Each clip's time on its worker, decode included."""
    spans: list[tuple[int, float, float]] = dataclasses.field(default_factory=list)
    """Each clip's worker (pid) and its start and end on the worker's clock (``time.time``)."""
    launch: float = 0.0
    """The driver's clock when the dataset was launched."""
    total_s: float = 0.0
    """The whole run, start-up and assembly included."""

    def _ready(self) -> float:
        """When the last worker to start began its first clip: start-up is over."""
        firsts: dict[int, float] = {}
        for pid, start, _ in self.spans:
            firsts[pid] = min(firsts.get(pid, start), start)
        return max(firsts.values())

    @property
    def actor_start_s(self) -> float:
        """From the launch until every worker was encoding: worker processes starting,
        importing, fetching and loading the encoder."""
        return self._ready() - self.launch if self.spans else 0.0

    @property
    def work_s(self) -> float:
        """From the first clip starting to the last one ending."""
        return max(e for *_, e in self.spans) - min(s for _, s, _ in self.spans)

    @property
    def steady_clips_per_s(self) -> float:
        """Clips/s once every worker is encoding: the clips started from then on, over the
        time from then to the last clip's end (start-up, staggered or not, excluded)."""
        ready = self._ready()
        late = [end for _, start, end in self.spans if start >= ready]
        return len(late) / (max(late) - ready)


# ------------------------------------------------------------------------------ the workers
def _attempt_twice(item: Item, level: str) -> tuple[bytes | None, str]:
    """:func:`clip_output`, retried once when it raises (not for unusable media, which is a
    skip already); a second failure becomes the clip's skip reason."""
    try:
        return clip_output(item, level)
    except Exception:  # noqa: BLE001 - the second attempt reports it
        pass
    try:
        return clip_output(item, level)
    except Exception as error:  # noqa: BLE001 - kept as the clip's reason, not lost
        first = str(error).strip().splitlines()
        detail = f"{type(error).__name__}: {first[0]}" if first else type(error).__name__
        return None, f"{item.path}: failed twice on a Ray worker ({detail})"


def _staged(item: Item, row: dict[str, Any], folder: Path) -> tuple[Item, dict[str, str]]:
    """``item`` pointing at local copies of its media bytes (``--stage-media``), and the
    copies' paths mapped back to the originals (so a skip reason names the original)."""
    names: dict[str, str] = {}
    paths = {}
    for key, column in (("path", "media"), ("audio_path", "audio_media")):
        original = getattr(item, key)
        if original is None:
            continue
        copy = folder / f"{key}{Path(original).suffix}"
        copy.write_bytes(row[column])
        names[str(copy)] = str(original)
        paths[key] = copy
    return dataclasses.replace(item, **paths), names


class ClipEncoder:
    """A Ray Data actor: loads the encoder once (``files``: the object-store reference to its
    directory's files, fetched once per actor), then encodes one clip per row."""

    def __init__(
        self, files: Any, steps: dict[str, Any], threads: int, device: str, level: str
    ) -> None:
        import ray

        began = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="avemotion-encoder-") as folder:
            for name, data in ray.get(files).items():  # the driver's encoder files
                (Path(folder) / name).write_bytes(data)
            _init_worker(folder, steps, threads, device)  # all read into memory here
        self.level = level
        self.load_s = time.perf_counter() - began

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {name: [] for name in _OUT_COLUMNS}
        for i in range(len(batch["index"])):
            row = {name: values[i] for name, values in batch.items()}
            began, start = time.perf_counter(), time.time()
            rows, text = self._encode(row)
            record = {
                "index": int(row["index"]),
                "rows": rows or b"",
                "ok": rows is not None,
                "text": text,
                "pid": os.getpid(),
                "load_s": self.load_s,
                "encode_s": time.perf_counter() - began,
                "start": start,
                "end": time.time(),
            }
            for name, value in record.items():
                out[name].append(value)
        return out

    def _encode(self, row: dict[str, Any]) -> tuple[bytes | None, str]:
        audio = str(row["audio_path"]) or None
        item = Item(Path(row["path"]), str(row["label"]), str(row["speaker"]), str(row["clip_id"]),
                    Path(audio) if audio else None)  # fmt: skip
        if "media" not in row:
            return _attempt_twice(item, self.level)
        with tempfile.TemporaryDirectory(prefix="avemotion-media-") as folder:
            item, names = _staged(item, row, Path(folder))
            rows, text = _attempt_twice(item, self.level)
        if rows is None:
            for copy, original in names.items():
                text = text.replace(copy, original)
        return rows, text


_OUT_COLUMNS = ("index", "rows", "ok", "text", "pid", "load_s", "encode_s", "start", "end")


# ------------------------------------------------------------------------------ the driver
def _rows(job: Job, stage_media: bool) -> list[dict[str, Any]]:
    """The dataset: one row per pending clip, with its media bytes when staged."""
    rows = []
    for index in job.pending:
        item = job.corpus.items[index]
        row = {
            "index": index,
            "path": str(item.path),
            "audio_path": "" if item.audio_path is None else str(item.audio_path),
            "label": item.label,
            "speaker": item.speaker,
            "clip_id": item.clip_id,
        }
        if stage_media:
            row["media"] = Path(item.path).read_bytes()
            row["audio_media"] = b"" if item.audio_path is None else item.audio_path.read_bytes()
        rows.append(row)
    return rows


def _encoder_files(enc_dir: str) -> dict[str, bytes]:
    """Every file of the encoder directory (what :func:`load_encoder` reads), by name."""
    return {f.name: f.read_bytes() for f in sorted(Path(enc_dir).iterdir()) if f.is_file()}


def _results(job: Job, options: RayOptions, times: RayTimes) -> Iterator[dict[str, Any]]:
    """Ray Data's output rows, one per clip returned, as the actors finish them."""
    import ray
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # one bar, over clips: the driver's
    context.print_on_execution_start = False
    context.max_errored_blocks = -1  # a clip whose worker died twice: reported, not fatal
    # Ray Data's notices (one says its bars are off) are noise beside the one bar; its
    # errors (a clip's block given up) still show
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    began = time.perf_counter()
    files = ray.put(_encoder_files(job.config.encoder))  # once; every actor reads this copy
    times.broadcast_s = time.perf_counter() - began
    rows = _rows(job, options.stage_media)
    dataset = ray.data.from_items(rows, override_num_blocks=len(rows))
    with warnings.catch_warnings():
        # Ray 2.60 takes an actor's restarts and retries only as the deprecated free
        # remote arguments (no named parameter for them yet); the ray extra pins 2.60.
        warnings.filterwarnings("ignore", "`ray_remote_args` is deprecated")
        mapped = _map(dataset, files, job, options)
    yield from mapped.iter_rows()


def _map(dataset: Any, files: Any, job: Job, options: RayOptions) -> Any:
    """``dataset`` mapped by a fixed pool of :class:`ClipEncoder` actors, one clip per call."""
    import ray.data

    return dataset.map_batches(
        ClipEncoder,
        batch_size=1,
        # two clips per actor in flight: one encoding, one fetched; more would leave the
        # last clips queued behind one actor while another idles
        compute=ray.data.ActorPoolStrategy(size=options.workers, max_tasks_in_flight_per_actor=2),
        num_cpus=options.threads_per_worker,
        fn_constructor_args=(
            files,
            asdict(job.steps),
            options.threads_per_worker,
            job.config.device,
            job.config.level,
        ),
        max_restarts=-1,  # a dead actor is replaced ...
        max_task_retries=1,  # ... and its clip tried once more
    )


def _within(results: Iterable[dict[str, Any]], timeout: float) -> Iterator[dict[str, Any]]:
    """``results`` as they come, raising :class:`TimeoutError` when none comes for
    ``timeout`` seconds (the producer runs in a daemon thread, so a stall cannot hang us)."""
    channel: queue.Queue[tuple[str, Any]] = queue.Queue()
    end = object()

    def produce() -> None:
        try:
            for result in results:
                channel.put(("row", result))
            channel.put(("end", end))
        except BaseException as error:  # noqa: BLE001 - re-raised in the consumer
            channel.put(("error", error))

    threading.Thread(target=produce, daemon=True, name="extract-results").start()
    while True:
        try:
            kind, value = channel.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(timeout) from None
        if kind == "error":
            raise value
        if kind == "end":
            return
        yield value


def _lost(job: Job, returned: set[int]) -> None:
    """Skip, with the reason, every pending clip Ray Data gave up on (its worker died on it
    twice: killed, or crashed in native code)."""
    for index in sorted(set(job.pending) - returned):
        item = job.corpus.items[index]
        save_clip(
            job.work, index, None, f"{item.path}: its Ray worker died twice while encoding it"
        )


def _collect(job: Job, options: RayOptions, times: RayTimes) -> None:
    """Keep every clip Ray returns in the work directory, advancing one bar over clips."""
    bar = job.progress_bar()
    returned: set[int] = set()
    loads: dict[int, float] = {}
    times.launch = time.time()
    try:
        for row in _within(_results(job, options, times), options.clip_timeout):
            index = int(row["index"])
            save_clip(job.work, index, bytes(row["rows"]) if row["ok"] else None, str(row["text"]))
            returned.add(index)
            loads[int(row["pid"])] = float(row["load_s"])
            times.encode_s.append(float(row["encode_s"]))
            times.spans.append((int(row["pid"]), float(row["start"]), float(row["end"])))
            bar.update()
    except TimeoutError:
        left = [job.corpus.items[i].path for i in job.pending if i not in returned]
        raise ExtractionError(
            f"--clip-timeout: no clip finished in {options.clip_timeout:g} s; {len(left)} "
            f"clip(s) left (first: {left[0]}); the {len(returned)} done are kept in "
            f"{job.work}: run again to resume"
        ) from None
    finally:
        bar.close()
    times.actor_load_s = list(loads.values())
    _lost(job, returned)


def extract_on_ray(
    config: ExtractConfig, options: RayOptions
) -> tuple[FeatureStore, list[str], RayTimes]:
    """Run (or resume) ``config``'s extraction on Ray; return the store (equal to
    :func:`~avemotion.encoders.extract.extract`'s), the skipped files' reasons and the times."""
    import ray

    began = time.perf_counter()
    job = prepare(config, options.threads_per_worker)  # bad input: one line, before Ray
    times = RayTimes()
    if job.pending:
        local = options.address == LOCAL
        cpus = options.workers * options.threads_per_worker
        ready = time.perf_counter()
        started = connect_ray(None if local else options.address, cpus if local else None)
        times.startup_s = time.perf_counter() - ready
        _check_cpus(cpus)
        try:
            _collect(job, options, times)
        finally:
            if started:
                ray.shutdown()
    store, skipped = job.finish()
    times.total_s = time.perf_counter() - began
    return store, skipped, times


def _check_cpus(wanted: int) -> None:
    """Say, in one line on stderr, when the cluster has fewer CPUs than the actors ask
    (they wait for more: an autoscaler adds them, or ``--clip-timeout`` ends the run)."""
    import ray

    has = ray.cluster_resources().get("CPU", 0)
    if has < wanted:
        print(
            f"note: the Ray cluster has {has:g} CPUs, fewer than the {wanted} its workers ask "
            "(--workers x --threads-per-worker); some wait until CPUs are added",
            file=sys.stderr,
        )
