"""``avemotion train-encoder`` refuses, in one line and before writing anything, an option
its stage would not read and a value out of range; the documented commands still pass.

The accepted commands are parsed and checked, not trained (:func:`settings` stops where
training would start)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from avemotion.cli import build_parser, main
from avemotion.cli.train_encoder import _config
from avemotion.encoders.train_config import TrainConfig, check_stage_options


def settings(*argv: str) -> tuple[TrainConfig, dict[str, str]]:
    """What ``train-encoder argv`` would train with (raising as ``run`` would, untrained)."""
    args = build_parser().parse_args(["train-encoder", *argv, "--device", "cpu"])
    config, given = _config(args)
    check_stage_options(config, given)
    return config, given


def refused_line(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``train-encoder`` over an empty corpus folder; return its one error line, having
    checked that it failed with status 2 and wrote nothing."""
    before = sorted(tmp_path.rglob("*"))
    corpus = ["--dataset", "csv", "--root", str(tmp_path), "--out", str(tmp_path / "enc")]
    assert main(["train-encoder", *corpus, *argv, "--device", "cpu"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert sorted(tmp_path.rglob("*")) == before
    return lines[0]


def encoder_dir(folder: Path, **sections: dict) -> str:
    folder.mkdir(parents=True)
    config = {"format": "avemotion-encoder", "version": 1, "class_names": ["happy", "sad"]}
    (folder / "config.json").write_text(json.dumps({**config, **sections}))
    return str(folder)


# ------------------------------------------------------------------ refused
@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["--modality", "audio", "--temporal-hidden", "8"],
         "--temporal-hidden: not read by the audio stage (only by temporal)"),
        (["--modality", "audio", "--fine-tune"],
         "--fine-tune: not read by the audio stage (only by visual, temporal)"),
        (["--modality", "visual", "--audio-members", "3"],
         "--audio-members: not read by the visual stage (only by audio)"),
        (["--modality", "fusion", "--cross-fit", "2"],
         "--cross-fit: not read by the fusion stage (only by temporal)"),
        (["--modality", "temporal", "--audio-variant", "vggish"],
         "--audio-variant: not read by the temporal stage (only by audio)"),
        (["--modality", "temporal", "--window-fraction", "0.5"],
         "--window-fraction: not read by the temporal stage (only by audio, visual, fusion)"),
        (["--modality", "audio", "--decay-rate", "0.5"],
         "--decay-rate: not read while decay_step is 0 (the one-cycle schedule); "
         "it is the StepLR factor of --decay-step N"),
        (["--modality", "audio", "--lr", "0"],
         "learning_rate: expected a number > 0, got 0.0"),
        (["--modality", "audio", "--decay-step", "5", "--decay-rate", "2"],
         "decay_rate: expected a value in (0, 1], got 2.0"),
        (["--modality", "audio", "--window-fraction", "1.5"],
         "window_fraction: expected a value in (0, 1], got 1.5"),
        (["--modality", "temporal", "--temporal-late-weight", "-1"],
         "temporal_late_weight: expected a number >= 0, got -1.0"),
        (["--modality", "temporal", "--cross-fit", "1"],
         "cross_fit: expected 0 (off) or an integer >= 2 (speaker folds), got 1"),
        (["--modality", "temporal", "--temporal-input", "embedding+pitch"],
         "temporal_input: expected '+'-joined parts of "
         "['embedding', 'posteriors', 'statistics'], got 'embedding+pitch'"),
        (["--modality", "audio", "--audio-members", "0"],
         "audio_members: expected a positive integer, got 0"),
        (["--modality", "audio", "--threads", "0"],
         "threads: expected a positive integer, got 0"),
    ],
)  # fmt: skip
def test_an_unread_or_out_of_range_option_is_one_line(
    argv: list[str], line: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert refused_line(argv, tmp_path, capsys) == f"avemotion train-encoder: error: {line}"


def test_a_params_json_key_is_named_with_its_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"modality": "audio", "temporal_hidden": 8}))
    line = refused_line(["--params", str(params)], tmp_path, capsys)
    assert line == (
        f"avemotion train-encoder: error: {params}: temporal_hidden: "
        "not read by the audio stage (only by temporal)"
    )


def test_a_flag_over_a_params_json_key_is_named_as_the_flag(tmp_path: Path) -> None:
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"modality": "fusion", "decay_rate": 0.1}))
    with pytest.raises(ValueError, match=r"^--decay-rate: not read while decay_step is 0"):
        settings("--params", str(params), "--decay-rate", "0.5", "--out", "e", "--root", "r")
    config, given = settings("--params", str(params), "--decay-step", "3", "--out", "e")
    assert (config.modality, config.decay_step, config.decay_rate) == ("fusion", 3, 0.1)
    assert given["decay_rate"] == f"{params}: decay_rate" and given["decay_step"] == "--decay-step"


def test_a_conflicting_variant_names_the_init(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    enc = encoder_dir(tmp_path / "start", audio={"variant": "small"})
    line = refused_line(
        ["--modality", "audio", "--init", enc, "--audio-variant", "vggish"], tmp_path, capsys
    )
    assert line == (
        f"avemotion train-encoder: error: --audio-variant: 'vggish' conflicts with --init {enc}, "
        "whose audio part (variant 'small') the stage starts from"
    )


# ------------------------------------------------------------------ accepted
def test_the_documented_commands_pass(tmp_path: Path) -> None:
    """docs/encoders.md, docs/visual.md, docs/results.md and experiments/ravdess_audio.py."""
    enc = encoder_dir(tmp_path / "enc", audio={"variant": "small", "members": 3})
    audio = encoder_dir(tmp_path / "a", audio={"variant": "small"})
    visual = encoder_dir(tmp_path / "v", visual={"variant": "mini-xception"})
    corpus = ["--dataset", "ravdess", "--root", "DIR", "--heldout", "Actor_15", "Actor_16"]
    mead = ["--dataset", "mead", "--root", "MEAD", "--modality", "visual"]
    commands = [
        [*corpus, "--modality", "audio", "--out", "ENC"],
        [*corpus, "--modality", "audio", "--audio-members", "3", "--out", "ENC"],
        [*corpus, "--modality", "temporal", "--init", enc, "--out", "ENC", "--epochs", "20"]
        + ["--batch-size", "32", "--temporal-input", "embedding+posteriors+statistics"]
        + ["--temporal-late-weight", "1.0"],
        [*mead, "--visual-variant", "mini-xception", "--epochs", "0", "--out", "Z"]
        + ["--init", str(tmp_path / "emotion_model.hdf5")],
        [*mead, "--visual-variant", "mini-xception", "--heldout", "M030", "--out", "L"]
        + ["--window-fraction", "1.0", "--init", str(tmp_path / "emotion_model.hdf5")],
        [*mead, "--visual-variant", "mini-xception", "--fine-tune", "--epochs", "1"]
        + ["--init", str(tmp_path / "emotion_model.hdf5"), "--out", "T"],
        [*corpus, "--modality", "audio", "--audio-variant", "vggish"]
        + ["--init", "pytorch_vggish.pth", "--out", "ENC"],
        [*corpus, "--modality", "visual", "--visual-variant", "mobilenet_v2"]
        + ["--init", "mobilenet_v2.pth", "--out", "ENC"],
        [*corpus, "--modality", "fusion", "--init", audio, "--init", visual, "--out", "F"]
        + ["--epochs", "1", "--batch-size", "8"],
        [*corpus, "--modality", "audio", "--decay-step", "10", "--decay-rate", "0.5"]
        + ["--out", "ENC", "--seed", "3", "--threads", "1", "--lr", "0.001"],
        [*corpus, "--modality", "temporal", "--init", audio, "--cross-fit", "2", "--out", "T"]
        + ["--temporal-hidden", "8", "--temporal-copies", "1"],
    ]
    for argv in commands:
        settings(*argv)


def test_the_official_params_json_passes(tmp_path: Path) -> None:
    params = tmp_path / "params.json"
    official = {"num_epochs": 3, "batch_size": 32, "learning_rate": 1e-5, "decay_step": 10}
    official |= {"decay_rate": 0.1, "modality": "visual", "speaker": "s3"}
    params.write_text(json.dumps(official))
    config, given = settings("--params", str(params), "--out", "e", "--dataset", "csv")
    assert (config.decay_step, config.decay_rate, config.speaker) == (10, 0.1, ["s3"])
    assert given["modality"] == f"{params}: modality" and given["out"] == "--out"
