"""``avemotion sweep``: argument errors are one clear line; the command is listed."""

from __future__ import annotations

import pytest

from avemotion.cli import main


def test_sweep_is_a_command_with_the_documented_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    text = capsys.readouterr().out
    for option in (
        "--features",
        "--agents",
        "--seeds",
        "--folds",
        "--steps",
        "--out",
        "--address",
        "--resume",
    ):
        assert option in text


def test_bad_seeds_are_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["sweep", "--agents", "dqn", "--seeds", "0,x", "--steps", "10", "--out", "unused"])
    assert "expected comma-separated integers" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--agents", "dqn", "--folds", "speakers:S01;S99"], "folds: unknown speaker"),
        (["--agents", "no-such-agent"], "agents: expected names from"),
    ],
)
def test_bad_sweeps_fail_before_starting_ray(
    argv: list[str], message: str, synthetic, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    from optional_extras import require_extra

    require_extra("ray.tune", "ray")
    import ray

    common = ["--features", str(synthetic.path), "--steps", "10", "--out", str(tmp_path / "out")]
    assert main(["sweep", *common, *argv]) == 2
    assert message in capsys.readouterr().err
    assert not ray.is_initialized()
    assert not (tmp_path / "out").exists()
