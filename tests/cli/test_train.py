"""``avemotion train``'s ``--set`` parsing."""

from __future__ import annotations

import pytest

from avemotion.cli import main
from avemotion.cli.train import parse_options


def test_set_values_are_json_or_bare_words() -> None:
    assert parse_options(["hidden=[8, 8]", "lr=0.5", "cell=gru", "double=false"]) == {
        "hidden": [8, 8],
        "lr": 0.5,
        "cell": "gru",
        "double": False,
    }


@pytest.mark.parametrize("pair", ["seed=3", "device=cpu", 'exclude_speakers=["S01"]'])
def test_set_refuses_what_has_a_flag_of_its_own(pair: str, capsys) -> None:
    assert main(["train", "--steps", "10", "--set", pair]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and f"--set {pair.split('=')[0]}: give it as --" in error[0]


def test_set_refuses_a_pair_without_a_value() -> None:
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        parse_options(["hidden"])
