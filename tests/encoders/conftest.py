"""Fixtures of the encoder tests: a tiny audio encoder trained on two RAVDESS actors."""

from __future__ import annotations

from pathlib import Path

import pytest

from avemotion.encoders.train import TrainConfig, train_encoder

TINY = {"num_epochs": 1, "window_fraction": 0.05, "batch_size": 64, "threads": 1}


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
