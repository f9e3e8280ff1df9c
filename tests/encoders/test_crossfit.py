"""The temporal stage's input choices and its cross-fitted (out-of-fold) training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from avemotion.encoders import crossfit
from avemotion.encoders.bundle import EncoderError, load_encoder
from avemotion.encoders.crossfit import cross_fit_folds, part_config, window_part
from avemotion.encoders.datasets import list_dataset
from avemotion.encoders.frontend import WINDOW_SAMPLES, patch_statistics, window_patch
from avemotion.encoders.train import TrainConfig, train_encoder


def test_cross_fit_folds_are_the_speaker_folds() -> None:
    folds = cross_fit_folds(["b", "a", "c", "d", "e"], 2)
    assert folds == [["a", "b", "c"], ["d", "e"]]
    with pytest.raises(ValueError, match="cross_fit"):
        cross_fit_folds(["a"], 2)
    with pytest.raises(ValueError, match="cross_fit"):
        cross_fit_folds(["a", "b"], 1)


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


# ------------------------------------------------------------ synthetic media, no ../shared
@pytest.mark.parametrize("level", ["branch", "fusion"])
def test_each_fold_is_encoded_by_a_part_that_never_saw_its_speakers(
    level: str,
    synthetic_audio_encoder: Path,
    synthetic_visual_encoder: Path,
    synthetic_stage,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both levels of cross-fitting (the LSTM on a branch, the LSTM on the fusion DNN): the
    part below the LSTM is retrained per fold on the other fold's speakers only."""
    if level == "fusion":
        init = [str(synthetic_audio_encoder), str(synthetic_visual_encoder)]
        synthetic_stage(tmp_path / "fused", "fusion", init=init)
        init, part = [str(tmp_path / "fused")], "fusion"
    else:
        init, part = [str(synthetic_audio_encoder)], "audio"
    assert window_part(load_encoder(init[0])) == part
    fits: list[tuple[str, list[str]]] = []
    original = crossfit.fit_windows

    def recording(net, modality, batch, encoder, config, checkpoint=None):  # type: ignore[no-untyped-def]
        fits.append((modality, sorted({c.item.speaker for c in batch.clips})))
        return original(net, modality, batch, encoder, config, checkpoint)

    monkeypatch.setattr(crossfit, "fit_windows", recording)
    entry = synthetic_stage(
        tmp_path / "temporal",
        "temporal",
        init=init,
        cross_fit=2,
        temporal_hidden=8,
        temporal_copies=1,
    )
    # cross_fit_folds(["s1", "s2"], 2) == [["s1"], ["s2"]]: fold 1 is encoded by a part
    # trained on s2 alone, fold 2 by one trained on s1 alone
    assert fits == [(part, ["s2"]), (part, ["s1"])]
    assert entry["train_speakers"] == ["s1", "s2"] and entry["metrics"]["n_clips"] == 4
    stored = load_encoder(tmp_path / "temporal")
    below = load_encoder(init[0])
    for name, value in getattr(below, part).state_dict().items():  # the stored part: all speakers
        torch.testing.assert_close(getattr(stored, part).state_dict()[name], value)


def test_out_of_fold_sequences_differ_from_in_fold_ones(
    synthetic_root: Path, synthetic_audio_encoder: Path
) -> None:
    """A fold's sequences come from its own retrained branch, not the stored one; with
    no augmented copies they are the clips' plain step features under that branch."""
    from avemotion.encoders.loops import ClipBatch, temporal_inputs
    from avemotion.encoders.steps import clip_steps

    encoder = load_encoder(synthetic_audio_encoder)
    items = [i for i in list_dataset("csv", synthetic_root)[0] if i.speaker != "s3"]
    clips = [clip_steps(i, True, False) for i in items]
    batch = ClipBatch.build(clips, encoder, tuple(encoder.class_names))
    config = TrainConfig(seed=3, threads=1, cross_fit=2)
    out_of_fold = crossfit.out_of_fold_sequences(batch, encoder, config, copies=0)
    in_fold = temporal_inputs(batch, encoder)
    assert len(out_of_fold) == len(in_fold) == 8
    assert [s.shape for s in out_of_fold] == [s.shape for s in in_fold]
    assert all(not torch.equal(a, b) for a, b in zip(out_of_fold, in_fold))
    again = crossfit.out_of_fold_sequences(batch, encoder, config, copies=0)
    for a, b in zip(out_of_fold, again):  # seeded: the same folds give the same sequences
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_fold_copies_of_a_pretrained_branch_start_from_its_published_file(
    synthetic_stage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mini-Xception branch (here from a seeded stand-in Keras file, frozen backbone): each
    fold's copy is rebuilt from that file, so its backbone equals the file's, not a fresh
    network's (whose random backbone would stay random, being frozen)."""
    from avemotion.encoders import mini_xception

    torch.manual_seed(11)
    keras = mini_xception.write_keras_weights(mini_xception.MiniXception(), tmp_path / "fer.hdf5")
    published = mini_xception.read_keras_weights(keras)
    synthetic_stage(
        tmp_path / "visual", "visual", init=[str(keras)], visual_variant="mini-xception"
    )
    copies: list[torch.nn.Module] = []
    original = crossfit.fit_windows

    def recording(net, modality, batch, encoder, config, checkpoint=None):  # type: ignore[no-untyped-def]
        copies.append(net)
        return original(net, modality, batch, encoder, config, checkpoint)

    monkeypatch.setattr(crossfit, "fit_windows", recording)
    synthetic_stage(
        tmp_path / "temporal",
        "temporal",
        init=[str(tmp_path / "visual")],
        cross_fit=2,
        temporal_hidden=8,
    )
    assert len(copies) == 2
    for copy in copies:
        assert copy.variant == "mini-xception" and not copy.fine_tune
        backbone = copy.backbone.state_dict()
        for name, value in published.items():
            torch.testing.assert_close(backbone[name], value, rtol=0, atol=0)
