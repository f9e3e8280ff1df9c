"""The recognizers ``avemotion bench pipeline`` times: encoder sizes, inference paths and
the real inputs that calibrate the int8 path.

Weights are untrained (speed does not depend on them); the networks have the shipped sizes.
The int8 path's activation ranges are calibrated on media other than the streamed clip (a
RAVDESS utterance of actor 02 and the face crops of a MEAD clip of speaker W009, or a
synthetic clip of another seed when that data is absent), as a deployment would calibrate
on training data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from avemotion.store import STEPS_PER_SECOND

ENCODER_SIZES: dict[str, dict[str, Any]] = {
    "cpu": {
        "audio": "small",
        "visual": "small",
        "description": "MobileNetV2 x0.35 at 112 px + small audio CNN, the variant's default "
        "face search (Haar pyramid step 1.2, faces >= 35 % of the frame side)",
    },
    "cpu-authors-face": {
        "audio": "small",
        "visual": "small",
        "face": {"scale_factor": 1.1, "min_size_fraction": 0.2},
        "description": "as cpu, with the authors' face search (pyramid step 1.1, faces >= 20 %)",
    },
    "mini-xception": {
        "audio": "small",
        "visual": "mini-xception",
        "description": "FER2013 mini-Xception at 64 px grey (frozen backbone + head) + small "
        "audio CNN, the variant's default face search (pyramid step 1.2, faces >= 35 %)",
    },
    "paper": {
        "audio": "vggish",
        "visual": "mobilenet_v2",
        "description": "MobileNetV2 at 224 px + VGGish, the authors' face search",
    },
}
"""The encoder sizes benchmarked: the CPU-sized default and the paper's."""
CLASS_NAMES = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
FASTEST_PATH = {"cpu": "fast", "cpu-authors-face": "fast", "mini-xception": "fast", "paper": "int8"}
"""The fastest inference path of each size: ``int8`` only where a branch is quantised
(VGGish, MobileNetV2 at 224 px); for the small branches it equals ``fast``."""
CALIBRATION_ITEMS = 32
"""Face crops the int8 ranges are calibrated on (and patches without real speech)."""
CALIBRATION_ACTORS = tuple(f"Actor_{i:02d}" for i in range(2, 15))
"""RAVDESS actors whose speech sets the int8 audio ranges: training actors of every encoder
here (01–14) but the one the benchmark streams (01), never the held-out 15–18. One actor's
one clip (27 patches) left the trained VGGish's int8 clip accuracy 1.7 points below fp32:
its ranges did not cover other voices."""
CALIBRATION_FILES, CALIBRATION_PATCHES = 4, 4
"""Clips per calibration actor (spread over its sorted files, so over emotions) and
patches per clip (spread over the clip)."""


class WaitingAgent:
    """Runs the wrapped agent at every step (its cost is measured) but always waits."""

    def __init__(self, agent: Any) -> None:
        self.agent, self.obs_mode = agent, agent.obs_mode

    def reset(self) -> None:
        self.agent.reset()

    def act(self, observation: np.ndarray, action_mask: np.ndarray) -> int:
        action = self.agent.act(observation, action_mask)
        return 0 if action_mask[0] else action


def calibration_inputs(work: Path, data_root: Path | None, face_size: int, face: dict) -> Any:
    """Log-mel patches (:data:`CALIBRATION_ACTORS`) and face crops (MEAD W009) for the int8
    ranges, from media neither streamed nor scored; a synthetic clip without real data."""
    from avemotion.benchmarks.av_fixture import synthetic_av_clip
    from avemotion.encoders.face import FaceConfig, FaceTracker
    from avemotion.encoders.fast import Calibration
    from avemotion.encoders.frontend import step_patches
    from avemotion.encoders.media import load_audio, load_video

    speech: list[Path] = []
    video = None
    if data_root is not None:
        for actor in CALIBRATION_ACTORS:
            files = sorted((data_root / "ravdess-speech-16k" / actor).glob("*"))
            picks = np.linspace(0, len(files) - 1, min(CALIBRATION_FILES, len(files)))
            speech += [files[int(i)] for i in picks]
        video = next(iter(sorted((data_root / "mead-video").glob("W009_*.mp4"))), None)
    per_clip = CALIBRATION_PATCHES
    if not speech or video is None:
        video = synthetic_av_clip(work / "calibration.mkv", 3.5, 25, 256, seed=7)
        speech, per_clip = [video], CALIBRATION_ITEMS
    patches = torch.cat([_spread(step_patches(load_audio(path)), per_clip) for path in speech])
    frames = load_video(video).frames
    tracker = FaceTracker(face_size, FaceConfig(**face))
    picks = np.linspace(0, len(frames) - 1, CALIBRATION_ITEMS).astype(int)
    crops = np.stack([tracker(frames[i])[0] for i in picks])
    return Calibration(patches, torch.from_numpy(crops))


def _spread(rows: torch.Tensor, count: int) -> torch.Tensor:
    """``count`` rows spread evenly over ``rows`` (all of them when fewer)."""
    return rows[np.linspace(0, len(rows) - 1, min(count, len(rows))).astype(int)]


def build_recognizer(
    size: str,
    work: Path,
    n_steps: int,
    inference: str = "fp32",
    data_root: Path | None = None,
) -> Any:
    """A recognizer of encoder ``size`` (seeded, untrained) on inference path ``inference``."""
    from avemotion.agents.dqn.dqn import DQNConfig, make_q_network
    from avemotion.agents.policy import DQNAgent
    from avemotion.encoders.bundle import build_nets, load_encoder, save_encoder
    from avemotion.envs.core import ObservationLayout
    from avemotion.online.recognizer import OnlineRecognizer
    from avemotion.store import FeatureStore

    variants = ENCODER_SIZES[size]
    config = {
        "class_names": list(CLASS_NAMES),
        "steps_per_second": STEPS_PER_SECOND,
        "audio": {"variant": variants["audio"]},
        "visual": {"variant": variants["visual"], "face": variants.get("face", {})},
        "fusion": {"hidden": 512},
        "temporal": {"in_dim": 512, "hidden": 128},
    }
    torch.manual_seed(0)
    enc_dir = work / f"encoder-{size}"
    if not enc_dir.is_dir():
        save_encoder(enc_dir, config, build_nets(config))
    encoder = load_encoder(enc_dir)
    dim = encoder.level_dim("temporal")
    store = FeatureStore.create(
        work / f"store-{size}-{inference}",
        [np.zeros((n_steps, dim), np.float32)],
        [0],
        ["bench"],
        CLASS_NAMES,
        overwrite=True,
    )
    layout = ObservationLayout(store, "frame+mean")
    dqn = DQNConfig()
    torch.manual_seed(0)
    network = make_q_network(dqn, layout.size, len(CLASS_NAMES) + 1, dim)
    agent = WaitingAgent(DQNAgent(network, dqn.obs_mode))
    calibration = None
    if inference == "int8":
        visual = encoder.visual
        assert visual is not None
        calibration = calibration_inputs(
            work, data_root, visual.input_size, encoder.config["visual"]["face"]
        )
    return OnlineRecognizer(
        encoder,
        agent,
        layout,
        "temporal",
        CLASS_NAMES,
        stop_on_decision=False,
        inference=inference,
        calibration=calibration,
    )
