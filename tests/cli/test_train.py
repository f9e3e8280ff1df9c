"""``avemotion train``'s ``--set`` parsing."""

from __future__ import annotations

import json

import pytest

from avemotion.cli import main
from avemotion.cli.train import parse_options


def test_set_values_are_json_or_bare_words() -> None:
    assert parse_options(["hidden=[8, 8]", "lr=0.5", "cell=gru", "double=false"]) == {
        "hidden": [8, 8],
        "lr": 0.5,
        "cell": "gru",
        "double": False,
    }


@pytest.mark.parametrize("pair", ["seed=3", "device=cpu", 'exclude_speakers=["S01"]'])
def test_set_refuses_what_has_a_flag_of_its_own(pair: str, capsys) -> None:
    assert main(["train", "--steps", "10", "--set", pair]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and f"--set {pair.split('=')[0]}: give it as --" in error[0]


def test_set_refuses_a_pair_without_a_value() -> None:
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        parse_options(["hidden"])


def test_help_names_every_posterior_model() -> None:
    from avemotion.cli.train import POSTERIOR_NAMES
    from avemotion.posterior import POSTERIOR_MODELS

    assert set(POSTERIOR_NAMES) == set(POSTERIOR_MODELS)


@pytest.mark.parametrize("no_eval", [False, True])
def test_train_evaluates_on_the_speakers_it_left_out(
    tiny_store, tmp_path, capsys, no_eval: bool
) -> None:
    argv = ["train", "--features", str(tiny_store.path), "--exclude-speakers", "P3"]
    argv += ["--steps", "100", "--out", str(tmp_path / "run"), "--set", "num_envs=4"]
    argv += ["learning_starts=20", "batch_size=16", "hidden=[8]"]
    assert main(argv + (["--no-eval"] if no_eval else [])) == 0
    out = capsys.readouterr().out
    held = [line for line in out.splitlines() if line.startswith("held-out speakers")]
    assert held == ([] if no_eval else ["held-out speakers P3, 12 clips:"])
    assert ("threshold" in out) is not no_eval


def test_resume_continues_on_the_recorded_store_and_speakers(tiny_store, tmp_path, capsys) -> None:
    """``--resume`` without ``--features`` continues on the run's own store and selection
    (not the synthetic default job), and evaluates on the speakers it left out."""
    out = tmp_path / "run"
    first = [
        "train", "--features", str(tiny_store.path), "--exclude-speakers", "P3", "--steps", "100",
        "--out", str(out), "--no-eval", "--set", "num_envs=4", "learning_starts=20", "hidden=[8]",
    ]  # fmt: skip
    assert main(first) == 0
    capsys.readouterr()
    assert main(["train", "--resume", "--steps", "150", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "held-out speakers P3," in printed
    config = json.loads((out / "config.json").read_text())
    assert config["steps"] == 150 and config["training"]["train_speakers"] == ["P1", "P2"]
