"""A clip's steps when its video is shorter than its audio: the steps past the video's end
are cut (and said so), a video cut short of its own duration is refused, and extraction
lists such a file as skipped with its reason."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from avemotion import FeatureStore
from avemotion.benchmarks.av_fixture import synthetic_av_clip
from avemotion.cli import main
from avemotion.encoders import mini_xception
from avemotion.encoders.datasets import Item
from avemotion.encoders.extract import ExtractConfig, extract
from avemotion.encoders.frontend import step_times
from avemotion.encoders.media import MediaError, load_video
from avemotion.encoders.steps import StepConfig, clip_steps


def voice(seconds: float, pitch: float = 200.0) -> np.ndarray:
    """A voiced harmonic sound (not silent, so the audio is used)."""
    t = np.arange(int(seconds * 16000)) / 16000
    wave = sum(np.sin(2 * np.pi * k * pitch * t) / k for k in range(1, 6))
    return (0.15 * (0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t) ** 2) * wave).astype(np.float32)


def _truncated(source: Path, out: Path, fraction: float = 0.6) -> Path:
    """``source`` cut off at ``fraction`` of its bytes, as an interrupted copy leaves it."""
    data = source.read_bytes()
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


def test_steps_past_the_end_of_a_shorter_video_are_cut(tmp_path: Path) -> None:
    """1.0 s of video beside 2.5 s of audio: 16 audio windows, but only the 6 whose centre
    (0.4875 s + 0.1 s · i) the video reaches are kept; none repeats the last frame."""
    video = synthetic_av_clip(tmp_path / "face.mkv", seconds=1.0, size=128, seed=3)
    wav = tmp_path / "speech.wav"
    soundfile.write(wav, voice(2.5), 16000)
    item = Item(video, "happy", "s1", "c1", audio_path=wav)
    with pytest.warns(UserWarning, match=r"face\.mkv: the video track ends before the audio"):
        clip = clip_steps(item, True, True, StepConfig(10.0, 64))
    assert clip.n_steps == 6 and clip.cut_steps == 10
    assert clip.cut_seconds == pytest.approx(1.0)
    assert len(clip.patches) == len(clip.crops) == len(clip.voiced) == 6
    assert step_times(6)[-1] < 1.0 <= step_times(7)[-1]
    # the kept steps are those of the audio alone, unchanged
    audio_only = clip_steps(item, True, False, StepConfig(10.0, 64))
    assert audio_only.n_steps == 16 and audio_only.cut_steps == 0
    torch.testing.assert_close(clip.patches, audio_only.patches[:6])


def test_equal_lengths_cut_nothing(tmp_path: Path) -> None:
    clip_path = synthetic_av_clip(tmp_path / "av.mkv", seconds=1.6, size=128, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no cut, no fallback frame rate
        clip = clip_steps(Item(clip_path, "happy", "s1", "c"), True, True, StepConfig(10.0, 64))
    assert clip.n_steps == 7 and clip.cut_steps == 0 and clip.cut_seconds == 0.0


def test_truncated_video_is_refused_with_one_line(tmp_path: Path) -> None:
    """The stream refuses a file cut short of its declared duration; extraction does too,
    instead of padding the steps past the cut with the last frame decoded."""
    whole = synthetic_av_clip(tmp_path / "whole.mkv", seconds=2.0, size=96, seed=2)
    cut = _truncated(whole, tmp_path / "cut.mkv")
    with pytest.raises(MediaError) as error:
        load_video(cut)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{cut}: video track truncated")
    assert "of 2.00 s" in message
    with pytest.raises(MediaError, match="cut.mkv: video track truncated"):
        clip_steps(Item(cut, "happy", "s1", "c"), True, True, StepConfig(10.0, 64))
    assert len(load_video(whole).frames) == 50


def _zero_shot_encoder(root: Path, tmp_path: Path) -> Path:
    """A visual-only encoder over ``root``'s CSV: a seeded mini-Xception, no training."""
    torch.manual_seed(0)
    weights = mini_xception.write_keras_weights(
        mini_xception.MiniXception().eval(), tmp_path / "emotion_model.hdf5"
    )
    enc = tmp_path / "enc"
    argv = ["train-encoder", "--dataset", "csv", "--root", str(root), "--modality", "visual"]
    argv += ["--visual-variant", "mini-xception", "--init", str(weights), "--epochs", "0"]
    assert main([*argv, "--out", str(enc), "--json"]) == 0
    return enc


def test_extraction_lists_a_truncated_video_as_skipped(tmp_path: Path, capsys) -> None:
    """A visual-only (zero-shot mini-Xception) extraction of a good clip and a truncated
    one: the store holds the good one, ``skipped`` names the other with its reason."""
    root = tmp_path / "corpus"
    root.mkdir()
    for i in range(2):
        synthetic_av_clip(root / f"good{i}.mkv", seconds=1.2, size=128, seed=i)
    whole = synthetic_av_clip(tmp_path / "whole.mkv", seconds=2.0, size=128, seed=5)
    _truncated(whole, root / "cut.mkv")
    rows = ["good0.mkv,happy,s1", "good1.mkv,sad,s1", "cut.mkv,happy,s2"]
    (root / "data.csv").write_text("\n".join(rows) + "\n")
    enc = _zero_shot_encoder(root, tmp_path)
    capsys.readouterr()
    config = ExtractConfig("csv", str(root), str(enc), str(tmp_path / "store"), workers=1)
    config.progress = False
    store, skipped = extract(config)
    assert FeatureStore.open(store.path).clip_ids == ["good0", "good1"]
    cut_lines = [line for line in skipped if "cut.mkv" in line]
    assert len(cut_lines) == 1 and "video track truncated or corrupt" in cut_lines[0]
    assert cut_lines[0] in store.meta["skipped"]
    assert np.isfinite(np.asarray(store.frames)).all()


def test_extraction_records_the_steps_it_cut(tmp_path: Path, monkeypatch, capsys) -> None:
    """A kept clip whose audio outlasts its video keeps fewer steps: the store's meta lists
    it with what was cut (here clip_steps is made to report a cut for one clip)."""
    import dataclasses

    import avemotion.encoders.extract as extract_module

    root = tmp_path / "corpus"
    root.mkdir()
    for i in range(2):
        synthetic_av_clip(root / f"good{i}.mkv", seconds=1.2, size=128, seed=i)
    (root / "data.csv").write_text("good0.mkv,happy,s1\ngood1.mkv,sad,s1\n")
    enc = _zero_shot_encoder(root, tmp_path)
    decode = extract_module.decode_clip

    def cut_one(encoder, item, steps, cascade=None):
        clip = decode(encoder, item, steps, cascade)
        return (
            dataclasses.replace(clip, cut_steps=2, cut_seconds=0.2)
            if item.clip_id == "good1"
            else clip
        )

    monkeypatch.setattr(extract_module, "decode_clip", cut_one)
    capsys.readouterr()
    argv = ["extract", "--dataset", "csv", "--root", str(root), "--encoder", str(enc)]
    assert main([*argv, "--out", str(tmp_path / "store"), "--workers", "1", "--no-progress"]) == 0
    line = f"{root / 'good1.mkv'}: 2 step(s), 0.20 s of audio past the end of its video, left out"
    assert FeatureStore.open(tmp_path / "store").meta["cut"] == [line]
    assert f"  cut {line}" in capsys.readouterr().out.splitlines()
