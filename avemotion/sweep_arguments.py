"""A sweep's input (:func:`~avemotion.sweep.run_sweep`), checked before anything is written
to its output directory or Ray starts: each refusal is one line naming the field."""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Sequence
from typing import Any


def check_arguments(
    agents: Sequence[str],
    seeds: Sequence[int],
    steps: int,
    cpus_per_trial: int,
    num_cpus: int | None,
    address: str | None,
) -> None:
    """Raise :class:`ValueError`, in one line naming the field, for unknown, no or repeated
    agents, no or repeated seeds, no training steps, or CPU counts no trial could run with."""
    from avemotion.training.train import AGENTS

    unknown = sorted(set(agents) - set(AGENTS))
    if unknown or not agents:
        raise ValueError(f"agents: expected names from {list(AGENTS)}, got {list(agents)}")
    if not seeds:
        raise ValueError("seeds: expected at least one seed")
    negative = [s for s in seeds if int(s) < 0]
    if negative:  # as every trial's train would refuse it, after Ray started
        raise ValueError(f"seeds: expected integers >= 0, got {negative[0]}")
    # A repeat plans two trials with one id, racing on the same runs/<trial_id> directory.
    for name, values in (("agents", list(agents)), ("seeds", [int(s) for s in seeds])):
        repeated = [value for value, count in Counter(values).items() if count > 1]
        if repeated:
            raise ValueError(f"{name}: each may appear once, got {repeated[0]!r} again in {values}")
    if int(steps) < 1:
        raise ValueError(f"steps: expected a positive integer, got {steps}")
    for name, value in (("cpus_per_trial", cpus_per_trial), ("num_cpus", num_cpus)):
        if name == "num_cpus" and value is None:  # None: every CPU of this machine
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
    if address and num_cpus is not None:  # a running cluster has its CPUs already
        raise ValueError(
            f"num_cpus: sizes a local Ray only, not the cluster at address {address!r}; drop one"
        )
    if num_cpus is not None and cpus_per_trial > num_cpus:  # no trial could ever be scheduled
        raise ValueError(
            f"cpus_per_trial: {cpus_per_trial} is more than the local Ray's num_cpus={num_cpus}"
        )


_TRIAL_SETS = ("agent", "store", "steps", "seed", "out", "exclude_speakers", "overwrite", "resume")
"""Arguments of :func:`~avemotion.training.train.train` that each trial sets itself (a trial
starts clean: the sweep resumes by its own ``resume``), so no agent option may set them."""


def check_agent_kwargs(
    agents: Sequence[str], agent_kwargs: dict[str, Any], cpus_per_trial: int
) -> None:
    """Refuse, as every trial's ``train`` would after Ray started, an option that one of the
    agents does not take: one line naming it, before anything is written."""
    from avemotion.device import DEVICE_CHOICES
    from avemotion.training.train import agent_configuration, check_posterior_name, train

    options = dict(agent_kwargs)
    taken = [name for name in _TRIAL_SETS if name in options]
    if taken:
        raise ValueError(f"agent_kwargs: {taken[0]!r} is set by the sweep for each trial")
    device = options.get("device", "auto")
    if device not in DEVICE_CHOICES:
        raise ValueError(
            f"agent_kwargs: device: expected one of {list(DEVICE_CHOICES)}, got {device!r}"
        )
    try:
        check_posterior_name(options.get("posterior", "auto"))
    except (ValueError, TypeError) as error:  # TypeError: an unhashable name
        raise ValueError(f"agent_kwargs: {error}") from None
    # train takes its own arguments and progress; the rest configure the agent.
    own = [n for n, p in inspect.signature(train).parameters.items() if p.kind != p.VAR_KEYWORD]
    options = {k: v for k, v in options.items() if k not in (*own, "progress")}
    for agent in dict.fromkeys(agents):
        mine = dict(options)
        if agent.startswith("dqn"):  # as run_trial gives our DQN its CPUs' threads
            mine.setdefault("torch_threads", int(cpus_per_trial))
        try:
            agent_configuration(agent, mine, False)
        except (ValueError, TypeError) as error:
            where = "" if agent in str(error) else f"{agent}: "
            raise ValueError(f"agent_kwargs: {where}{error}") from None
