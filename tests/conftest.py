"""Shared fixtures (one torch thread, the real data beside the repo, the synthetic corpus)
and the CI rule: under ``CI=true``, where every extra and ``../shared`` are present, a
skipped test is a failure unless :data:`SKIP_ALLOWED` names it with a reason."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from avemotion.shared import shared_data_root

os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = shared_data_root()  # the package's own rule (avemotion.shared)

SKIP_ALLOWED: dict[str, str] = {}
"""Tests (a node id: a file, a test, or one parametrized case) that may skip under
``CI=true``, each with the reason it may."""


def in_ci() -> bool:
    """Whether ``CI`` is set to true (as GitHub Actions and most CI services set it)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def skip_allowed(nodeid: str) -> str | None:
    """The allow-list's reason for ``nodeid`` (a key matches itself, the tests under it and
    their parametrized cases), or None."""
    for key, reason in SKIP_ALLOWED.items():
        if nodeid == key or nodeid.startswith((f"{key}::", f"{key}[")):
            return reason
    return None


def _fail_unallowed_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    if not (in_ci() and report.skipped) or hasattr(report, "wasxfail"):
        return
    if skip_allowed(report.nodeid) is not None:
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    reason = reason.removeprefix("Skipped: ")
    report.outcome = "failed"
    report.longrepr = (
        f"CI=true: skipped ({reason}), but a skip in CI is a failure unless "
        f"tests/conftest.py SKIP_ALLOWED names {report.nodeid} with a reason"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # type: ignore[no-untyped-def]
    """Under ``CI=true``, turn a skip (in setup, call or teardown) into a failure."""
    report = yield
    _fail_unallowed_skip(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):  # type: ignore[no-untyped-def]
    """Under ``CI=true``, turn a module-level skip (a missing extra) into a collection error."""
    report = yield
    _fail_unallowed_skip(report)
    return report


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


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory):
    """A tiny feature store (:mod:`tiny_store`): 3 speakers, 3 classes, short clips."""
    from tiny_store import make_tiny_store

    return make_tiny_store(tmp_path_factory.mktemp("stores") / "tiny")


@pytest.fixture(scope="session")
def tiny_store_factory():
    """``make_tiny_store`` itself, for tests that need a store of another shape."""
    from tiny_store import make_tiny_store

    return make_tiny_store
