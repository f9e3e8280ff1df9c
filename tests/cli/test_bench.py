"""``avemotion bench`` refuses an option the chosen benchmark would not read."""

from __future__ import annotations

import pytest

from avemotion.cli import main


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["bench", "env", "--steps", "10"], "--steps"),
        (["bench", "env", "--seed", "3"], "--seed"),
        (["bench", "fuzz", "--quick"], "--quick"),
        (["bench", "agents", "--plot", "x.png"], "--plot"),
        (["bench", "pipeline", "--features", "STORE"], "--features"),
        (["bench", "faces", "--steps", "5"], "--steps"),
    ],
)
def test_an_option_the_benchmark_ignores_is_refused(argv: list[str], flag: str, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"avemotion bench: error: {flag}: bench {argv[1]}")


def test_json_is_accepted_by_every_benchmark(capsys) -> None:
    assert main(["bench", "fuzz", "--steps", "200", "--json"]) == 0
    assert '"violations": 0' in capsys.readouterr().out.splitlines()[-1]
