"""``TrainConfig``'s ranges and ``check_stage_options``: a setting out of range, or one the
chosen stage would not read, is refused in one line naming it; every valid setting passes.
No training here: the checks run on settings and on ``config.json`` files alone."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from avemotion.encoders.train_config import (
    MODALITIES,
    SHARED_OPTIONS,
    STAGE_OPTIONS,
    TrainConfig,
    check_stage_options,
    read_params_json,
)


def refused(message: str):  # type: ignore[no-untyped-def]
    """``pytest.raises`` for a ``ValueError`` whose text is exactly ``message``."""
    return pytest.raises(ValueError, match=f"^{re.escape(message)}$")


def encoder_dir(folder: Path, **sections: dict[str, Any]) -> str:
    """An encoder directory as far as the check reads one: its ``config.json``."""
    folder.mkdir(parents=True)
    config = {"format": "avemotion-encoder", "version": 1, "class_names": ["happy", "sad"]}
    (folder / "config.json").write_text(json.dumps({**config, **sections}))
    return str(folder)


# ------------------------------------------------------------------ ranges (__post_init__)
@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"learning_rate": 0.0}, "learning_rate: expected a number > 0, got 0.0"),
        ({"learning_rate": -0.001}, "learning_rate: expected a number > 0, got -0.001"),
        ({"learning_rate": float("inf")}, "learning_rate: expected a number > 0, got inf"),
        ({"learning_rate": "0.1"}, "learning_rate: expected a number > 0, got '0.1'"),
        ({"decay_rate": 0.0}, "decay_rate: expected a value in (0, 1], got 0.0"),
        ({"decay_rate": 1.5}, "decay_rate: expected a value in (0, 1], got 1.5"),
        ({"window_fraction": 0.0}, "window_fraction: expected a value in (0, 1], got 0.0"),
        ({"window_fraction": 1.01}, "window_fraction: expected a value in (0, 1], got 1.01"),
        (
            {"window_fraction": float("nan")},
            "window_fraction: expected a value in (0, 1], got nan",
        ),
        (
            {"temporal_late_weight": -0.5},
            "temporal_late_weight: expected a number >= 0, got -0.5",
        ),
        ({"steps_per_second": 0}, "steps_per_second: expected a number > 0, got 0"),
        ({"num_epochs": -1}, "num_epochs: expected a non-negative integer, got -1"),
        ({"batch_size": 0}, "batch_size: expected a positive integer, got 0"),
        ({"batch_size": True}, "batch_size: expected a positive integer, got True"),
        ({"batch_size": 8.0}, "batch_size: expected a positive integer, got 8.0"),
        ({"decay_step": -1}, "decay_step: expected a non-negative integer, got -1"),
        ({"audio_members": 0}, "audio_members: expected a positive integer, got 0"),
        ({"temporal_hidden": 0}, "temporal_hidden: expected a positive integer, got 0"),
        ({"temporal_copies": -1}, "temporal_copies: expected a non-negative integer, got -1"),
        ({"seed": -3}, "seed: expected a non-negative integer, got -3"),
        ({"threads": 0}, "threads: expected a positive integer, got 0"),
        (
            {"cross_fit": 1},
            "cross_fit: expected 0 (off) or an integer >= 2 (speaker folds), got 1",
        ),
        (
            {"cross_fit": -2},
            "cross_fit: expected 0 (off) or an integer >= 2 (speaker folds), got -2",
        ),
        (
            {"modality": "audi"},
            "modality: expected one of ['audio', 'visual', 'fusion', 'temporal'], got 'audi'",
        ),
        (
            {"audio_variant": "large"},
            "audio_variant: expected one of ['small', 'vggish', 'whisper-base', 'whisper-tiny-en'], got 'large'",
        ),
        (
            {"visual_variant": "resnet"},
            "visual_variant: expected one of ['small', 'mobilenet_v2', 'mini-xception'], "
            "got 'resnet'",
        ),
        (
            {"temporal_input": "embedding+pitch"},
            "temporal_input: expected '+'-joined parts of "
            "['embedding', 'posteriors', 'statistics'], got 'embedding+pitch'",
        ),
        (
            {"temporal_input": "embedding+embedding"},
            "temporal_input: expected '+'-joined parts of "
            "['embedding', 'posteriors', 'statistics'], got 'embedding+embedding'",
        ),
        (
            {"temporal_input": ""},
            "temporal_input: expected '+'-joined parts of "
            "['embedding', 'posteriors', 'statistics'], got ''",
        ),
        ({"fine_tune": "yes"}, "fine_tune: expected true, false or null, got 'yes'"),
    ],
)
def test_an_out_of_range_setting_is_refused_naming_it(
    settings: dict[str, Any], message: str
) -> None:
    with refused(message):
        TrainConfig(**settings)


@pytest.mark.parametrize("modality", MODALITIES)
def test_the_defaults_are_valid_for_every_stage(modality: str) -> None:
    config = TrainConfig(modality=modality)
    check_stage_options(config, {})  # nothing given by the user: nothing to refuse


@pytest.mark.parametrize(
    "settings",
    [  # the edges of each range are inside it
        {"num_epochs": 0},  # a zero-shot encoder
        {"decay_step": 0, "decay_rate": 1.0},
        {"window_fraction": 1.0, "learning_rate": 1e-5},
        {"temporal_late_weight": 0.0, "temporal_copies": 0, "seed": 0},
        {"cross_fit": 0},
        {"cross_fit": 2},
        {"learning_rate": 1},  # an integer is a number
        {"temporal_input": "statistics+embedding"},  # any order: read in a fixed one
        {"temporal_input": "embedding+posteriors+statistics"},
        {"fine_tune": False, "visual_variant": "mobilenet_v2", "audio_variant": "vggish"},
    ],
)
def test_settings_at_the_edges_of_their_ranges_are_accepted(settings: dict[str, Any]) -> None:
    config = TrainConfig(**settings)
    assert all(getattr(config, k) == v for k, v in settings.items())


def test_a_params_json_must_be_an_object(tmp_path: Path) -> None:
    path = tmp_path / "params.json"
    path.write_text("[1, 2]")
    with refused(f"{path}: expected a JSON object, got list"):
        read_params_json(path)


# ------------------------------------------------------------------ what each stage reads
def test_every_setting_is_in_the_stage_table() -> None:
    """A new field must say which stages read it, or the check would refuse it everywhere."""
    staged = {name for names in STAGE_OPTIONS.values() for name in names}
    assert {f.name for f in fields(TrainConfig)} == set(SHARED_OPTIONS) | staged
    assert not set(SHARED_OPTIONS) & staged


@pytest.mark.parametrize(
    ("modality", "name", "flag", "message"),
    [
        ("audio", "temporal_hidden", "--temporal-hidden", "not read by the audio stage (only by temporal)"),
        ("audio", "fine_tune", "--fine-tune", "not read by the audio stage (only by visual, temporal)"),
        ("audio", "visual_variant", "--visual-variant", "not read by the audio stage (only by visual)"),
        ("audio", "cross_fit", "--cross-fit", "not read by the audio stage (only by temporal)"),
        ("visual", "audio_members", "--audio-members", "not read by the visual stage (only by audio)"),
        ("visual", "audio_variant", "--audio-variant", "not read by the visual stage (only by audio)"),
        ("visual", "temporal_input", "--temporal-input", "not read by the visual stage (only by temporal)"),
        ("fusion", "fine_tune", "--fine-tune", "not read by the fusion stage (only by visual, temporal)"),
        ("fusion", "visual_variant", "--visual-variant", "not read by the fusion stage (only by visual)"),
        ("fusion", "temporal_late_weight", "--temporal-late-weight", "not read by the fusion stage (only by temporal)"),
        ("temporal", "audio_variant", "--audio-variant", "not read by the temporal stage (only by audio)"),
        ("temporal", "audio_members", "--audio-members", "not read by the temporal stage (only by audio)"),
        ("temporal", "window_fraction", "--window-fraction", "not read by the temporal stage (only by audio, visual, fusion)"),
    ],
)  # fmt: skip
def test_a_setting_the_stage_does_not_read_is_refused(
    modality: str, name: str, flag: str, message: str
) -> None:
    config = TrainConfig(modality=modality)  # the value is the default: what counts is "given"
    with refused(f"{flag}: {message}"):
        check_stage_options(config, {"out": "--out", name: flag})


@pytest.mark.parametrize(
    ("modality", "given"),
    [
        ("audio", ("window_fraction", "audio_variant", "audio_members", "learning_rate")),
        ("visual", ("window_fraction", "visual_variant", "fine_tune", "batch_size")),
        ("fusion", ("window_fraction", "num_epochs", "seed", "threads", "speaker")),
        ("temporal", ("temporal_hidden", "temporal_copies", "temporal_input", "cross_fit")),
        ("temporal", ("temporal_late_weight", "train_speakers", "device", "init")),
    ],
)
def test_the_settings_a_stage_reads_are_accepted(modality: str, given: tuple[str, ...]) -> None:
    check_stage_options(TrainConfig(modality=modality), {name: f"<{name}>" for name in given})


@pytest.mark.parametrize("modality", MODALITIES)
def test_decay_rate_needs_a_step_schedule(modality: str) -> None:
    given = {"decay_rate": "--decay-rate"}
    with refused(
        "--decay-rate: not read while decay_step is 0 (the one-cycle schedule); "
        "it is the StepLR factor of --decay-step N"
    ):
        check_stage_options(TrainConfig(modality=modality, decay_rate=0.5), given)
    config = TrainConfig(modality=modality, decay_step=10, decay_rate=0.5)
    check_stage_options(config, {**given, "decay_step": "--decay-step"})


def test_a_params_json_key_is_named_as_spelt(tmp_path: Path) -> None:
    label = f"{tmp_path / 'params.json'}: temporal_hidden"
    with refused(f"{label}: not read by the audio stage (only by temporal)"):
        check_stage_options(TrainConfig(temporal_hidden=64), {"temporal_hidden": label})
    # the official format carries decay_rate beside any decay_step, 0 (one-cycle) included
    rate = f"{tmp_path / 'params.json'}: decay_rate"
    check_stage_options(TrainConfig(decay_rate=0.1), {"decay_rate": rate})


# ------------------------------------------------------------------ the --init branch wins
def test_a_variant_conflicting_with_the_init_branch_is_refused(tmp_path: Path) -> None:
    small = encoder_dir(tmp_path / "small", audio={"variant": "small"})
    config = TrainConfig(modality="audio", init=[small], audio_variant="vggish")
    with refused(
        f"--audio-variant: 'vggish' conflicts with --init {small}, "
        "whose audio part (variant 'small') the stage starts from"
    ):
        check_stage_options(config, {"audio_variant": "--audio-variant"})
    config = TrainConfig(modality="audio", init=[small], audio_members=3)
    with refused(
        f"--audio-members: 3 conflicts with --init {small}, "
        "whose audio part (members 1) the stage starts from"
    ):
        check_stage_options(config, {"audio_members": "--audio-members"})
    equal = TrainConfig(modality="audio", init=[small], audio_variant="small", audio_members=1)
    check_stage_options(equal, {"audio_variant": "--audio-variant", "audio_members": "-m"})


def test_a_later_init_decides_the_branch(tmp_path: Path) -> None:
    """Sources merge in order, as the stage merges them; a part the sources lack is fresh."""
    small = encoder_dir(tmp_path / "small", audio={"variant": "small"})
    big = encoder_dir(tmp_path / "big", audio={"variant": "vggish", "members": 2})
    visual = encoder_dir(tmp_path / "visual", visual={"variant": "small"})
    given = {"audio_variant": "--audio-variant", "audio_members": "--audio-members"}
    later = TrainConfig(
        modality="audio", init=[small, big], audio_variant="vggish", audio_members=2
    )
    check_stage_options(later, given)
    fresh = TrainConfig(modality="audio", init=[visual], audio_variant="vggish", audio_members=2)
    check_stage_options(fresh, given)  # no audio part to start from: both are read


def test_a_weights_file_fixes_the_variant_when_its_name_does(tmp_path: Path) -> None:
    vggish = str(tmp_path / "pytorch_vggish.pth")
    config = TrainConfig(modality="audio", init=[vggish], audio_variant="small")
    with refused(
        f"--audio-variant: 'small' conflicts with --init {vggish}, "
        "whose audio part (variant 'vggish') the stage starts from"
    ):
        check_stage_options(config, {"audio_variant": "--audio-variant"})
    check_stage_options(TrainConfig(modality="audio", init=[vggish], audio_variant="vggish"),
                        {"audio_variant": "--audio-variant"})  # fmt: skip
    keras = str(tmp_path / "emotion_model.hdf5")
    config = TrainConfig(modality="visual", init=[keras], visual_variant="small")
    with refused(
        f"--visual-variant: 'small' conflicts with --init {keras}, "
        "whose visual part (variant 'mini-xception') the stage starts from"
    ):
        check_stage_options(config, {"visual_variant": "--visual-variant"})
    # a state dict's variant is set by its tensors, which the stage itself reads
    mobilenet = str(tmp_path / "mobilenet_v2.pth")
    config = TrainConfig(modality="visual", init=[mobilenet], visual_variant="mobilenet_v2")
    check_stage_options(config, {"visual_variant": "--visual-variant"})


def test_an_unreadable_init_is_left_to_the_stage(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    config = TrainConfig(modality="audio", init=[str(tmp_path / "broken")], audio_variant="vggish")
    check_stage_options(config, {"audio_variant": "--audio-variant"})


# ------------------------------------------------------------------ the temporal stage
def test_temporal_copies_need_an_audio_part(tmp_path: Path) -> None:
    visual = encoder_dir(tmp_path / "visual", visual={"variant": "small"})
    config = TrainConfig(modality="temporal", init=[visual], temporal_copies=3)
    with refused(
        "--temporal-copies: not read without an audio part (the copies are mel-warped "
        "audio), and --init has none"
    ):
        check_stage_options(config, {"temporal_copies": "--temporal-copies"})
    audio = encoder_dir(tmp_path / "audio", audio={"variant": "small"})
    config = TrainConfig(modality="temporal", init=[audio], temporal_copies=3)
    check_stage_options(config, {"temporal_copies": "--temporal-copies"})


def test_fine_tune_reaches_the_temporal_stage_only_through_cross_fitting(tmp_path: Path) -> None:
    visual = encoder_dir(tmp_path / "visual", visual={"variant": "small"})
    given = {"fine_tune": "--fine-tune"}
    with refused(
        "--fine-tune: the temporal stage reads it only with --cross-fit "
        "(whose folds retrain a visual branch below the LSTM)"
    ):
        check_stage_options(TrainConfig(modality="temporal", init=[visual], fine_tune=True), given)
    config = TrainConfig(modality="temporal", init=[visual], fine_tune=True, cross_fit=2)
    check_stage_options(config, given)
    branches = {"audio": {"variant": "small"}, "visual": {"variant": "small"}}
    fused = encoder_dir(tmp_path / "fused", **branches, fusion={"hidden": 512})
    config = TrainConfig(modality="temporal", init=[fused], fine_tune=True, cross_fit=2)
    with refused(
        "--fine-tune: not read here: --cross-fit retrains the fusion part below the LSTM, "
        "not a visual branch"
    ):
        check_stage_options(config, given)
