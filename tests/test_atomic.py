"""avemotion.atomic: a file appears complete under its final name, or not at all."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from avemotion.atomic import replace_atomic, save_figure_atomic, write_json_atomic  # noqa: E402


def test_json_and_a_failed_write(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    write_json_atomic(path, {"x": 1})
    assert path.read_text() == '{\n "x": 1\n}'
    with pytest.raises(RuntimeError), replace_atomic(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert path.read_text() == '{\n "x": 1\n}'  # the old file stays, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]  # no temporary left


def test_figure_in_the_format_its_suffix_names(tmp_path: Path) -> None:
    figure = plt.figure()
    png = save_figure_atomic(figure, tmp_path / "sub" / "f.png")
    svg = save_figure_atomic(figure, tmp_path / "sub" / "f.svg")
    plt.close(figure)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in svg.read_bytes()[:400]
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["f.png", "f.svg"]
