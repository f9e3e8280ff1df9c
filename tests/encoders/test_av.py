"""The audio-visual path on a fixture muxed in the test: a MEAD face clip with a RAVDESS
utterance of the same emotion, written through PyAV into one mp4 with both streams."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import pytest
import soundfile
import torch

from avemotion import FeatureStore
from avemotion.encoders.bundle import build_nets, load_encoder, save_encoder
from avemotion.encoders.datasets import Item
from avemotion.encoders.extract import ExtractConfig, ExtractionError, extract
from avemotion.encoders.layouts import LABEL_SHEET
from avemotion.encoders.steps import StepConfig, clip_steps
from avemotion.encoders.train import TrainConfig, train_encoder

PAIRS = {
    "happy": ("W009_front_happy_level3_001.mp4", "03-01-03-02-01-01-{a}.flac"),
    "angry": ("M030_front_angry_level3_001.mp4", "03-01-05-02-01-01-{a}.flac"),
}


def mux(video_path: Path, audio_path: Path, out: Path) -> Path:
    """Write ``video_path``'s frames and ``audio_path``'s samples into one mp4 (H.264 + AAC)."""
    audio, rate = soundfile.read(str(audio_path), dtype="float32")
    with av.open(str(video_path)) as source, av.open(str(out), "w") as target:
        in_video = source.streams.video[0]
        video = target.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = (
            in_video.codec_context.width,
            in_video.codec_context.height,
            "yuv420p",
        )
        sound = target.add_stream("aac", rate=rate, layout="mono")
        for index, frame in enumerate(source.decode(in_video)):
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = index, Fraction(1, 25)
            target.mux(video.encode(frame))
        target.mux(video.encode(None))
        size = 1024
        for start in range(0, len(audio), size):
            chunk = audio[start : start + size]
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, start
            target.mux(sound.encode(frame))
        target.mux(sound.encode(None))
    return out


@pytest.fixture(scope="module")
def av_corpus(
    mead_root: Path, ravdess_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    folder = tmp_path_factory.mktemp("av")
    rows = []
    for emotion, (video, audio) in PAIRS.items():
        for actor in ("01",) if emotion == "happy" else ("02",):
            name = f"{emotion}_{actor}.mp4"
            mux(
                mead_root / video,
                ravdess_root / f"Actor_{actor}" / audio.format(a=actor),
                folder / name,
            )
            rows.append(f"{name},{emotion},spk{actor}")
    (folder / "data.csv").write_text("path,label,speaker\n" + "\n".join(rows) + "\n")
    return folder


def test_fixture_has_both_streams(av_corpus: Path) -> None:
    with av.open(str(av_corpus / "happy_01.mp4")) as container:
        assert len(container.streams.video) == 1 and len(container.streams.audio) == 1


def test_av_steps_align_both_streams(av_corpus: Path) -> None:
    item = Item(av_corpus / "happy_01.mp4", "happy", "spk01", "happy_01")
    clip = clip_steps(item, need_audio=True, need_visual=True, config=StepConfig(face_size=112))
    assert clip.patches is not None and clip.crops is not None
    assert clip.patches.shape[0] == clip.crops.shape[0] == clip.n_steps >= 20
    assert clip.faces_detected / clip.n_steps >= 0.8
    pooled = clip_steps(
        item, need_audio=True, need_visual=True, config=StepConfig(face_size=64, frame_pool=11)
    )
    assert pooled.crops.shape == (clip.n_steps, 11, 64, 64, 3)


def test_full_av_path_fusion_and_temporal(av_corpus: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    classes = ["happy", "angry"]
    for part in ("audio", "visual"):
        config = {"class_names": classes, part: {"variant": "small"}}
        save_encoder(tmp_path / part, config, build_nets(config))
    entry = train_encoder(
        TrainConfig(
            dataset="csv",
            root=str(av_corpus),
            modality="fusion",
            init=[str(tmp_path / "audio"), str(tmp_path / "visual")],
            out=str(tmp_path / "fused"),
            speaker=["spk02"],
            num_epochs=1,
            batch_size=16,
            threads=1,
        )
    )
    assert entry["metrics"]["n_clips"] == 1 and entry["train_speakers"] == ["spk01"]
    entry = train_encoder(
        TrainConfig(
            dataset="csv",
            root=str(av_corpus),
            modality="temporal",
            init=[str(tmp_path / "fused")],
            out=str(tmp_path / "fused"),
            speaker=["spk02"],
            num_epochs=1,
            batch_size=2,
            temporal_hidden=8,
            threads=1,
        )
    )
    encoder = load_encoder(tmp_path / "fused")
    assert encoder.modality == "audio-visual" and [
        h["stage"] for h in encoder.config["history"]
    ] == ["fusion", "temporal"]
    assert encoder.level_dim("fusion") == 512
    for level, dim in (("embedding", 1408), ("temporal", 8 + 2)):
        store, skipped = extract(
            ExtractConfig(
                "csv",
                str(av_corpus),
                str(tmp_path / "fused"),
                str(tmp_path / level),
                level=level,
                workers=1,
                progress=False,
            )
        )
        sheet = f"{av_corpus / 'data.csv'}: {LABEL_SHEET}"  # the only file in no clip
        assert skipped == [sheet] and store.dim == dim and store.n_clips == 2
        assert (
            store.meta["modality"] == "audio-visual" and store.meta["face_detected_fraction"] >= 0.8
        )
    embedding = FeatureStore.open(tmp_path / "embedding")
    assert embedding.meta["parts"] == {"visual": [0, 1280], "audio": [1280, 1408]}
    assert embedding.meta["frame_pool"] == 1
    # extraction searches faces with the encoder's own ``visual.face`` settings
    config_file = tmp_path / "fused" / "config.json"
    config = json.loads(config_file.read_text())
    assert config["visual"]["face"]["scale_factor"] == 1.2  # the CPU-sized variant's default
    config["visual"]["face"]["min_neighbors"] = 10_000  # no detection is that sure
    config_file.write_text(json.dumps(config))
    with pytest.raises(ExtractionError, match="no face found in any"):
        extract(
            ExtractConfig(
                "csv",
                str(av_corpus),
                str(tmp_path / "fused"),
                str(tmp_path / "strict"),
                workers=1,
                progress=False,
            )
        )
