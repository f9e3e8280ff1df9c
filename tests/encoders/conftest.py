"""Fixtures of the encoder tests: a synthetic audio-visual corpus made in seconds (so every
training stage runs without ``../shared/data``), and a tiny audio encoder trained on two
RAVDESS actors for the real-data tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from avemotion.encoders.train import TrainConfig, train_encoder

TINY = {"num_epochs": 1, "window_fraction": 0.05, "batch_size": 64, "threads": 1}

SPEAKERS = ("s1", "s2", "s3")
"""Speakers of the synthetic corpus: s1 and s2 train, s3 is held out."""
PITCH = {"happy": 260.0, "sad": 110.0}
"""Fundamental frequency (Hz) of each class's voice: an easy, speaker-independent cue."""
SYNTHETIC_TINY = {"num_epochs": 2, "window_fraction": 0.5, "batch_size": 16, "threads": 1}
"""Budgets that train a stage on the synthetic corpus in a second or two."""


def voice(seconds: float, pitch: float, seed: int) -> np.ndarray:
    """A voiced harmonic sound at ``pitch`` Hz with a syllable-rate envelope and noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t) ** 2
    phase = 2 * np.pi * pitch * t
    wave = sum(np.sin(k * phase) / k for k in range(1, 6))
    return (0.15 * envelope * wave + 0.005 * rng.standard_normal(t.size)).astype(np.float32)


def synthetic_corpus(folder: Path, clips_per_class: int = 2) -> Path:
    """``folder/data.csv`` over 3 speakers x 2 classes x ``clips_per_class`` clips: the
    drawn face of :func:`~avemotion.benchmarks.av_fixture.synthetic_av_clip` muxed with a
    voice whose pitch names the class (shifted a little per speaker)."""
    from avemotion.benchmarks.av_fixture import mux_av_clip, synthetic_av_clip

    folder.mkdir(parents=True)
    sources = folder.with_name(folder.name + "-sources")  # outside the corpus root
    rows = ["path,label,speaker"]
    for s, speaker in enumerate(SPEAKERS):
        for label, pitch in PITCH.items():
            for c in range(clips_per_class):
                seed = 100 * s + 10 * c + (label == "sad")
                seconds = 1.6 + 0.2 * c
                face = synthetic_av_clip(sources / f"{seed}.mkv", seconds, 25, 128, seed)
                wav = sources / f"{seed}.wav"
                soundfile.write(wav, voice(seconds, pitch * (0.95 + 0.05 * s), seed), 16000)
                name = f"{speaker}_{label}_{c}.mkv"
                mux_av_clip(face, wav, folder / name)
                rows.append(f"{name},{label},{speaker}")
    (folder / "data.csv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic audio-visual corpus (12 clips of 1.6-1.8 s), as a CSV corpus."""
    return synthetic_corpus(tmp_path_factory.mktemp("synthetic-av") / "corpus")


def train_synthetic(root: Path, out: Path, modality: str, **settings: object) -> dict:
    """Train one stage on the synthetic corpus (s3 held out) and return its history entry."""
    config = {**SYNTHETIC_TINY, **settings}
    return train_encoder(
        TrainConfig(
            dataset="csv", root=str(root), modality=modality, out=str(out), speaker=["s3"], **config
        )
    )


@pytest.fixture(scope="session")
def synthetic_stage(synthetic_root: Path):  # type: ignore[no-untyped-def]
    """``synthetic_stage(out, modality, **settings)``: :func:`train_synthetic` on the corpus."""
    return lambda out, modality, **settings: train_synthetic(
        synthetic_root, out, modality, **settings
    )


@pytest.fixture(scope="session")
def synthetic_audio_encoder(synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("enc") / "synthetic-audio"
    train_synthetic(synthetic_root, out, "audio")
    return out


@pytest.fixture(scope="session")
def synthetic_visual_encoder(
    synthetic_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("enc") / "synthetic-visual"
    train_synthetic(synthetic_root, out, "visual")
    return out


@pytest.fixture(scope="session")
def tiny_audio_encoder(ravdess_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An audio encoder (CPU-sized) trained briefly on Actor_01, Actor_02 held out."""
    out = tmp_path_factory.mktemp("enc") / "audio"
    entry = train_encoder(
        TrainConfig(
            dataset="ravdess",
            root=str(ravdess_root),
            modality="audio",
            out=str(out),
            speaker=["Actor_02"],
            train_speakers=["Actor_01"],
            **TINY,
        )
    )
    assert entry["metrics"]["n_clips"] == 60
    return out
