"""The CI rule of tests/conftest.py: under ``CI=true`` an unlisted skip fails the run, a
listed one stays a skip; and :func:`require_extra` skips only for a package that is not
installed, while an installed package whose own imports break fails."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

TESTS = Path(__file__).resolve().parents[1]

CASES = """
import pytest

def test_passes():
    pass

def test_skipped():
    pytest.skip("no data here")

def test_allowed():
    pytest.skip("running as root")

@pytest.mark.parametrize("x", [1, 2])
def test_allowed_cases(x):
    pytest.skip("parametrized")

@pytest.fixture
def absent():
    pytest.skip("fixture says the folder is absent")

def test_skipped_in_setup(absent):
    pass

@pytest.mark.xfail(reason="known bug")
def test_xfail():
    assert False
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A test folder with the real conftest, an allow-list of its own, and the extras helper."""
    conftest = (TESTS / "conftest.py").read_text()
    allowed = (
        '\nSKIP_ALLOWED.clear()\nSKIP_ALLOWED.update({"test_cases.py::test_allowed": "root",'
        ' "test_cases.py::test_allowed_cases": "cases"})\n'
    )
    pytester.makeconftest(conftest + allowed)
    pytester.makepyfile(optional_extras=(TESTS / "optional_extras.py").read_text())
    pytester.makepyfile(test_cases=CASES)
    pytester.syspathinsert()  # optional_extras importable, as tests/ is in the real suite
    return pytester


def test_without_ci_skips_stay_skips(project: pytest.Pytester, monkeypatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    result = project.runpytest("-p", "no:cacheprovider", "test_cases.py")
    result.assert_outcomes(passed=1, skipped=5, xfailed=1)


def test_under_ci_an_unlisted_skip_fails(project: pytest.Pytester, monkeypatch) -> None:
    monkeypatch.setenv("CI", "true")
    result = project.runpytest("-p", "no:cacheprovider", "test_cases.py")
    result.assert_outcomes(passed=1, skipped=3, failed=1, errors=1, xfailed=1)
    result.stdout.fnmatch_lines(
        [
            "*CI=true: skipped (no data here), but a skip in CI is a failure unless*",
            "*CI=true: skipped (fixture says the folder is absent)*",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_under_ci_a_missing_extra_fails_collection(project: pytest.Pytester, monkeypatch) -> None:
    project.makepyfile(
        test_extra="""
from optional_extras import require_extra

nothing = require_extra("no_such_package_avemotion.sub", "nothing")

def test_uses_it():
    pass
"""
    )
    monkeypatch.delenv("CI", raising=False)
    result = project.runpytest("-p", "no:cacheprovider", "-rs", "test_extra.py")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*the nothing extra is not installed*"])
    monkeypatch.setenv("CI", "true")
    result = project.runpytest("-p", "no:cacheprovider", "test_extra.py")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*CI=true: skipped (*the nothing extra is not installed*"])


def test_a_broken_transitive_import_fails_even_without_ci(
    project: pytest.Pytester, monkeypatch
) -> None:
    """An installed package whose own import fails (a dependency missing from the extra)
    is an error, where ``pytest.importorskip`` would have skipped."""
    package = project.mkpydir("brokenextra")
    (package / "__init__.py").write_text("import a_dependency_nobody_installed\n")
    project.makepyfile(
        test_broken="""
from optional_extras import require_extra

broken = require_extra("brokenextra", "broken")

def test_uses_it():
    pass
""",
        test_importorskip="""
import pytest

broken = pytest.importorskip("brokenextra")

def test_uses_it():
    pass
""",
    )
    monkeypatch.delenv("CI", raising=False)
    result = project.runpytest("-p", "no:cacheprovider", "test_broken.py")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*No module named 'a_dependency_nobody_installed'*"])
    # what the helper replaces: importorskip turns the same breakage into a silent skip
    result = project.runpytest("-p", "no:cacheprovider", "test_importorskip.py")
    result.assert_outcomes(skipped=1)
