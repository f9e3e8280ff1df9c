"""The code blocks of the README and of every ``docs/*.md`` page do what they show.

Python blocks run as written (blocks for an absent extra are skipped; an installed extra whose
import breaks fails). Shell blocks are checked, not run (they read real data and take
minutes): every ``avemotion`` subcommand and option they use exists, and so does every
``experiments/`` script and ``python -m`` module. A block that is neither says ``text`` (or ``yaml`` for a config file).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shlex
from pathlib import Path

import pytest
from optional_extras import require_extra

from avemotion.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```", flags=re.S | re.M)
SHELL = {"bash", "sh", "shell"}
LANGUAGES = {"python", "text", "yaml", *SHELL}
"""Fence labels: python runs, shell is checked, text and yaml (a config file) are shown only."""
EXTRAS = {"torchrl": "torchrl", "tianshou": "tianshou", "ray": "ray", "aeon": "aeon"}
SEPARATORS = {"&&", "||", ";", "|"}


def blocks(language: set[str]) -> list[tuple[str, str]]:
    """(``page:line``, body) of every fenced block whose language is in ``language``."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for match in FENCE.finditer(text):
            if match.group(1).strip() in language:
                line = text.count("\n", 0, match.start()) + 1
                found.append((f"{page.relative_to(ROOT)}:{line}", match.group(2)))
    return found


PYTHON = blocks({"python"})
SHELL_BLOCKS = blocks(SHELL)


def test_every_block_says_its_language() -> None:
    unlabelled = [
        f"{page.relative_to(ROOT)}:{page.read_text().count(chr(10), 0, m.start()) + 1}"
        for page in PAGES
        for m in FENCE.finditer(page.read_text())
        if m.group(1).strip() not in LANGUAGES
    ]
    assert unlabelled == [], f"say python, bash or text (not for running): {unlabelled}"


def test_the_readme_has_a_python_example_and_the_docs_more() -> None:
    assert any(where.startswith("README.md:") for where, _ in PYTHON)
    assert len(PYTHON) >= 5


@pytest.mark.parametrize("where,block", PYTHON, ids=[where for where, _ in PYTHON])
def test_python_block_runs(where: str, block: str) -> None:
    for word, module in EXTRAS.items():
        if re.search(rf"\b(import|from) {word}\b|avemotion\.integrations\.{word}\b", block):
            require_extra(module, word)  # skips only if absent; a broken import fails
    exec(compile(block, where, "exec"), {"__name__": "readme"})


def commands(block: str) -> list[list[str]]:
    """The block's commands as token lists: continuations joined, comments dropped, split
    at ``&&``, ``;`` and pipes."""
    found: list[list[str]] = []
    for line in block.replace("\\\n", " ").splitlines():
        current: list[str] = []
        for token in shlex.split(line, comments=True):
            bare = token.rstrip(";")
            if bare:
                current.append(bare)
            if token in SEPARATORS or token.endswith(";"):
                found.append([t for t in current if t not in SEPARATORS])
                current = []
        found.append(current)
    return [command for command in found if command]


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def problems(command: list[str], cli: dict[str, argparse.ArgumentParser]) -> list[str]:
    """What in one shell command names no existing subcommand, option, script or module."""
    found = []
    for i, token in enumerate(command):
        following = command[i + 1] if i + 1 < len(command) else ""
        if token == "avemotion" or token.endswith("/avemotion"):
            parser = cli.get(following)
            if parser is None:
                found.append(f"unknown subcommand avemotion {following!r}")
                continue
            for word in command[i + 2 :]:
                option = word.strip("[]").split("=")[0]
                if option.startswith("--") and option not in parser._option_string_actions:
                    found.append(f"avemotion {following}: unknown option {option}")
        elif re.fullmatch(r"experiments/\w+\.py", token) and not (ROOT / token).is_file():
            found.append(f"no script {token}")
        elif token == "-m" and following.startswith("avemotion"):
            if importlib.util.find_spec(following) is None:
                found.append(f"no module {following}")
    return found


@pytest.mark.parametrize("where,block", SHELL_BLOCKS, ids=[where for where, _ in SHELL_BLOCKS])
def test_shell_block_names_what_exists(where: str, block: str) -> None:
    cli = subcommands()
    assert [p for command in commands(block) for p in problems(command, cli)] == []


def test_the_shell_check_can_fail() -> None:
    cli = subcommands()
    broken = "avemotion trian --steps 5\navemotion train --stepz 5 && python experiments/nope.py"
    found = [p for command in commands(broken) for p in problems(command, cli)]
    assert found == [
        "unknown subcommand avemotion 'trian'",
        "avemotion train: unknown option --stepz",
        "no script experiments/nope.py",
    ]


# Pages other branches add; empty this set when they are merged.
PENDING: set[str] = set()


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def broken_links(page: Path) -> list[str]:
    """Relative links of ``page`` whose file or heading does not exist."""
    broken = []
    for link in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if re.match(r"[a-z]+:", link):
            continue
        path, _, heading = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            if target.name not in PENDING:
                broken.append(link)
        elif heading and target.suffix == ".md":
            headings = re.findall(r"^#+ (.*)$", target.read_text(), flags=re.M)
            if heading not in {anchor(h) for h in headings}:
                broken.append(link)
    return broken


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_links_resolve(page: Path) -> None:
    assert broken_links(page) == []


def test_the_link_check_can_fail(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(
        "# Top part\n[x](b.md) [y](#top-part) [z](#nowhere) [w](a.md#top-part)\n"
    )
    assert broken_links(tmp_path / "a.md") == ["b.md", "#nowhere"]


def readme_commands() -> tuple[str, str]:
    """The README's first two shell blocks: the install command and the test command."""
    first, second = [
        block.strip() for where, block in SHELL_BLOCKS if where.startswith("README.md:")
    ][:2]
    return first, second


def test_ci_runs_the_readme_install_and_test_commands() -> None:
    install, test = readme_commands()
    script = (ROOT / ".ci" / "run").read_text()
    extras = re.search(r'-e "(\.\[[^\]]+\])"', install)
    assert extras and f'install --quiet -e "{extras.group(1)}"' in script
    # the test command, with the venv at .venv as the README makes it
    assert script.rstrip().splitlines()[-1] == test
    assert "export CI=true" in script
