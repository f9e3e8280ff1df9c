"""Accuracy of the faster inference paths against fp32, on real clips no network trained on.

A faster path is kept only if its accuracy stays within 0.5 points of fp32. Measured with
the trained networks that exist (each entry says which, or why it was not measured):

- ``audio_small``: the RAVDESS audio encoder of ``avemotion train-encoder`` (small audio
  CNN x3 + LSTM, ``~/.cache/avemotion/encoders/ravdess-audio`` or
  ``$AVEMOTION_AUDIO_ENCODER``) on its held-out actors: clip accuracy (the LSTM's mean
  posterior over voiced steps, as ``avemotion evaluate-encoder`` scores) and step accuracy;
- ``visual_mini_xception``: the pretrained FER2013 mini-Xception, zero-shot, on every MEAD
  clip whose emotion FER2013 names (its own 7-way posteriors): step and clip accuracy;
- ``paper_int8``: the int8 path of the paper-sized branches. ``vggish_accuracy``: a VGGish
  audio branch trained from scratch on RAVDESS by ``avemotion train-encoder --audio-variant
  vggish`` (``~/.cache/avemotion/encoders/ravdess-audio-vggish`` or
  ``$AVEMOTION_VGGISH_ENCODER``), int8 against fp32 on its held-out actors (its own head's
  posteriors), calibrated on patches of training actors 02–14
  (:data:`~avemotion.benchmarks.pipeline_setup.CALIBRATION_ACTORS`); not measured when no
  such encoder exists. No trained MobileNetV2 exists here, so its int8 accuracy is not
  measured. Given for both: the cosine between int8 and fp32 embeddings of the seeded
  untrained networks on held-out real inputs (RAVDESS actor 15 patches, MEAD M030 crops),
  calibrated on other speakers (actors 02–14, W009).

The two scored entries carry their corpus's ``files`` (seen = kept + skipped) and
``skipped`` (each file not scored, with why: a class FER2013 lacks, a clip that cannot be
decoded; the speakers not held out as one count).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avemotion.encoders.bundle import Encoder, load_encoder
from avemotion.encoders.datasets import Corpus
from avemotion.encoders.fast import BranchRunner, Calibration, accelerate, branch_runner
from avemotion.encoders.media import MediaError
from avemotion.encoders.steps import StepConfig
from avemotion.store import STEPS_PER_SECOND

DEFAULT_AUDIO_ENCODER = Path.home() / ".cache" / "avemotion" / "encoders" / "ravdess-audio"
DEFAULT_VGGISH_ENCODER = DEFAULT_AUDIO_ENCODER.with_name("ravdess-audio-vggish")


def file_account(corpus: Corpus) -> dict[str, Any]:
    """``files`` (seen = kept + skipped) and ``skipped`` (each file with why) of a scored
    corpus. The files of speakers left out by a selection (every actor the encoder trained
    on: most of the corpus, one reason) are one line with their count."""
    lines = corpus.account.lines()
    skipped = [line for line in lines if "not selected" not in line]
    if len(skipped) < len(lines):
        skipped.append(f"{len(lines) - len(skipped)} file(s) of speakers not selected")
    return {"files": corpus.account.counts(), "skipped": skipped}


def _points(fp32: float, other: float) -> float:
    return round(100.0 * (other - fp32), 2)


def _scored(
    result: dict[str, Any],
    correct: dict[str, list[int]],
    steps: float,
    diff: float,
    other: str = "fast",
) -> dict[str, Any]:
    """``result`` with each path's clip and step accuracy (``correct``: clips and steps
    right per path, over ``result["clips"]`` clips of ``steps`` steps), the ``other``
    path's deltas from fp32 in points and the largest posterior difference. With no clip
    scored (every one skipped: the pipeline benchmark's timings must survive it) it says
    so instead."""
    if result["clips"] == 0:
        return {**result, "not_measured": "no clip could be scored (see skipped)"}
    for path, (clips_ok, steps_ok) in correct.items():
        result[path] = {
            "clip_accuracy": round(clips_ok / result["clips"], 4),
            "step_accuracy": round(steps_ok / steps, 4),
        }
    for level in ("clip", "step"):
        result[f"{level}_delta_points"] = _points(
            result["fp32"][f"{level}_accuracy"], result[other][f"{level}_accuracy"]
        )
    result["posterior_max_abs_diff"] = diff
    return result


def _audio_posteriors(encoder: Encoder, runner: BranchRunner, patches: torch.Tensor) -> np.ndarray:
    """Per-step class posteriors: the LSTM's, or without one the audio branch's own head."""
    with torch.inference_mode():
        audio = runner(patches)
        if encoder.temporal is None:
            return torch.softmax(encoder.audio.head(audio), dim=-1).numpy()
        rows = encoder.level_features("temporal", audio, None, patches)
    return rows[:, -encoder.n_classes :].numpy()


def audio_accuracy(
    data: Path,
    enc_dir: Path,
    path: str = "fast",
    calibration: Calibration | None = None,
    variant: str | None = None,
) -> dict[str, Any]:
    """fp32 against ``path`` (``fast``, or ``int8`` with ``calibration``) for a trained
    RAVDESS audio encoder on its held-out actors; with ``variant``, an encoder whose audio
    branch is another variant is not measured (and says so)."""
    from avemotion.encoders.datasets import list_corpus
    from avemotion.encoders.extract import decode_clip

    encoder = load_encoder(enc_dir)
    found = getattr(encoder.audio, "variant", None)
    if variant is not None and found != variant:
        return {"not_measured": f"{enc_dir}: audio variant {found!r}, not {variant!r}"}
    heldout = encoder.config["history"][-1].get("heldout_speakers") or []
    corpus = list_corpus("ravdess", data / "ravdess-speech-16k", "audio")
    corpus.select(list(heldout), None, "held-out actors")
    runners = {p: accelerate(encoder, p, calibration)["audio"] for p in ("fp32", path)}
    correct = {p: [0, 0] for p in runners}  # clips, steps
    steps = diff = 0.0
    for item in list(corpus.items):  # corpus.drop edits corpus.items
        try:
            clip = decode_clip(encoder, item, StepConfig(encoder.steps_per_second), None)
        except MediaError as error:  # one bad clip is skipped with its reason, not fatal
            corpus.drop(item, str(error))
            continue
        label = encoder.class_names.index(item.label)
        posteriors = {p: _audio_posteriors(encoder, r, clip.patches) for p, r in runners.items()}
        for path, post in posteriors.items():
            voiced = clip.voiced if clip.voiced.any() else slice(None)
            correct[path][0] += int(post[voiced].mean(0).argmax() == label)
            correct[path][1] += int((post.argmax(1) == label).sum())
        steps += len(clip.patches)
        diff = max(diff, float(np.abs(posteriors["fp32"] - posteriors[path]).max()))
    result: dict[str, Any] = {
        "network": f"{encoder.identity} from {enc_dir}",
        "clips": len(corpus.items),
        "speakers": list(heldout),
        "backend": runners[path].backend,
        **file_account(corpus),
    }
    return _scored(result, correct, steps, diff, path)


def mini_xception_accuracy(data: Path, weights: Path) -> dict[str, Any]:
    """fp32 against ``fast`` for the zero-shot FER2013 mini-Xception on MEAD."""
    from avemotion.benchmarks.faces import video_corpus
    from avemotion.encoders.face import FaceConfig, load_cascade
    from avemotion.encoders.mini_xception import FER_CLASSES, fer_index
    from avemotion.encoders.models import VISUAL_FACE_SEARCH, mini_xception_branch
    from avemotion.encoders.steps import clip_steps

    corpus = video_corpus("mead", data / "mead-video")
    for item in list(corpus.items):  # corpus.drop edits corpus.items
        if fer_index(item.label) is None:
            corpus.drop(item, f"{item.path}: class {item.label}: FER2013 does not name it")
    net, _ = mini_xception_branch(str(weights), corpus.classes)
    net.eval()
    example = torch.zeros(1, 64, 64, 3, dtype=torch.uint8)
    runners = {p: branch_runner("visual", net, example, p) for p in ("fp32", "fast")}
    face, cascade = FaceConfig(**VISUAL_FACE_SEARCH["mini-xception"]), load_cascade()
    correct = {p: [0, 0] for p in runners}
    steps = diff = 0.0
    k = len(FER_CLASSES)
    for item in list(corpus.items):
        try:
            steps_of = clip_steps(
                item, False, True, StepConfig(STEPS_PER_SECOND, 64), face, cascade
            )
        except MediaError as error:  # one bad clip is skipped with its reason, not fatal
            corpus.drop(item, str(error))
            continue
        crops = steps_of.crops
        assert crops is not None
        label = fer_index(item.label)
        logs = {p: r(torch.from_numpy(crops))[:, -k:].numpy() for p, r in runners.items()}
        for path, log in logs.items():
            correct[path][0] += int(np.exp(log).mean(0).argmax() == label)
            correct[path][1] += int((log.argmax(1) == label).sum())
        steps += len(crops)
        diff = max(diff, float(np.abs(np.exp(logs["fp32"]) - np.exp(logs["fast"])).max()))
    result: dict[str, Any] = {
        "network": f"FER2013 mini-Xception {weights}, zero-shot (its 7 FER classes)",
        "clips": len(corpus.items),
        "backend": runners["fast"].backend,
        **file_account(corpus),
    }
    return _scored(result, correct, steps, diff)


def vggish_int8_accuracy(data: Path, calibration: Calibration) -> dict[str, Any]:
    """fp32 against int8 for the VGGish audio branch trained from scratch on RAVDESS
    (:data:`DEFAULT_VGGISH_ENCODER`), or why it was not measured."""
    enc_dir = Path(os.environ.get("AVEMOTION_VGGISH_ENCODER", DEFAULT_VGGISH_ENCODER))
    if not (enc_dir / "config.json").is_file():
        return {
            "not_measured": f"{enc_dir}: no trained VGGish (avemotion train-encoder --dataset "
            "ravdess --modality audio --audio-variant vggish ...)"
        }
    patches = Calibration(patches=calibration.patches)
    return audio_accuracy(data, enc_dir, "int8", patches, variant="vggish")


def paper_int8_agreement(data: Path, work: Path) -> dict[str, Any]:
    """Cosine of int8 to fp32 embeddings of the seeded untrained paper-sized branches."""
    from avemotion.benchmarks.pipeline_setup import calibration_inputs
    from avemotion.encoders.face import FaceConfig, FaceTracker
    from avemotion.encoders.frontend import step_patches
    from avemotion.encoders.media import load_audio, load_video
    from avemotion.encoders.models import AudioNet, VisualNet

    torch.manual_seed(0)
    audio, visual = AudioNet(8, "vggish").eval(), VisualNet(8, "mobilenet_v2").eval()
    calibration: Calibration = calibration_inputs(work, data, 224, {})
    speech = sorted((data / "ravdess-speech-16k" / "Actor_15").glob("*"))[:4]
    patches = torch.cat([step_patches(load_audio(p))[::4] for p in speech])
    frames = load_video(sorted((data / "mead-video").glob("M030_*.mp4"))[0]).frames
    tracker = FaceTracker(224, FaceConfig())
    crops = torch.from_numpy(np.stack([tracker(f)[0] for f in frames[::4]]))
    result: dict[str, Any] = {
        "accuracy": "vggish: vggish_accuracy; mobilenet_v2: not measured (no trained "
        "MobileNetV2 exists on this machine)",
        "vggish_accuracy": vggish_int8_accuracy(data, calibration),
    }
    for name, net, inputs, calib, example in (
        ("vggish", audio, patches, calibration.patches, patches[:1]),
        ("mobilenet_v2", visual, crops, calibration.crops, crops[:1]),
    ):
        part = "audio" if name == "vggish" else "visual"
        int8 = branch_runner(part, net, example, "int8", calib)
        with torch.inference_mode():
            expected = net.embed(inputs)
        cosine = torch.nn.functional.cosine_similarity(int8(inputs), expected, dim=-1)
        result[name] = {
            "inputs": len(inputs),
            "cosine_min": round(float(cosine.min()), 4),
            "cosine_mean": round(float(cosine.mean()), 4),
        }
    return result


def fast_path_accuracy(data: Path | None, sizes: tuple[str, ...]) -> dict[str, Any]:
    """Every accuracy check the sizes need that this machine can run (see the docstring)."""
    import tempfile

    from avemotion.encoders.fast import onnxruntime_available
    from avemotion.encoders.mini_xception import default_weights_path

    if not onnxruntime_available():
        return {"not_measured": "onnxruntime is not installed: every path is fp32"}
    if data is None:
        return {"not_measured": "no ../shared/data: no real clips to score"}
    result: dict[str, Any] = {}
    enc_dir = Path(os.environ.get("AVEMOTION_AUDIO_ENCODER", DEFAULT_AUDIO_ENCODER))
    if not (enc_dir / "config.json").is_file():
        result["audio_small"] = {"not_measured": f"{enc_dir}: no trained RAVDESS encoder"}
    else:
        result["audio_small"] = audio_accuracy(data, enc_dir)
    if "mini-xception" in sizes:
        weights = default_weights_path()
        if weights.is_file():
            result["visual_mini_xception"] = mini_xception_accuracy(data, weights)
        else:
            result["visual_mini_xception"] = {"not_measured": f"{weights}: missing"}
    if {"cpu", "cpu-authors-face"} & set(sizes):
        result["visual_small"] = {
            "not_measured": "no trained small MobileNetV2 exists; its fast path runs the same "
            "float arithmetic (posterior_max_abs_diff in encoders.cpu)"
        }
    if "paper" in sizes:
        with tempfile.TemporaryDirectory(prefix="avemotion-int8-") as tmp:
            result["paper_int8"] = paper_int8_agreement(data, Path(tmp))
    return result
