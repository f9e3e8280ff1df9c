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
"""Patches and face crops the int8 ranges are calibrated on."""


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
    """Log-mel patches and face crops for the int8 ranges, from media not streamed."""
    from avemotion.benchmarks.av_fixture import synthetic_av_clip
    from avemotion.encoders.face import FaceConfig, FaceTracker
    from avemotion.encoders.fast import Calibration
    from avemotion.encoders.frontend import step_patches
    from avemotion.encoders.media import load_audio, load_video

    speech = video = None
    if data_root is not None:
        speech = next(iter(sorted((data_root / "ravdess-speech-16k" / "Actor_02").glob("*"))), None)
        video = next(iter(sorted((data_root / "mead-video").glob("W009_*.mp4"))), None)
    if speech is None or video is None:
        speech = video = synthetic_av_clip(work / "calibration.mkv", 3.5, 25, 256, seed=7)
    patches = step_patches(load_audio(speech))
    frames = load_video(video).frames
    tracker = FaceTracker(face_size, FaceConfig(**face))
    picks = np.linspace(0, len(frames) - 1, CALIBRATION_ITEMS).astype(int)
    crops = np.stack([tracker(frames[i])[0] for i in picks])
    rows = np.linspace(0, len(patches) - 1, min(CALIBRATION_ITEMS, len(patches))).astype(int)
    return Calibration(patches[rows], torch.from_numpy(crops))


def build_recognizer(
    size: str,
    work: Path,
    n_steps: int,
    inference: str = "fp32",
    data_root: Path | None = None,
) -> Any:
    """A recognizer of encoder ``size`` (seeded, untrained) on inference path ``inference``."""
    from avemotion.agents.dqn import DQNConfig, make_q_network
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
