"""Extraction: media → per-step features → a :class:`~avemotion.FeatureStore`.

Every clip is encoded on its own (so the result does not depend on batching, worker count
or interruptions) and saved atomically into a work directory next to the output
(``STORE.work/``). A killed run started again with the same arguments skips the clips already
there and ends with the same store as an uninterrupted run. Every file under the corpus root
is accounted for: in a clip, or skipped with a one-line reason (outside the corpus's naming,
a dangling link, another extension, a speaker not selected, unreadable, silent, too short…).
The store's metadata keeps the list (``skipped``) and the counts (``files``: seen = kept +
skipped). The run fails only if nothing was extracted.
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from avemotion.atomic import replace_atomic
from avemotion.encoders.bundle import Encoder, load_encoder
from avemotion.encoders.datasets import Corpus, Item, list_corpus
from avemotion.encoders.face import load_cascade
from avemotion.encoders.media import MediaError
from avemotion.encoders.steps import ClipSteps, StepConfig, clip_steps
from avemotion.holds import reached
from avemotion.store import FeatureStore, check_replaceable


@dataclass
class ExtractConfig:
    """One extraction run (``avemotion extract``)."""

    dataset: str
    """Corpus adapter name or ``csv``."""
    root: str
    """Corpus folder (or CSV file)."""
    encoder: str
    """Encoder directory (ENC_DIR)."""
    out: str
    """Store directory to write."""
    level: str = "embedding"
    """``embedding``, ``fusion`` or ``temporal`` (see ``avemotion.encoders.bundle.LEVELS``)."""
    speakers: list[str] | None = None
    """Only these speakers (default: all)."""
    exclude_speakers: list[str] = field(default_factory=list)
    """Leave these speakers out."""
    workers: int = 2
    """Worker processes, each with one torch thread (1 = in this process)."""
    frame_pool: int = 1
    """Face frames per step (11 for the paper's pooling at stride 2)."""
    overwrite: bool = False
    """Replace an existing store."""
    allow_outside_root: bool = False
    """Let a CSV's paths leave the dataset root."""
    progress: bool = True
    """Show a progress bar."""
    device: str = "cpu"
    """torch device the encoder's networks run on (in every worker)."""

    def __post_init__(self) -> None:
        # Refused here, not downstream: a negative pool was written into the store's meta.json.
        for name in ("workers", "frame_pool"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                flag = "--" + name.replace("_", "-")
                raise ValueError(f"{flag}: expected an integer >= 1, got {value!r}")


class ExtractionError(ValueError):
    """Nothing could be extracted; the message names the first reason."""


# ------------------------------------------------------------------------------ one clip
_WORKER: dict[str, Any] = {}


def _init_worker(
    enc_dir: str, step_config: dict[str, Any], threads: int, device: str = "cpu"
) -> None:
    torch.set_num_threads(threads)
    encoder = load_encoder(enc_dir, device)
    _WORKER.update(
        encoder=encoder,
        steps=StepConfig(**step_config),
        cascade=load_cascade() if encoder.visual is not None else None,
    )


def decode_clip(
    encoder: Encoder, item: Item, steps: StepConfig, cascade: object | None = None
) -> ClipSteps:
    """One clip's steps, decoded for the branches ``encoder`` has (audio patches, face crops)."""
    return clip_steps(
        item,
        encoder.audio is not None,
        encoder.visual is not None,
        steps,
        face=encoder.face_config if encoder.visual is not None else None,
        cascade=cascade,
        whisper=encoder.audio_features,
    )


def encode_clip(
    encoder: Encoder, item: Item, level: str, steps: StepConfig, cascade: object | None = None
) -> tuple[np.ndarray, int]:
    """Encode one clip: its ``[T, dim]`` float32 rows at ``level`` and its face-detected steps."""
    rows, clip = _encode(encoder, item, level, steps, cascade)
    return rows, clip.faces_detected


def _encode(
    encoder: Encoder, item: Item, level: str, steps: StepConfig, cascade: object | None
) -> tuple[np.ndarray, ClipSteps]:
    clip = decode_clip(encoder, item, steps, cascade)
    audio = (
        stream_audio_embeddings(encoder, clip.audio_rows()) if encoder.audio is not None else None
    )
    visual = encoder.visual_embeddings(clip.crops) if encoder.visual is not None else None
    rows = encoder.level_features(level, audio, visual, clip.patches).numpy().astype(np.float32)
    return rows, clip


def stream_audio_embeddings(encoder: Encoder, patches: torch.Tensor) -> torch.Tensor:
    """``[T, 128]`` audio embeddings computed one step at a time, as a stream computes them
    (``patches``: what the audio branch reads, :meth:`ClipSteps.audio_rows`).

    oneDNN's convolutions round differently by batch size (up to 1e-5 in the first layer),
    so a store embedded in one batch would not be what ``avemotion stream`` sees; one step
    at a time makes the stored rows bit-identical to the stream's (about 3× the CNN time).
    """
    if len(patches) == 0:
        return encoder.audio_embeddings(patches)
    return torch.cat([encoder.audio_embeddings(patch[None]) for patch in patches])


def _atomic_write(path: Path, write: Any) -> None:
    with replace_atomic(path) as tmp:
        write(tmp)


def clip_output(item: Item, level: str) -> tuple[bytes | None, str]:
    """One clip encoded by this process's worker state: its rows as ``.npy`` bytes and its
    info as JSON, or ``(None, reason)`` when its media cannot be used."""
    try:
        rows, clip = _encode(_WORKER["encoder"], item, level, _WORKER["steps"], _WORKER["cascade"])
    except MediaError as error:
        return None, str(error)
    buffer = io.BytesIO()
    np.save(buffer, rows)
    info = {
        "clip_id": item.clip_id,
        "detected": clip.faces_detected,
        "steps": len(rows),
        "cut_steps": clip.cut_steps,
        "cut_seconds": clip.cut_seconds,
    }
    return buffer.getvalue(), json.dumps(info)


def save_clip(work: Path, index: int, rows: bytes | None, text: str) -> str | None:
    """Keep clip ``index``'s output (from :func:`clip_output`) in ``work``, each file
    atomically (rows before info: a clip is done once both exist); the skip reason or None."""
    if rows is None:
        _atomic_write(work / f"{index:06d}.skip", lambda p: p.write_text(text))
    else:
        _atomic_write(work / f"{index:06d}.npy", lambda p: p.write_bytes(rows))
        _atomic_write(work / f"{index:06d}.json", lambda p: p.write_text(text))
    reached("extract-clip")
    return text if rows is None else None


def _work_clip(task: tuple[int, Item, str, str]) -> tuple[int, str | None]:
    index, item, level, work = task
    return index, save_clip(Path(work), index, *clip_output(item, level))


# ------------------------------------------------------------------------------ the run
def _fingerprint(config: ExtractConfig, items: list[Item], enc_dir: Path, threads: int) -> str:
    digest = hashlib.blake2b(digest_size=12)
    job = {
        k: v
        for k, v in asdict(config).items()
        if k not in ("workers", "overwrite", "progress", "out")
    }
    if threads != 1:  # more torch threads round differently: their clips are another job's
        job["threads"] = threads
    digest.update(json.dumps(job, sort_keys=True).encode())
    for item in items:
        digest.update(
            f"{item.path}|{item.audio_path}|{item.label}|{item.speaker}|{item.clip_id}\n".encode()
        )
    for file in sorted(enc_dir.iterdir()):
        if file.is_file():
            digest.update(file.name.encode() + file.read_bytes())
    return digest.hexdigest()


def work_dir(out: str | os.PathLike[str]) -> Path:
    """Where completed clips of an unfinished extraction into ``out`` are kept."""
    out = Path(out)
    return out.with_name(out.name + ".work")


def _done(work: Path, index: int) -> bool:
    return (work / f"{index:06d}.skip").is_file() or (
        (work / f"{index:06d}.npy").is_file() and (work / f"{index:06d}.json").is_file()
    )


@dataclass
class Job:
    """A prepared extraction (:func:`prepare`): what is left to encode, and where it goes."""

    config: ExtractConfig
    encoder: Encoder
    corpus: Corpus
    steps: StepConfig
    work: Path
    """The work directory (:func:`work_dir`) the finished clips are kept in."""
    pending: list[int]
    """Corpus indices of the clips not yet in ``work``, in corpus order."""

    def progress_bar(self) -> tqdm:
        """One bar over the corpus's clips, started at the clips already done."""
        total = len(self.corpus.items)
        return tqdm(
            total=total,
            initial=total - len(self.pending),
            desc=f"extract {self.config.dataset}",
            unit="clip",
            disable=not self.config.progress,
        )

    def finish(self) -> tuple[FeatureStore, list[str]]:
        """Assemble the store from the work directory, in corpus order, and remove it."""
        return _assemble(self.config, self.encoder, self.corpus, self.work, Path(self.config.out))


def prepare(config: ExtractConfig, threads: int = 1) -> Job:
    """Check the output and the encoder, list the corpus, and open (or resume) the work
    directory: a work directory of another job (its fingerprint differs) is started afresh.
    ``threads``: the torch threads each clip is encoded with (1 in a single-process run)."""
    out = Path(config.out)
    try:  # before any work: the output must be replaceable without loss
        check_replaceable(out, config.overwrite)
    except FileExistsError:
        raise FileExistsError(f"{out}: a store already exists here (pass --overwrite)") from None
    encoder = load_encoder(config.encoder)
    encoder.check_level(config.level)
    if config.frame_pool != 1 and encoder.visual is None:
        # pooling face frames means nothing without a visual branch; refuse, not ignore
        raise ValueError(
            f"--frame-pool: {config.encoder} has no visual part (modality {encoder.modality}); "
            f"expected 1, got {config.frame_pool}"
        )
    media = {"audio": "audio", "visual": "visual", "audio-visual": "fusion"}[encoder.modality]
    corpus = list_corpus(
        config.dataset,
        config.root,
        media,
        config.allow_outside_root,
        exclude=(out, work_dir(out)),
    )
    corpus.select(config.speakers, config.exclude_speakers, "--speakers / --exclude-speakers")
    items = corpus.items
    steps = StepConfig(
        encoder.steps_per_second,
        encoder.visual.input_size if encoder.visual is not None else 112,
        config.frame_pool,
    )
    work = work_dir(out)
    fingerprint = _fingerprint(config, items, Path(config.encoder), threads)
    job_file = work / "job.json"
    if work.is_dir() and (
        not job_file.is_file() or json.loads(job_file.read_text()).get("fingerprint") != fingerprint
    ):
        shutil.rmtree(work)  # left by a different job: start afresh
    work.mkdir(parents=True, exist_ok=True)
    _atomic_write(
        job_file,
        lambda p: p.write_text(json.dumps({"fingerprint": fingerprint, "n_items": len(items)})),
    )
    pending = [i for i in range(len(items)) if not _done(work, i)]
    return Job(config, encoder, corpus, steps, work, pending)


def extract(config: ExtractConfig) -> tuple[FeatureStore, list[str]]:
    """Run (or resume) an extraction; return the store and the skipped files' reasons."""
    job = prepare(config)
    items = job.corpus.items
    tasks = [(i, items[i], config.level, str(job.work)) for i in job.pending]
    bar = job.progress_bar()
    init_args = (str(config.encoder), asdict(job.steps), 1, config.device)
    if config.workers > 1 and len(tasks) > 1:
        context = multiprocessing.get_context("spawn")
        with context.Pool(config.workers, initializer=_init_worker, initargs=init_args) as pool:
            for _ in pool.imap_unordered(_work_clip, tasks, chunksize=4):
                bar.update()
    else:
        threads = torch.get_num_threads()
        _init_worker(*init_args)
        try:
            for task in tasks:
                _work_clip(task)
                bar.update()
        finally:
            torch.set_num_threads(threads)
    bar.close()
    return job.finish()


def _assemble(
    config: ExtractConfig, encoder: Encoder, corpus: Corpus, work: Path, out: Path
) -> tuple[FeatureStore, list[str]]:
    sequences, kept, detected, total = [], [], 0, 0
    cut: list[str] = []  # kept clips whose audio outlasts their video (clip_steps)
    for index, item in enumerate(list(corpus.items)):
        skip = work / f"{index:06d}.skip"
        if skip.is_file():
            corpus.drop(item, skip.read_text().strip())
            continue
        sequences.append(np.load(work / f"{index:06d}.npy", allow_pickle=False))
        info = json.loads((work / f"{index:06d}.json").read_text())
        detected += info["detected"]
        total += info["steps"]
        if info.get("cut_steps"):
            cut.append(
                f"{item.path}: {info['cut_steps']} step(s), {info['cut_seconds']:.2f} s of audio "
                "past the end of its video, left out"
            )
        kept.append(item)
    account = corpus.account
    skipped = account.lines()
    if not kept:
        raise ExtractionError(
            f"{account.summary()}: nothing could be extracted; first: {skipped[0] if skipped else 'none'}"
        )
    in_clips = {os.path.abspath(p) for i in kept for p in (i.path, i.audio_path) if p is not None}
    assert set(account.kept) == in_clips, "every kept file is in a clip, and only those"
    meta = store_meta(
        config, encoder, detected / total if encoder.visual is not None and total else None, skipped
    )
    meta["files"] = account.counts()
    meta["cut"] = cut
    store = FeatureStore.create(
        out,
        sequences,
        [corpus.classes.index(i.label) for i in kept],
        [i.speaker for i in kept],
        corpus.classes,
        clip_ids=[i.clip_id for i in kept],
        meta=meta,
        overwrite=config.overwrite,
    )
    shutil.rmtree(work, ignore_errors=True)
    return store, skipped


def store_meta(
    config: ExtractConfig, encoder: Encoder, face_fraction: float | None, skipped: list[str]
) -> dict[str, Any]:
    """The store metadata of an extraction: corpus, modality, time base, encoder identity and
    training speakers, level layout, face-detected fraction and every skipped file's line."""
    history = encoder.config.get("history", [])
    trained_on = sorted({s for entry in history for s in entry.get("train_speakers", [])})
    layout: dict[str, list[int]] = {}
    if config.level == "embedding":
        start = 0
        for part, dim in (
            ("visual", encoder.visual.dim if encoder.visual is not None else 0),
            ("audio", encoder.audio.dim if encoder.audio is not None else 0),
        ):
            if dim:
                layout[part] = [start, start + dim]
                start += dim
    elif config.level == "temporal":
        hidden = encoder.temporal.hidden  # type: ignore[union-attr]
        layout = {"hidden": [0, hidden], "posteriors": [hidden, hidden + encoder.n_classes]}
    return {
        "corpus": config.dataset,
        "root": str(config.root),
        "modality": encoder.modality,
        "steps_per_second": encoder.steps_per_second,
        "encoder": encoder.identity,
        "encoder_dir": str(Path(config.encoder).resolve()),
        "encoder_classes": encoder.class_names,
        "encoder_train_speakers": trained_on,
        "level": config.level,
        "parts": layout,
        "frame_pool": config.frame_pool,
        "face_detected_fraction": face_fraction,
        "skipped": skipped,
    }
