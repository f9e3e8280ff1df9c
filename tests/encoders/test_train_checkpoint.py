"""Per-epoch checkpoints of a training stage: a stage stopped after any epoch and started
again ends bit-identical to an uninterrupted one; a checkpoint of another job is ignored."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from avemotion.encoders import train_checkpoint
from avemotion.encoders.bundle import load_encoder
from avemotion.encoders.train_checkpoint import EpochCheckpoint, work_dir


class Killed(Exception):
    """Stands in for a SIGKILL right after a checkpoint was written."""


def _stop_after(monkeypatch: pytest.MonkeyPatch, epoch: int) -> None:
    original = EpochCheckpoint.save

    def save_then_die(self, done, *args):  # type: ignore[no-untyped-def]
        original(self, done, *args)
        if done == epoch:
            raise Killed

    monkeypatch.setattr(EpochCheckpoint, "save", save_then_die)


def _same_weights(a: Path, b: Path) -> None:
    first, second = load_encoder(a), load_encoder(b)
    for part in ("audio", "visual", "fusion", "temporal"):
        x, y = getattr(first, part), getattr(second, part)
        assert (x is None) == (y is None)
        if x is not None:
            for name, value in x.state_dict().items():
                assert torch.equal(value, y.state_dict()[name]), f"{part}.{name}"


@pytest.mark.parametrize(
    ("modality", "stop"), [("audio", 1), ("audio", 3), ("temporal", 2)], ids=str
)
def test_a_stopped_stage_resumes_bit_identically(
    modality: str,
    stop: int,
    synthetic_stage,
    synthetic_audio_encoder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings: dict = {"num_epochs": 4, "seed": 5}
    if modality == "temporal":  # the LSTM on cross-fitted inputs: the folds are redone
        settings |= {"init": [str(synthetic_audio_encoder)], "cross_fit": 2, "temporal_hidden": 8}
    whole = synthetic_stage(tmp_path / "whole", modality, **settings)
    assert whole["resumed_after_epoch"] == 0
    out = tmp_path / "resumed"
    with monkeypatch.context() as patch:
        _stop_after(patch, stop)
        with pytest.raises(Killed):
            synthetic_stage(out, modality, **settings)
    assert not (out / "config.json").exists()
    saved = torch.load(work_dir(out) / train_checkpoint.CHECKPOINT, weights_only=True)
    assert saved["epoch"] == stop
    resumed = synthetic_stage(out, modality, **{**settings, "threads": 1})
    assert resumed["resumed_after_epoch"] == stop
    assert resumed["metrics"] == whole["metrics"]
    _same_weights(out, tmp_path / "whole")
    assert not work_dir(out).exists()  # removed once the encoder is written


def test_a_checkpoint_of_another_job_is_ignored(
    synthetic_stage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "enc"
    with monkeypatch.context() as patch:
        _stop_after(patch, 1)
        with pytest.raises(Killed):
            synthetic_stage(out, "audio", num_epochs=3, seed=1)
    entry = synthetic_stage(out, "audio", num_epochs=3, seed=2)  # another seed: another job
    assert entry["resumed_after_epoch"] == 0
    synthetic_stage(tmp_path / "fresh", "audio", num_epochs=3, seed=2)
    _same_weights(out, tmp_path / "fresh")
