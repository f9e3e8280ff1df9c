"""The shared models and data folders beside the project are found one way."""

from __future__ import annotations

from pathlib import Path

import pytest

from avemotion.encoders.mini_xception import default_weights_path
from avemotion.shared import shared_data_root, shared_folder, shared_models_root


def test_the_environment_variable_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVEMOTION_SHARED_DATA", str(tmp_path / "d"))
    monkeypatch.setenv("AVEMOTION_SHARED_MODELS", str(tmp_path / "m"))
    assert shared_data_root() == tmp_path / "d"
    assert shared_models_root() == tmp_path / "m"
    assert default_weights_path() == tmp_path / "m" / "fer2013-mini-xception" / "emotion_model.hdf5"


def test_beside_the_working_directory_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AVEMOTION_SHARED_DATA", raising=False)
    work = tmp_path / "project"
    work.mkdir()
    monkeypatch.chdir(work)
    (tmp_path / "shared" / "data").mkdir(parents=True)
    assert shared_folder("data", "AVEMOTION_SHARED_DATA") == tmp_path / "shared" / "data"
    # absent beside the working directory: the repository's when it exists, else the
    # working directory's (a place the user can act on)
    other = shared_folder("nothing-here", "AVEMOTION_SHARED_NOTHING")
    assert other == tmp_path / "shared" / "nothing-here"
