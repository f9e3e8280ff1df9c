"""Shared fixtures: one torch thread, a private cache dir, and the real data beside the repo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("AVEMOTION_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> None:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; skips the test with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"real data folder {SHARED_DATA} is absent (set AVEMOTION_SHARED_DATA to point at it)"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def ravdess_root(shared_data: Path) -> Path:
    root = shared_data / "ravdess-speech-16k"
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    return root


@pytest.fixture(scope="session")
def mead_root(shared_data: Path) -> Path:
    root = shared_data / "mead-video"
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    return root


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory):
    """The synthetic default corpus, generated once per test session."""
    from avemotion.envs.synthetic import synthetic_store

    return synthetic_store(tmp_path_factory.mktemp("cache") / "synthetic")
