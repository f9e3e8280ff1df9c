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
        (
            ["--agents", "dqn", "--num-cpus", "1", "--agent-kwargs", '{"bogus": 1}'],
            "agent_kwargs: dqn config: unknown field 'bogus'",
        ),
        (
            ["--agents", "dqn,sb3-ppo", "--agent-kwargs", '{"frontend": "raw", "q_head": "free"}'],
            "agent_kwargs: sb3-ppo: unknown option 'frontend'",
        ),
        (["--agents", "dqn", "--cpus-per-trial", "0"], "cpus_per_trial: expected an integer >= 1"),
        (["--agents", "dqn", "--num-cpus", "0"], "num_cpus: expected an integer >= 1"),
        (["--agents", "dqn", "--seeds", "0,0"], "seeds: each may appear once, got 0 again"),
        (["--agents", "dqn,dqn"], "agents: each may appear once, got 'dqn' again"),
        (["--agents", "dqn", "--address", "auto", "--num-cpus", "2"], "num_cpus: sizes a local"),
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
    err = capsys.readouterr().err
    assert err.startswith("avemotion sweep: error: ") and err.count("\n") == 1, err
    assert message in err
    assert not ray.is_initialized()
    assert not (tmp_path / "out").exists()
