"""``avemotion bench extract``: extraction on a local Ray at several worker counts.

Each worker count runs :func:`~avemotion.encoders.extract_ray.extract_on_ray` on a fresh
local Ray over the same clips (RAVDESS when present, else generated speech-like audio),
after one single-process run every Ray store is checked against. Reported apart: Ray's
start-up, the encoder's broadcast, the actors' encoder loads, and clips/s with start-up
excluded (first clip started to last clip ended) and included (the whole run). The hours
for 100,000 clips are a projection from the 1-worker per-clip cost, labelled as such.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from avemotion.encoders.extract import ExtractConfig, extract
from avemotion.encoders.extract_ray import RayOptions, extract_on_ray
from avemotion.store import FeatureStore

PROJECTED_CLIPS = 100_000
PROJECTED_WORKERS = (1, 8, 64)
CLASS_NAMES = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")


def _ravdess_corpus(source: Path, clips: int, folder: Path) -> Path:
    """The first ``clips`` RAVDESS files (actor by actor), copied in the corpus's layout."""
    files = sorted(source.glob("Actor_*/*.*"))[:clips]
    if len(files) < clips:
        raise ValueError(f"--clips: {source} holds {len(files)} clips, fewer than {clips}")
    for file in files:
        target = folder / file.parent.name / file.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, target)
    return folder


def _synthetic_corpus(clips: int, folder: Path) -> Path:
    """``clips`` generated voiced sounds of 3.5 s (RAVDESS's length), as a CSV corpus."""
    import soundfile

    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    t = np.arange(int(3.5 * 16000)) / 16000
    for i in range(clips):
        rng = np.random.default_rng(i)
        pitch = 100.0 + 5.0 * (i % 40)
        envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t) ** 2
        wave = sum(np.sin(k * 2 * np.pi * pitch * t) / k for k in range(1, 6))
        audio = 0.15 * envelope * wave + 0.005 * rng.standard_normal(t.size)
        soundfile.write(folder / f"c{i:05d}.wav", audio.astype(np.float32), 16000)
        rows.append(f"c{i:05d}.wav,{CLASS_NAMES[i % 8]},s{i % 10}")
    (folder / "data.csv").write_text("\n".join(rows) + "\n")
    return folder


def _seeded_encoder(folder: Path) -> Path:
    """The CPU-sized audio branch, seeded and untrained (its cost is a trained one's)."""
    import torch

    from avemotion.encoders.bundle import build_nets, save_encoder

    config = {
        "class_names": list(CLASS_NAMES),
        "steps_per_second": 10.0,
        "audio": {"variant": "small"},
    }
    torch.manual_seed(0)
    return save_encoder(folder / "encoder", config, build_nets(config))


def _same(a: FeatureStore, b: FeatureStore) -> bool:
    arrays = ("frames", "offsets", "lengths", "labels", "speaker_index")
    return a.meta == b.meta and all(
        np.array_equal(np.asarray(getattr(a, n)), np.asarray(getattr(b, n))) for n in arrays
    )


def _ray_run(config: ExtractConfig, workers: int, reference: FeatureStore) -> dict[str, Any]:
    store, _, times = extract_on_ray(config, RayOptions(workers=workers))
    clips = len(times.encode_s)
    return {
        "clips_per_s": times.steady_clips_per_s,
        "clips_per_s_first_to_last": clips / times.work_s,
        "clips_per_s_with_startup": clips / times.total_s,
        "startup_s": times.startup_s,
        "broadcast_s": times.broadcast_s,
        "actor_load_s": max(times.actor_load_s),
        "actor_start_s": times.actor_start_s,
        "total_s": times.total_s,
        "encode_s_per_clip": float(np.mean(times.encode_s)),
        "identical": _same(store, reference),
    }


@contextmanager
def _private_cache(folder: Path) -> Iterator[Callable[[], None]]:
    """``$AVEMOTION_CACHE`` pointed at ``folder`` (restored after), and a function that
    empties it: encoders that cache their outputs per clip (the Whisper branch) then pay
    for every clip in every run. Set before Ray starts, so its workers share it."""
    before = os.environ.get("AVEMOTION_CACHE")
    os.environ["AVEMOTION_CACHE"] = str(folder)
    try:
        yield lambda: shutil.rmtree(folder, ignore_errors=True)
    finally:
        if before is None:
            os.environ.pop("AVEMOTION_CACHE", None)
        else:
            os.environ["AVEMOTION_CACHE"] = before


def run_extract_benchmark(
    workers: list[int], clips: int, root: str | None = None, encoder: str | None = None
) -> dict[str, Any]:
    """clips/s of ``avemotion extract --ray`` at each worker count, over ``clips`` clips."""
    from avemotion.shared import shared_data_root

    if clips < 2:
        raise ValueError(f"--clips: expected at least 2, got {clips}")
    if not workers or min(workers) < 1:
        raise ValueError(f"--workers: expected counts >= 1, got {workers}")
    source = Path(root) if root else shared_data_root() / "ravdess-speech-16k"
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="avemotion-bench-extract-") as tmp:
        work = Path(tmp)
        if source.is_dir():
            corpus, dataset, kind = (
                _ravdess_corpus(source, clips, work / "corpus"),
                "ravdess",
                "ravdess",
            )
        else:
            corpus, dataset, kind = _synthetic_corpus(clips, work / "corpus"), "csv", "synthetic"
        enc = Path(encoder) if encoder else _seeded_encoder(work)

        def config(name: str) -> ExtractConfig:
            return ExtractConfig(
                dataset, str(corpus), str(enc), str(work / name), workers=1, progress=False
            )

        with _private_cache(work / "cache") as cold:
            cold()
            began = time.perf_counter()
            reference, _ = extract(config("single"))
            single_s = time.perf_counter() - began
            runs = {}
            for w in sorted(set(workers)):
                cold()  # every run encodes every clip: none reads another's cached outputs
                runs[str(w)] = _ray_run(config(f"ray-{w}"), w, reference)
    load.append(os.getloadavg()[0])
    return _summary(
        runs,
        kind,
        clips,
        str(encoder or "seeded VGGish audio branch (the paper's)"),
        single_s,
        load,
    )


def _summary(
    runs: dict[str, dict[str, Any]], kind: str, clips: int, encoder: str, single_s: float,
    load: list[float],
) -> dict[str, Any]:  # fmt: skip
    low, high = min(runs, key=int), max(runs, key=int)
    per_clip = 1.0 / runs[low]["clips_per_s"] * int(low)  # one worker's seconds per clip
    return {
        "benchmark": "extract",
        "media": kind,
        "clips": clips,
        "encoder": encoder,
        "clips_per_s": {w: r["clips_per_s"] for w, r in runs.items()},
        "clips_per_s_first_to_last": {w: r["clips_per_s_first_to_last"] for w, r in runs.items()},
        "clips_per_s_with_startup": {w: r["clips_per_s_with_startup"] for w, r in runs.items()},
        "speedup": runs[high]["clips_per_s"] / runs[low]["clips_per_s"],
        "speedup_with_startup": runs[high]["clips_per_s_with_startup"]
        / runs[low]["clips_per_s_with_startup"],
        "startup_s": runs[high]["startup_s"],
        "broadcast_s": runs[high]["broadcast_s"],
        "actor_load_s": runs[high]["actor_load_s"],
        "actor_start_s": runs[high]["actor_start_s"],
        "runs": runs,
        "single_process_clips_per_s": clips / single_s,
        "identical_to_single_process": all(r["identical"] for r in runs.values()),
        "load_average_1min": {"before": load[0], "after": load[1]},
        "projection": {
            "label": "PROJECTION, not measured: hours for 100,000 clips from the measured "
            "1-worker cost per clip, assuming workers of the measuring machine's kind scale linearly",
            "seconds_per_clip": per_clip,
            "hours": {str(n): PROJECTED_CLIPS * per_clip / n / 3600 for n in PROJECTED_WORKERS},
        },
    }
