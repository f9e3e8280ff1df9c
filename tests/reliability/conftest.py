"""Builders of the reliability suite: tiny encoders and stores made in seconds, media written
in the test, and a helper that runs the CLI and returns its exit code and one-line error.

The encoders are freshly initialised (seeded) CPU-sized networks, as in ``tests/online``:
the error handling is under test, not accuracy. Media are written with soundfile and PyAV,
and the audio-visual clip comes from :func:`avemotion.benchmarks.av_fixture.synthetic_av_clip`.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from avemotion.cli import main as cli_main
from avemotion.store import FeatureStore

CLASSES = ["neutral", "happy", "sad"]


@dataclass
class CliResult:
    """Exit code, stdout and stderr of one ``avemotion`` call made in this process."""

    code: int
    out: str
    err: str

    @property
    def error_line(self) -> str:
        """The one error line the command printed on stderr (asserted to be the only one)."""
        lines = [line for line in self.err.splitlines() if "error" in line]
        assert len(lines) == 1, f"expected one error line, got:\n{self.err}"
        return lines[0]


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]):
    """``run_cli(*argv)``: run ``avemotion argv`` in-process; SystemExit (argparse) is caught."""

    def run(*argv: str) -> CliResult:
        capsys.readouterr()
        try:
            code = cli_main([str(a) for a in argv])
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def tone(seconds: float, rate: int, channels: int = 1, freq: float = 220.0) -> np.ndarray:
    """A 0.3-amplitude sine, ``[n]`` for mono or ``[n, channels]``."""
    t = np.arange(int(seconds * rate)) / rate
    wave = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return wave if channels == 1 else np.repeat(wave[:, None], channels, axis=1)


def write_video(
    path: Path,
    seconds: float = 1.5,
    fps: int = 25,
    size: int = 64,
    audio_rate: int | None = None,
    frame_times: list[float] | None = None,
    container: str | None = None,
    face: bool = False,
) -> Path:
    """Write uniform grey frames (no face) with PyAV, optionally with a sine audio track.

    ``frame_times`` (seconds) gives each frame its own timestamp: a variable frame rate.
    ``face`` draws the face of :func:`~avemotion.benchmarks.av_fixture.synthetic_av_clip`
    (which the Haar cascade finds) instead of the grey.
    """
    import av

    times = frame_times if frame_times is not None else [i / fps for i in range(int(seconds * fps))]
    with av.open(str(path), "w", format=container) as output:
        video = output.add_stream("mpeg4", rate=fps)
        video.width = video.height = size
        video.pix_fmt = "yuv420p"
        video.codec_context.time_base = video.time_base = Fraction(1, 1000)
        sound = output.add_stream("aac", rate=audio_rate) if audio_rate else None
        if sound is not None:
            sound.layout = "mono"
        grey = drawn_face(size) if face else np.full((size, size, 3), 128, dtype=np.uint8)
        for stamp in times:
            frame = av.VideoFrame.from_ndarray(grey, format="rgb24")
            frame.pts, frame.time_base = round(stamp * 1000), Fraction(1, 1000)
            output.mux(video.encode(frame))
        output.mux(video.encode(None))
        if sound is not None:
            samples = tone(seconds, audio_rate)
            for start in range(0, len(samples), 1024):
                chunk = av.AudioFrame.from_ndarray(
                    samples[None, start : start + 1024], format="fltp", layout="mono"
                )
                chunk.sample_rate, chunk.pts = audio_rate, start
                output.mux(sound.encode(chunk))
            output.mux(sound.encode(None))
    return path


def drawn_face(size: int) -> np.ndarray:
    """An RGB frame with the drawn face of the synthetic AV clip (skin ellipse, eyes, mouth)."""
    import cv2

    image = np.random.default_rng(0).integers(40, 90, size=(size, size, 3), dtype=np.uint8)
    c = size // 2
    cv2.ellipse(image, (c, c), (size // 5, size // 4), 0, 0, 360, (205, 160, 130), -1)
    for dx in (-size // 12, size // 12):
        cv2.circle(image, (c + dx, c - size // 14), size // 40, (40, 30, 30), -1)
    cv2.ellipse(image, (c, c + size // 8), (size // 14, 4), 0, 0, 360, (120, 40, 50), -1)
    return image


def encoder_config(modality: str) -> dict:
    """A tiny encoder's config: small audio and/or visual branch, no fusion or temporal part."""
    config: dict = {"class_names": CLASSES, "steps_per_second": 10.0}
    if modality in ("audio", "audio-visual"):
        config["audio"] = {"variant": "small"}
    if modality in ("visual", "audio-visual"):
        config["visual"] = {"variant": "small"}
    return config


def make_encoder(path: Path, modality: str) -> Path:
    """A freshly initialised (seeded) encoder directory of ``modality``."""
    from avemotion.encoders.bundle import build_nets, save_encoder

    torch.manual_seed(0)
    config = encoder_config(modality)
    return save_encoder(path, config, build_nets(config))


@pytest.fixture(scope="session")
def audio_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_encoder(tmp_path_factory.mktemp("enc") / "audio", "audio")


@pytest.fixture(scope="session")
def visual_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_encoder(tmp_path_factory.mktemp("enc") / "visual", "visual")


def make_store(
    path: Path,
    seed: int = 0,
    speakers: int = 3,
    clips_per_class: int = 3,
    dim: int = 6,
    meta: dict | None = None,
) -> FeatureStore:
    """A small separable store: ``speakers`` x 3 classes x ``clips_per_class`` clips of 4-11 steps."""
    rng = np.random.default_rng(seed)
    prototypes = rng.normal(0.0, 2.0, size=(len(CLASSES), dim))
    sequences, labels, names = [], [], []
    for s in range(speakers):
        for c in range(len(CLASSES)):
            for _ in range(clips_per_class):
                length = int(rng.integers(4, 12))
                ramp = np.linspace(0.2, 1.0, length)[:, None]
                noise = rng.normal(0.0, 1.0, size=(length, dim))
                sequences.append((ramp * prototypes[c] + noise).astype(np.float32))
                labels.append(c)
                names.append(f"P{s + 1}")
    return FeatureStore.create(
        path, sequences, labels, names, CLASSES, meta={"steps_per_second": 10.0, **(meta or {})}
    )


@pytest.fixture(scope="session")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    return make_store(tmp_path_factory.mktemp("stores") / "small")


TINY_DQN = {
    "num_envs": 4,
    "learning_starts": 40,
    "batch_size": 16,
    "hidden": [8],
    "log_every": 100,
    "checkpoint_every": 100,
    "progress": False,
}
"""Our DQN at its cheapest that still fits its front end and learns a little."""


@pytest.fixture(scope="session")
def small_run(small_store: FeatureStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Our DQN trained 200 steps on speakers P1 and P2 of :func:`small_store`."""
    from avemotion.training.train import train

    return train(
        "dqn",
        small_store,
        200,
        0,
        tmp_path_factory.mktemp("runs") / "dqn",
        speakers=["P1", "P2"],
        **TINY_DQN,
    )


def write_wav(path: Path, audio: np.ndarray, rate: int) -> Path:
    soundfile.write(path, audio, rate)
    return path
