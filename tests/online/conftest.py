"""Tiny encoders, stores and trained runs for the online tests, built in seconds.

The encoders are freshly initialised (seeded) networks of the CPU-sized variants: the
streaming machinery is under test, not accuracy. Each store is extracted from short
synthetic audio-visual clips with the encoders' own ``encode_clip``, and a small DQN is
trained on it for a few hundred env steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

CLASSES = ["neutral", "happy", "sad", "angry"]


@dataclass
class TinyRun:
    """An encoder directory, the store extracted with it, a trained run, and the clips."""

    encoder_dir: Path
    store_dir: Path
    run_dir: Path
    clips: list[Path]
    modality: str


@pytest.fixture(scope="session")
def av_clips(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Four short synthetic AV clips (128 px video, 16 kHz audio) of 1.5 to 2.4 s."""
    from avemotion.benchmarks.av_fixture import synthetic_av_clip

    root = tmp_path_factory.mktemp("clips")
    return [
        synthetic_av_clip(root / f"clip{i}.mkv", seconds=1.5 + 0.3 * i, size=128, seed=i)
        for i in range(4)
    ]


def encoder_config(modality: str, audio_members: int = 1) -> dict:
    """Config of a tiny encoder: small branches (the audio one an ensemble of
    ``audio_members``), a 32-unit fusion DNN, a 16-unit LSTM."""
    config: dict = {"class_names": CLASSES, "steps_per_second": 10.0}
    if modality in ("audio", "audio-visual"):
        config["audio"] = {"variant": "small", "members": audio_members}
    if modality in ("visual", "audio-visual"):
        config["visual"] = {"variant": "small"}
    if modality == "audio-visual":
        config["fusion"] = {"hidden": 32}
        config["temporal"] = {"in_dim": 32, "hidden": 16}
    elif modality == "audio":  # the RAVDESS recipe: embedding, posteriors, log-mel statistics
        config["temporal"] = {
            "in_dim": 128 * audio_members + len(CLASSES) + 128,
            "hidden": 16,
            "input": "embedding+posteriors+statistics",
        }
    else:
        config["temporal"] = {"in_dim": 1280, "hidden": 16}
    return config


def build_run(
    root: Path,
    modality: str,
    clips: list[Path],
    level: str = "temporal",
    agent_steps: int = 300,
    audio_members: int = 1,
) -> TinyRun:
    from avemotion.encoders.bundle import build_nets, load_encoder, save_encoder
    from avemotion.encoders.datasets import Item
    from avemotion.encoders.extract import ExtractConfig, encode_clip, store_meta
    from avemotion.encoders.steps import StepConfig
    from avemotion.store import FeatureStore
    from avemotion.training.train import train

    torch.manual_seed(0)
    config = encoder_config(modality, audio_members)
    encoder_dir = save_encoder(root / "encoder", config, build_nets(config))
    encoder = load_encoder(encoder_dir)
    steps = StepConfig(10.0, 112)
    sequences = [
        encode_clip(encoder, Item(clip, CLASSES[i], f"s{i % 2}", clip.stem), level, steps)[0]
        for i, clip in enumerate(clips)
    ]
    extract_config = ExtractConfig(
        dataset="csv",
        root=str(root),
        encoder=str(encoder_dir),
        out=str(root / "store"),
        level=level,
    )
    store = FeatureStore.create(
        root / "store",
        sequences,
        list(range(len(clips))),
        [f"s{i % 2}" for i in range(len(clips))],
        CLASSES,
        clip_ids=[c.stem for c in clips],
        meta=store_meta(extract_config, encoder, None, []),
    )
    run_dir = train(
        "dqn",
        store,
        agent_steps,
        0,
        root / "run",
        num_envs=8,
        learning_starts=64,
        batch_size=32,
        hidden=(16,),
        progress=False,
        log_every=agent_steps,
    )
    return TinyRun(encoder_dir, store.path, run_dir, clips, modality)


@pytest.fixture(scope="session")
def av_run(tmp_path_factory: pytest.TempPathFactory, av_clips: list[Path]) -> TinyRun:
    return build_run(tmp_path_factory.mktemp("av-run"), "audio-visual", av_clips)


@pytest.fixture(scope="session")
def audio_run(tmp_path_factory: pytest.TempPathFactory, av_clips: list[Path]) -> TinyRun:
    return build_run(tmp_path_factory.mktemp("audio-run"), "audio", av_clips)


@pytest.fixture(scope="session")
def audio_ensemble_run(tmp_path_factory: pytest.TempPathFactory, av_clips: list[Path]) -> TinyRun:
    """An audio encoder whose branch is an ensemble of 3 members (the RAVDESS recipe)."""
    return build_run(
        tmp_path_factory.mktemp("audio-ensemble-run"), "audio", av_clips, audio_members=3
    )


@pytest.fixture(scope="session")
def visual_run(tmp_path_factory: pytest.TempPathFactory, av_clips: list[Path]) -> TinyRun:
    return build_run(tmp_path_factory.mktemp("visual-run"), "visual", av_clips)


class ThresholdAgent:
    """A rule agent for tests: answers the top class of the observation's posteriors once it
    exceeds ``threshold``, or at step ``decide_at``; answers at once when waiting is masked.

    Works on ``temporal``-level observations in ``frame`` mode, whose last K + 1 values are
    the posteriors and the time feature.
    """

    obs_mode = "frame"

    def __init__(
        self, n_classes: int, threshold: float = 2.0, decide_at: int | None = None
    ) -> None:
        self.k, self.threshold, self.decide_at = n_classes, threshold, decide_at
        self.t = 0
        self.calls = 0

    def reset(self) -> None:
        self.t = 0

    def act(self, observation: np.ndarray, action_mask: np.ndarray) -> int:
        self.calls += 1
        posteriors = observation[-1 - self.k : -1]
        best = int(np.argmax(posteriors)) + 1
        t, self.t = self.t, self.t + 1
        if not action_mask[0] or posteriors.max() > self.threshold or t == self.decide_at:
            return best
        return 0


@pytest.fixture(scope="session")
def threshold_agent() -> type[ThresholdAgent]:
    """The :class:`ThresholdAgent` class (fixtures avoid importing from the tests tree)."""
    return ThresholdAgent


@pytest.fixture(scope="session")
def class_names() -> list[str]:
    return list(CLASSES)


@pytest.fixture(scope="session")
def tiny_encoder_config() -> object:
    """:func:`encoder_config` (fixtures avoid importing from the tests tree)."""
    return encoder_config


class DamagedMedia:
    """Audio files written with PyAV or soundfile, and damage to chosen packets of them,
    for the tests of corrupt stretches (the damaged times are read from the packets)."""

    @staticmethod
    def write(path: Path, audio: np.ndarray, rate: int, codec: str | None = None) -> Path:
        """``audio`` (float mono at ``rate``) as ``path``: soundfile's format by the
        extension without ``codec``, else PyAV's encoder ``codec`` in the container the
        extension names."""
        import soundfile

        audio = np.asarray(audio, dtype=np.float32)
        if codec is None:
            soundfile.write(path, audio, rate)
            return path
        import av

        with av.open(str(path), "w") as output:
            stream = output.add_stream(codec, rate=rate)
            stream.layout = "mono"
            for offset in range(0, len(audio), 1024):
                frame = av.AudioFrame.from_ndarray(
                    audio[None, offset : offset + 1024], format="flt", layout="mono"
                )
                frame.sample_rate, frame.pts = rate, offset
                frame.time_base = Fraction(1, rate)
                output.mux(stream.encode(frame))
            output.mux(stream.encode(None))
        return path

    @staticmethod
    def packets(path: Path, kind: str = "audio") -> list[tuple[float, int, int]]:
        """``(time in s, byte position of its data, size)`` of each packet of the first
        ``kind`` track (the data found in the file from the packet's reported position)."""
        import av

        data = path.read_bytes()
        with av.open(str(path)) as container:
            stream = getattr(container.streams, kind)[0]
            return [
                (float(p.pts * p.time_base), data.find(bytes(p), max(p.pos, 0)), p.size)
                for p in container.demux(stream)
                if p.size
            ]

    @staticmethod
    def overwrite(path: Path, spans: list[tuple[int, int]], seed: int = 0) -> None:
        """Overwrite the bytes ``[start, end)`` of each span with random bytes."""
        data = bytearray(path.read_bytes())
        rng = np.random.default_rng(seed)
        for start, end in spans:
            data[start:end] = rng.integers(0, 256, end - start, np.uint8).tobytes()
        path.write_bytes(bytes(data))


@pytest.fixture(scope="session")
def damaged_media() -> type[DamagedMedia]:
    """:class:`DamagedMedia` (fixtures avoid importing from the tests tree)."""
    return DamagedMedia
