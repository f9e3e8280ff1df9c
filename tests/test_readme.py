"""Every Python block of the README runs as written (blocks for an absent extra are skipped;
an installed extra whose import breaks fails)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from optional_extras import require_extra

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
EXTRAS = {"torchrl": "torchrl", "tianshou": "tianshou", "ray": "ray", "aeon": "aeon"}


def test_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_block_runs(block: str) -> None:
    for word, module in EXTRAS.items():
        if re.search(rf"\b(import|from) {word}\b|avemotion\.integrations\.{word}\b", block):
            require_extra(module, word)  # skips only if absent; a broken import fails
    exec(compile(block, str(README), "exec"), {"__name__": "readme"})
