"""No import cycle inside the package, counting every import: module level, inside functions
(lazy) and under ``TYPE_CHECKING``. A cycle that only works because one side imports lazily
is still a tangle of responsibilities, so it counts too."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "avemotion"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, known: set[str], name: str | None = None) -> set[str]:
    """Package modules that ``path`` (module ``name``) imports anywhere in its body (a
    ``from a import b`` counts as ``a.b`` when that is a module, else as ``a``)."""
    name = name or module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {m for m in found if m in known and m != name}


def import_graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    known = {module_name(f) for f in files}
    return {module_name(f): imported_modules(f, known) for f in files}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_walker_sees_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from avemotion.encoders.train import TrainConfig\n"
        "def f():\n    from avemotion.encoders import crossfit\n    import avemotion.store\n"
    )
    known = {"avemotion.encoders.train", "avemotion.encoders.crossfit", "avemotion.store"}
    assert imported_modules(source, known, "avemotion.encoders.m") == known


def test_the_encoders_import_one_way() -> None:
    graph = import_graph()
    assert "avemotion.encoders.train_config" in graph["avemotion.encoders.loops"]
    assert "avemotion.encoders.train" not in graph["avemotion.encoders.loops"]
    assert "avemotion.encoders.train" not in graph["avemotion.encoders.crossfit"]
    assert "avemotion.encoders.crossfit" not in graph["avemotion.encoders.loops"]


def test_no_import_cycle_in_the_package() -> None:
    assert cycles(import_graph()) == []
