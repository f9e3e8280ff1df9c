"""Bad configuration and command lines: each fails with exit code 2 and one error line that
names the file or the field (no traceback), before any long work starts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from avemotion.encoders.bundle import load_encoder
from avemotion.store import FeatureStore

from .conftest import CLASSES, TINY_DQN, make_store, tone


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six 1.5 s tones of 3 speakers as a CSV corpus."""
    folder = tmp_path_factory.mktemp("media")
    rows = []
    for i in range(6):
        soundfile.write(folder / f"c{i}.wav", tone(1.5, 16000, freq=200 + 60 * i), 16000)
        rows.append(f"c{i}.wav,{['happy', 'sad'][i % 2]},s{i % 3}")
    (folder / "data.csv").write_text("\n".join(rows) + "\n")
    return folder


def _fails(result, *names: str) -> None:
    assert result.code == 2, (result.code, result.out, result.err)
    assert "Traceback" not in result.err
    line = result.error_line
    for name in names:
        assert name in line, f"{name!r} not named in: {line}"


# ------------------------------------------------------------------ params.json
def test_unknown_keys_in_params_json(media: Path, tmp_path: Path, run_cli) -> None:
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"num_epochs": 1, "modality": "audio", "learnig_rate": 0.1}))
    result = run_cli(
        "train-encoder", "--params", params, "--dataset", "csv", "--root", media,
        "--out", tmp_path / "enc",
    )  # fmt: skip
    _fails(result, str(params), "learnig_rate")
    assert not (tmp_path / "enc").exists()


def test_unreadable_params_json(media: Path, tmp_path: Path, run_cli) -> None:
    params = tmp_path / "params.json"
    params.write_text('{"num_epochs": 1,')
    result = run_cli(
        "train-encoder", "--params", params, "--dataset", "csv", "--root", media,
        "--out", tmp_path / "enc",
    )  # fmt: skip
    _fails(result, str(params))


def test_unknown_agent_option(small_store: FeatureStore, tmp_path: Path, run_cli) -> None:
    result = run_cli(
        "train", "--features", small_store.path, "--steps", "50", "--out", tmp_path / "run",
        "--set", "learnig_rate=0.1",
    )  # fmt: skip
    _fails(result, "learnig_rate")


# ------------------------------------------------------------------ budgets
def test_negative_training_steps(small_store: FeatureStore, tmp_path: Path, run_cli) -> None:
    result = run_cli(
        "train", "--features", small_store.path, "--steps", "-5", "--out", tmp_path / "run"
    )
    _fails(result, "steps", "-5")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "option", ["checkpoint_every=0", "batch_size=-1", "buffer_size=-10", "num_envs=0"]
)
def test_non_positive_agent_budgets(
    option: str, small_store: FeatureStore, tmp_path: Path, run_cli
) -> None:
    result = run_cli(
        "train", "--features", small_store.path, "--steps", "60", "--out", tmp_path / "run",
        "--no-eval", "--set", option, "progress=false",
    )  # fmt: skip
    _fails(result, option.split("=")[0])


@pytest.mark.parametrize(
    ("flag", "field", "value"),
    [  # --epochs 0 is valid: it writes a zero-shot encoder from a pretrained branch
        ("--epochs", "num_epochs", "-1"),
        ("--batch-size", "batch_size", "0"),
        ("--batch-size", "batch_size", "-1"),
    ],
)
def test_non_positive_encoder_budgets(
    flag: str, field: str, value: str, media: Path, tmp_path: Path, run_cli
) -> None:
    result = run_cli(
        "train-encoder", "--dataset", "csv", "--root", media, "--modality", "audio",
        "--out", tmp_path / "enc", "--heldout", "s2", flag, value,
    )  # fmt: skip
    _fails(result, field)
    assert not (tmp_path / "enc").exists()


def test_negative_sweep_and_fuzz_budgets(
    small_store: FeatureStore, tmp_path: Path, run_cli
) -> None:
    result = run_cli(
        "sweep", "--features", small_store.path, "--agents", "dqn", "--steps", "-1",
        "--out", tmp_path / "sweep",
    )  # fmt: skip
    _fails(result, "steps")
    _fails(run_cli("bench", "fuzz", "--steps", "-3"), "--steps")


# ------------------------------------------------------------------ missing things
def test_missing_run_directory(small_store: FeatureStore, tmp_path: Path, run_cli) -> None:
    missing = tmp_path / "no-such-run"
    _fails(run_cli("evaluate", "--run", missing, "--features", small_store.path), str(missing))
    _fails(run_cli("stream", "--run", missing, "--audio", missing / "x.wav"), str(missing))


def test_missing_store(tmp_path: Path, run_cli) -> None:
    missing = tmp_path / "no-such-store"
    result = run_cli("train", "--features", missing, "--steps", "50", "--out", tmp_path / "r")
    _fails(result, str(missing), "meta.json")


def test_unknown_dataset(audio_encoder: Path, media: Path, tmp_path: Path, run_cli) -> None:
    result = run_cli(
        "extract", "--dataset", "ravdes", "--root", media, "--encoder", audio_encoder,
        "--out", tmp_path / "s", "--no-progress",
    )  # fmt: skip
    _fails(result, "dataset", "ravdes")


# ------------------------------------------------------------------ incompatible encoders
def test_extraction_level_the_encoder_lacks(
    audio_encoder: Path, media: Path, tmp_path: Path, run_cli
) -> None:
    result = run_cli(
        "extract", "--dataset", "csv", "--root", media, "--encoder", audio_encoder,
        "--out", tmp_path / "s", "--level", "fusion", "--no-progress",
    )  # fmt: skip
    _fails(result, "fusion")
    assert not (tmp_path / "s").exists()


def test_run_evaluated_on_a_store_of_another_dim(small_run: Path, tmp_path: Path, run_cli) -> None:
    other = make_store(tmp_path / "wide", dim=9)
    result = run_cli("evaluate", "--run", small_run, "--features", other.path)
    _fails(result, str(other.path), "dim")


def test_stream_with_an_encoder_the_store_was_not_extracted_with(
    audio_encoder: Path, visual_encoder: Path, tmp_path: Path, run_cli
) -> None:
    from avemotion.training.train import train

    encoder = load_encoder(audio_encoder)
    rng = np.random.default_rng(0)
    store = FeatureStore.create(
        tmp_path / "store",
        [rng.normal(size=(int(rng.integers(4, 9)), 128)).astype(np.float32) for _ in range(9)],
        [i % 3 for i in range(9)],
        [f"s{i % 3}" for i in range(9)],
        CLASSES,
        meta={
            "encoder": encoder.identity,
            "encoder_dir": str(audio_encoder),
            "level": "embedding",
            "modality": "audio",
        },
    )
    run = train(
        "dqn", store, 60, 0, tmp_path / "run", **{**TINY_DQN, "frontend": "raw", "q_head": "free"}
    )
    speech = tmp_path / "speech.wav"
    soundfile.write(speech, tone(1.5, 16000), 16000)
    result = run_cli("stream", "--run", run, "--encoder", visual_encoder, "--audio", speech)
    _fails(result, str(visual_encoder))
