"""The temporal stage's input choices and its cross-fitted (out-of-fold) training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from avemotion.encoders.bundle import EncoderError, load_encoder
from avemotion.encoders.crossfit import part_config, speaker_folds, window_part
from avemotion.encoders.frontend import WINDOW_SAMPLES, patch_statistics, window_patch
from avemotion.encoders.train import TrainConfig, train_encoder


def test_speaker_folds_split_round_robin() -> None:
    folds = speaker_folds(["b", "a", "c", "d", "e"], 2)
    assert folds == [{"a", "c", "e"}, {"b", "d"}]
    with pytest.raises(ValueError, match="cross_fit"):
        speaker_folds(["a"], 2)
    with pytest.raises(ValueError, match="cross_fit"):
        speaker_folds(["a", "b"], 1)


def test_cross_fitted_lstm_on_branch_posteriors(
    ravdess_root: Path, tiny_audio_encoder: Path, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    base = load_encoder(tiny_audio_encoder)
    assert window_part(base) == "audio"
    settings = part_config(base, "audio", TrainConfig(seed=7, threads=1))
    assert (settings.modality, settings.seed, settings.window_fraction) == ("audio", 7, 0.05)
    enc = tmp_path / "temporal"
    entry = train_encoder(
        TrainConfig(
            dataset="ravdess",
            root=str(ravdess_root),
            modality="temporal",
            init=[str(tiny_audio_encoder)],
            out=str(enc),
            speaker=["Actor_02"],
            train_speakers=["Actor_01", "Actor_03"],
            num_epochs=1,
            batch_size=16,
            temporal_hidden=8,
            temporal_copies=1,
            temporal_input="embedding+posteriors+statistics",
            cross_fit=2,
            threads=1,
        )
    )
    assert entry["metrics"]["n_clips"] == 60
    encoder = load_encoder(enc)
    parts = ("embedding", "posteriors", "statistics")
    assert encoder.temporal_input == parts and encoder.feature_dim == 128 + 8 + 128
    assert encoder.config["temporal"] == {"hidden": 8, "in_dim": 264, "input": "+".join(parts)}
    window = torch.randn(WINDOW_SAMPLES).numpy() * 0.1
    patch = window_patch(window)[None]
    audio = encoder.audio_embeddings(patch)
    features = encoder.step_features(audio, None, patch)
    expected = torch.log_softmax(encoder.audio.head(audio), -1)  # type: ignore[union-attr]
    torch.testing.assert_close(features[:, :128], audio)
    torch.testing.assert_close(features[:, 128:136], expected)
    torch.testing.assert_close(features[:, 136:], patch_statistics(patch))
    with pytest.raises(EncoderError, match="patches"):
        encoder.step_features(audio, None)
    row, _ = encoder.temporal_step(features)
    assert row.shape == (1, 8 + 8)
