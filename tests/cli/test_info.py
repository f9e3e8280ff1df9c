"""``avemotion info``: human and JSON summaries, and a clear error on a bad path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from avemotion import FeatureStore
from avemotion.cli import main


def test_info_json(synthetic: FeatureStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(synthetic.path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (
        summary["corpus"] == "synthetic"
        and summary["n_clips"] == synthetic.n_clips
        and summary["dim"] == 256
    )
    assert sum(summary["classes"].values()) == synthetic.n_clips


def test_info_text(synthetic: FeatureStore, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(synthetic.path)]) == 0
    out = capsys.readouterr().out
    assert "synthetic" in out and "S01" in out and "angry=80" in out


def test_info_bad_store_names_the_path(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "avemotion", "info", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert str(tmp_path / "nope") in result.stderr and "meta.json" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_info_takes_features_as_the_other_commands_do(
    synthetic: FeatureStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["info", "--features", str(synthetic.path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["path"] == str(synthetic.path)
    assert main(["info", str(synthetic.path), "--features", str(synthetic.path)]) == 2
    assert "give it once" in capsys.readouterr().err
