"""What a training run is asked for, checked before anything is written.

:func:`check_request` refuses a bad agent, budget, seed or posterior name;
:func:`agent_configuration` turns the ``--set`` options into the agent's config and
refuses those the agent would not read; :func:`check_data` refuses options the training
store cannot honour. Each refusal is one line naming the option, raised before the run
directory is touched.
"""

from __future__ import annotations

import dataclasses
import inspect
import numbers
from collections.abc import Collection
from typing import Any

from avemotion.agents.dqn.config import DQNConfig, unread_fields
from avemotion.agents.sb3 import SB3_AGENTS
from avemotion.envs.core import OBS_MODES, RewardSpec
from avemotion.folds import make_folds
from avemotion.posterior import POSTERIOR_MODELS
from avemotion.posterior.crossfit import CROSS_FIT_FOLDS
from avemotion.posterior.models import StoreLogits
from avemotion.store import FeatureStore

AGENTS = ("dqn", "dqn-recurrent", *SB3_AGENTS)
SB3_OPTIONS = (
    "obs_mode",
    "reward",
    "earliness_weight",
    "wait_cost",
    "n_envs",
    "log_every",
    "progress",
)
"""Run options of an SB3 agent that are ours, not its class's constructor arguments."""
SB3_SET_BY_US = ("policy", "env", "seed", "device", "verbose")
"""Constructor arguments of an SB3 class that :func:`~avemotion.agents.sb3.train_sb3` sets."""
RECURRENT_DEFAULTS = {
    "recurrent": "gru",
    "obs_mode": "frame",
    "hidden": (128, 128),
    "q_head": "free",
}
"""What ``dqn-recurrent`` changes from our DQN's defaults."""


def check_request(agent: str, steps: int, seed: int, posterior: str) -> None:
    """Refuse an unknown agent, a step budget below 1, a negative seed or an unknown
    posterior model."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed: expected an integer >= 0, got {seed!r}")
    if agent not in AGENTS:
        raise ValueError(f"agent: expected one of {list(AGENTS)}, got {agent!r}")
    if int(steps) < 1:
        raise ValueError(f"steps: expected a positive integer, got {steps}")
    check_posterior_name(posterior)


def check_posterior_name(posterior: str) -> None:
    """Refuse a posterior model name that is neither ``auto`` nor a known model."""
    if posterior != "auto" and posterior not in POSTERIOR_MODELS:
        raise ValueError(
            f"posterior: expected 'auto' or one of {sorted(POSTERIOR_MODELS)}, got {posterior!r}"
        )


def check_data(
    store: FeatureStore, posterior: str, agent_kwargs: dict[str, Any], asked: Collection[str]
) -> None:
    """Refuse what the training speakers of ``store`` cannot honour: the ``store-logits``
    posterior on a store without posterior columns, and a cross-fitting fold count (asked
    for in ``asked``) that the folds of :func:`~avemotion.folds.make_folds` would silently
    make fewer (more speaker folds than speakers). Folds the store cannot give (a class
    of one clip) are refused here too, before the run directory is touched."""
    if posterior == StoreLogits.name:
        StoreLogits().fit(store)
    folds = agent_kwargs.get("frontend_folds", CROSS_FIT_FOLDS)
    if isinstance(folds, int) and not isinstance(folds, bool) and folds >= 0:
        made = make_folds(store, folds)
        if "frontend_folds" in asked and 0 < len(made) < folds and made.kind == "speaker":
            raise ValueError(
                f"frontend_folds: {folds} folds of {len(store.speaker_set)} training speakers "
                f"would be {len(made)} speaker folds ({made.reason}); expected at most "
                f"{len(made)} (0: one fold per speaker)"
            )


def agent_configuration(
    agent: str,
    agent_kwargs: dict[str, Any],
    resume: bool,
    asked: Collection[str] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """``(DQNConfig or None, the run's agent_config)`` from the ``--set`` options, each
    refused in one line when the agent does not take it. ``asked`` are the options the
    user gave (default: every key of ``agent_kwargs``; a resumed run's saved options are
    not asked for): one that our DQN's config would not read is refused."""
    if agent.startswith("dqn"):
        defaults = RECURRENT_DEFAULTS if agent == "dqn-recurrent" else {}
        config = DQNConfig.from_dict({**defaults, **agent_kwargs})
        unread = unread_fields(config)
        ignored = sorted(set(agent_kwargs if asked is None else asked) & set(unread))
        if ignored:
            raise ValueError(f"{ignored[0]}: not read by this {agent} ({unread[ignored[0]]})")
        return config, dataclasses.asdict(config)
    if resume:
        raise ValueError(f"resume: only our DQN can resume; {agent} runs start over")
    from avemotion.agents.sb3 import algorithm_class

    algorithm_kwargs = {k: v for k, v in agent_kwargs.items() if k not in SB3_OPTIONS}
    accepted = set(inspect.signature(algorithm_class(agent)).parameters) - set(SB3_SET_BY_US)
    refused = sorted(set(algorithm_kwargs) - accepted)
    if refused:
        raise ValueError(
            f"{agent}: unknown option {refused[0]!r} (neither one of {list(SB3_OPTIONS)} "
            f"nor a constructor argument of {algorithm_class(agent).__name__})"
        )
    known = {k: v for k, v in agent_kwargs.items() if k in SB3_OPTIONS}
    _check_sb3_options(known)
    return None, {"obs_mode": "frame+mean", **known, "algorithm_kwargs": algorithm_kwargs}


def _check_sb3_options(options: dict[str, Any]) -> None:
    """Refuse, in one line naming it, an SB3 run option out of its range, as
    :class:`~avemotion.agents.dqn.config.DQNConfig` refuses ours (the env itself takes any
    finite reward values: ``avemotion bench fuzz`` draws negative wait costs too)."""
    if options.get("obs_mode", "frame+mean") not in OBS_MODES:
        raise ValueError(
            f"obs_mode: expected one of {list(OBS_MODES)}, got {options['obs_mode']!r}"
        )
    for name in ("n_envs", "log_every"):
        value = options.get(name, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
    wait_cost = options.get("wait_cost")
    if wait_cost is not None and not (isinstance(wait_cost, (int, float)) and wait_cost >= 0):
        raise ValueError(f"wait_cost: expected a number >= 0, got {wait_cost!r}")
    RewardSpec.preset(
        options.get("reward", "earliness"),
        wait_cost=options.get("wait_cost"),
        earliness_weight=options.get("earliness_weight"),
    )
