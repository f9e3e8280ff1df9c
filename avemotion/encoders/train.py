"""Training the encoders in cascade: a branch (audio or visual), the fusion DNN, the LSTM.

Each stage reads the corpus through an adapter, holds out speakers, trains one part, reports
per-window and whole-clip accuracy on the held-out speakers, and writes an encoder directory
(:mod:`avemotion.encoders.bundle`). Stages chain: ``init`` names an encoder directory (or a
published weights file for a branch) to start from, so a model can be fine-tuned on corpus A
and then on corpus B, as in the paper's training strategies.

Every file under the corpus root is accounted for in the stage's history entry (``files``:
seen = kept + skipped, and ``skipped``: one line per file with its reason). A stage saves a
checkpoint after every epoch (:mod:`avemotion.encoders.train_checkpoint`), so a killed run
started again with the same arguments resumes and ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from avemotion.encoders.bundle import (
    FORMAT,
    Encoder,
    EncoderError,
    build_nets,
    load_encoder,
    save_encoder,
    visual_face_settings,
)
from avemotion.encoders.crossfit import fit_temporal
from avemotion.encoders.datasets import Corpus, list_corpus, list_dataset, select_speakers
from avemotion.encoders.face import FaceConfig, load_cascade
from avemotion.encoders.loops import ClipBatch, evaluate_windows, fit_windows
from avemotion.encoders.media import MediaError
from avemotion.encoders.models import (
    VISUAL_INPUT,
    AudioNet,
    TemporalNet,
)
from avemotion.encoders.published import branch_from_weights
from avemotion.encoders.steps import StepConfig, clip_steps
from avemotion.encoders.train_checkpoint import EpochCheckpoint, job_fingerprint, work_dir
from avemotion.encoders.train_config import MODALITIES, PARAMS_KEYS, TrainConfig
from avemotion.encoders.whisper_branch import is_whisper, whisper_features, whisper_section


# ------------------------------------------------------------------------------ set-up
def _start(
    config: TrainConfig, class_names: tuple[str, ...]
) -> tuple[dict[str, Any], dict[str, torch.nn.Module]]:
    """The encoder config and nets to train from: merged ``init`` parts, heads resized to
    the corpus's classes, and a fresh net for the stage's part when none was given."""
    enc_config: dict[str, Any] = {
        "class_names": list(class_names),
        "steps_per_second": config.steps_per_second,
        "history": [],
    }
    nets: dict[str, torch.nn.Module] = {}
    whisper_model = None
    for source in config.init:
        path = Path(source)
        if whisper_stage(config) and not is_encoder_dir(path):
            whisper_model = str(path)  # a faster-whisper folder or an OpenAI checkpoint
        elif path.is_dir():
            encoder = load_encoder(path)
            for part in ("audio", "visual", "fusion", "temporal"):
                net = getattr(encoder, part)
                if net is not None:
                    nets[part], enc_config[part] = net, encoder.config[part]
            enc_config["history"] += encoder.config.get("history", [])
        else:
            _load_branch_file(path, config, enc_config, nets)
    k = len(class_names)
    for net in nets.values():  # a new corpus may have another class set
        if net.head.out_features != k:
            if isinstance(net, AudioNet):
                net.reset_head(k)
            else:
                net.head = torch.nn.Linear(net.head.in_features, k)
    part = config.modality
    if part == "audio" and "audio" not in nets and whisper_stage(config):
        enc_config["audio"] = whisper_section(config.audio_variant, whisper_model)
    elif part == "audio" and "audio" not in nets:
        enc_config["audio"] = {"variant": config.audio_variant}
        if config.audio_members > 1:
            enc_config["audio"]["members"] = config.audio_members
    elif part == "visual" and "visual" not in nets:
        enc_config["visual"] = {"variant": config.visual_variant}
        enc_config["visual"]["face"] = visual_face_settings(enc_config["visual"])
    elif part == "fusion":
        if "audio" not in nets or "visual" not in nets:
            raise EncoderError("init: fusion needs encoders with both an audio and a visual part")
        enc_config.setdefault("fusion", {"hidden": 512})
    elif part == "temporal":
        if "audio" not in nets and "visual" not in nets:
            raise EncoderError("init: temporal needs an encoder directory with a trained branch")
        probe = Encoder({**enc_config, "temporal": {"input": config.temporal_input}}, nets)
        enc_config["temporal"] = {
            "hidden": config.temporal_hidden,
            "in_dim": probe.feature_dim,
            "input": config.temporal_input,
        }
    if config.fine_tune is not None and "visual" in nets:  # --fine-tune over the branch's own
        nets["visual"].set_fine_tune(config.fine_tune)  # type: ignore[operator]
        enc_config["visual"]["fine_tune"] = config.fine_tune
    fresh = build_nets(enc_config)
    for name, net in fresh.items():
        nets.setdefault(name, net)
    if part == "temporal":
        nets["temporal"] = fresh["temporal"]
    return enc_config, nets


def whisper_stage(config: TrainConfig) -> bool:
    """Whether the stage trains a Whisper audio branch (its ``init`` may name the weights)."""
    return config.modality == "audio" and is_whisper(config.audio_variant)


def is_encoder_dir(path: Path) -> bool:
    """Whether ``path`` holds one of our encoder directories (not, say, a faster-whisper
    model folder, whose config.json is CTranslate2's)."""
    try:
        return json.loads((path / "config.json").read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _load_branch_file(
    path: Path,
    config: TrainConfig,
    enc_config: dict[str, Any],
    nets: dict[str, torch.nn.Module],
) -> None:
    """The stage's branch from a published weights file (a Keras file, or any file with the
    mini-xception variant, is the FER2013 mini-Xception)."""
    mini = config.visual_variant == "mini-xception"
    net, section = branch_from_weights(
        config.modality, path, enc_config["class_names"], mini, bool(config.fine_tune)
    )
    nets[config.modality], enc_config[config.modality] = net, section


# ------------------------------------------------------------------------------ data
def load_clips(config: TrainConfig, enc_config: dict[str, Any]) -> tuple[list[Any], Corpus]:
    """Decode every clip of the corpus onto the step time base; unusable clips are dropped
    from the returned corpus, whose file account names each skipped file and why."""
    need_audio = bool(enc_config.get("audio"))
    need_visual = bool(enc_config.get("visual"))
    corpus = list_corpus(
        config.dataset,
        config.root,
        _media_modality(need_audio, need_visual),
        config.allow_outside_root,
        exclude=(Path(config.out), work_dir(config.out)),
    )
    step_config = StepConfig(
        config.steps_per_second,
        VISUAL_INPUT[enc_config["visual"]["variant"]] if need_visual else 112,
    )
    cascade = load_cascade() if need_visual else None
    face = FaceConfig(**visual_face_settings(enc_config["visual"])) if need_visual else None
    whisper = whisper_features(enc_config)
    clips = []
    for item in tqdm(list(corpus.items), desc=f"decode {config.dataset}", unit="clip", leave=False):
        try:
            clips.append(
                clip_steps(item, need_audio, need_visual, step_config, face, cascade, whisper)
            )
        except MediaError as error:
            corpus.drop(item, str(error))
    if not clips:
        lines = corpus.account.lines()
        raise MediaError(
            f"{corpus.account.summary()}: no usable clip ({lines[0] if lines else 'empty corpus'})"
        )
    return clips, corpus


def _media_modality(audio: bool, visual: bool) -> str:
    return "fusion" if audio and visual else ("audio" if audio else "visual")


def split_clips(
    clips: list[Any], config: TrainConfig, corpus: Corpus | None = None
) -> tuple[list[Any], list[Any]]:
    """Training and held-out clips, by speaker; the clips of other speakers are dropped
    from ``corpus`` (their files skipped as not selected)."""
    items = [c.item for c in clips]
    held = set(config.speaker)
    if held:
        select_speakers(items, config.speaker)  # validates the names
    train_names = config.train_speakers
    if train_names is not None:
        select_speakers(items, train_names)
        overlap = sorted(set(train_names) & held)
        if overlap:
            raise ValueError(f"train_speakers: {overlap} are also held out (speaker)")
    train = [
        c
        for c in clips
        if c.item.speaker not in held and (train_names is None or c.item.speaker in train_names)
    ]
    test = [c for c in clips if c.item.speaker in held]
    if not train:
        raise ValueError("speaker: holding these out leaves no training clip")
    if corpus is not None:
        used = {id(c.item) for c in (*train, *test)}
        for clip in clips:
            if id(clip.item) not in used:
                why = "neither in --train-speakers nor held out with --heldout"
                corpus.drop(clip.item, f"speaker {clip.item.speaker} not selected ({why})")
    return train, test


# ------------------------------------------------------------------------------ stages
def train_encoder(config: TrainConfig) -> dict[str, Any]:
    """Run one stage and write ``config.out``; return the stage's history entry (metrics)."""
    if config.modality not in MODALITIES:
        raise ValueError(f"modality: expected one of {list(MODALITIES)}, got {config.modality!r}")
    if not config.out:
        raise ValueError("out: an encoder directory to write is required")
    torch.set_num_threads(max(1, config.threads))
    torch.manual_seed(config.seed)
    started = time.perf_counter()
    _, class_names = list_dataset(config.dataset, config.root, "any", config.allow_outside_root)
    enc_config, nets = _start(config, class_names)
    clips, corpus = load_clips(config, enc_config)
    train, test = split_clips(clips, config, corpus)
    fingerprint = job_fingerprint(config, corpus.account.kept)
    checkpoint = EpochCheckpoint(work_dir(config.out), fingerprint)
    class_names = tuple(enc_config["class_names"])
    encoder = Encoder(enc_config, nets, config.device)
    batches = {
        name: ClipBatch.build(part, encoder, class_names)
        for name, part in (("train", train), ("test", test))
        if part
    }
    if config.modality in ("audio", "visual", "fusion"):
        net = nets[config.modality]
        fit_windows(net, config.modality, batches["train"], encoder, config, checkpoint)
        metrics = (
            evaluate_windows(net, config.modality, batches["test"], encoder)
            if "test" in batches
            else {}
        )
    else:
        metrics = fit_temporal(nets["temporal"], batches, encoder, config, checkpoint)  # type: ignore[arg-type]
    entry = {
        "stage": config.modality,
        "dataset": config.dataset,
        "root": str(config.root),
        "train_speakers": sorted({c.item.speaker for c in train}),
        "heldout_speakers": sorted({c.item.speaker for c in test}),
        "n_train_clips": len(train),
        "n_heldout_clips": len(test),
        "files": corpus.account.counts(),
        "skipped": corpus.account.lines(),
        "resumed_after_epoch": checkpoint.resumed_after,
        "metrics": metrics,
        "seconds": round(time.perf_counter() - started, 1),
        "config": {k: v for k, v in asdict(config).items() if k not in ("out", "root")},
    }
    enc_config["history"] = [*enc_config.get("history", []), entry]
    save_encoder(config.out, enc_config, nets)
    shutil.rmtree(work_dir(config.out), ignore_errors=True)
    return entry


__all__ = ["MODALITIES", "PARAMS_KEYS", "TrainConfig", "TemporalNet", "train_encoder"]
