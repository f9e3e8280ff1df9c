"""Our DQN's stopping rule tuned once after training for the harmonic mean on the
training speakers: a shrinkage α and a wait bias δ (the derivation: docs/agents.md)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from avemotion.agents.dqn.config import DQNConfig
from avemotion.agents.dqn.networks import StoppingQNetwork, make_q_network
from avemotion.agents.dqn.posterior_input import AgentData, transplant
from avemotion.envs.core import FrameSource, ObservationLayout
from avemotion.metrics import harmonic_mean
from avemotion.store import FeatureStore

CANDIDATES = 201
"""Number of bias values tried (quantiles of the observed margins, plus 0)."""
SHRINKS = (0.0, 0.25, 0.5, 0.75, 1.0)
"""Shrinkages of the learnt wait value tried."""
SMOOTHING = 10
"""Half-width of the window, in sweep points (0.5 % of the margins' quantile levels each),
over which the HM is averaged before the best bias is picked."""


def step_observations(store: FeatureStore, layout: Any) -> np.ndarray:
    """The env's observation of every step of every clip of ``store``, clips in store order
    (the envs' own table, :class:`~avemotion.envs.core.FrameSource`)."""
    table = FrameSource(store, layout, preload=True).obs_table
    return table[np.concatenate([o + np.arange(n) for o, n in zip(store.offsets, store.lengths)])]


def stop_parts(network: torch.nn.Module, obs: np.ndarray) -> dict[str, np.ndarray]:
    """Per step, before shrinkage and bias: the learnt wait value, the learnt share of a
    correct answer's reward, the posterior's maximum and its class (see
    :meth:`~avemotion.agents.dqn.networks.StoppingQNetwork.stop_parts`)."""
    # the training network may sit on a GPU (a network without parameters: the CPU)
    tensor = next(iter([*network.parameters(), *network.buffers()]), None)
    device = tensor.device if tensor is not None else torch.device("cpu")
    with torch.no_grad():
        wait, share, p = (v.cpu() for v in network.stop_parts(torch.from_numpy(obs).to(device)))
    p = p.numpy()
    return {
        "wait": wait.numpy()[:, 0],
        "share": share.numpy()[:, 0],
        "top": p.max(axis=1),
        "predicted": p.argmax(axis=1),
    }


def shrunk_margins(
    network: torch.nn.Module, parts: dict[str, np.ndarray], shrink: float | None = None
) -> tuple[np.ndarray, tuple[float, float]]:
    """``(1 − α) · wait + α · mean_wait − best`` (without the bias) from :func:`stop_parts`,
    where ``best`` is the value of the best class, its learnt reward share shrunk the same
    way, and ``(mean_wait, mean_share)``. ``α`` is ``shrink`` (the means then over the
    steps of ``parts``), or the network's own with its own means."""
    if shrink is None:
        shrink = float(network.wait_shrink)
        share_shrink = float(network.correct_shrink)
        means = (float(network.wait_mean), float(network.correct_mean))
    else:
        share_shrink = shrink if network.correct is not None else 0.0
        means = (float(parts["wait"].mean()), float(parts["share"].mean()))
    wait = (1 - shrink) * parts["wait"] + shrink * means[0]
    share = (1 - share_shrink) * parts["share"] + share_shrink * means[1]
    correct, wrong = (float(v) for v in network.rewards)
    return wait - (wrong + (correct - wrong) * share * parts["top"]), means


def stop_margins(
    network: torch.nn.Module, obs: np.ndarray, shrink: float | None = None
) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """:func:`shrunk_margins` of the steps ``obs``, with the best class of each."""
    parts = stop_parts(network, obs)
    margin, means = shrunk_margins(network, parts, shrink)
    return margin, parts["predicted"], means


def bias_sweep(
    network: torch.nn.Module,
    store: FeatureStore,
    layout: Any,
    levels: np.ndarray | None = None,
    shrink: float | None = None,
) -> list[dict[str, float]]:
    """Accuracy, earliness and HM on ``store`` of the network's greedy policy at wait
    biases spread over the quantiles of its margins (plus 0), sorted by bias. With
    ``levels``, exactly the biases at those quantile levels (each point then has its
    ``level``, so that sweeps of several stores can be pooled level by level). ``shrink``
    as in :func:`stop_margins`."""
    margin, predicted, _ = stop_margins(network, step_observations(store, layout), shrink)
    return margin_sweep(margin, predicted, store, levels)


def margin_sweep(
    margin: np.ndarray, predicted: np.ndarray, store: FeatureStore, levels: np.ndarray | None
) -> list[dict[str, float]]:
    """:func:`bias_sweep` from the margins and best classes of ``store``'s steps."""
    lengths, labels = store.lengths, store.labels
    # The first stop at bias δ is where the running minimum of the margin reaches δ.
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    running_min = np.concatenate(
        [np.minimum.accumulate(margin[s : s + n]) for s, n in zip(offsets, lengths)]
    )
    if levels is None:
        candidates = np.unique(
            np.concatenate([[0.0], np.quantile(running_min, np.linspace(0, 1, CANDIDATES))])
        )
    else:
        candidates = np.quantile(running_min, levels)
    sweep = []
    for i, bias in enumerate(candidates):
        # steps observed = steps still waiting (running minimum ≥ δ: argmax ties go to wait) + 1
        waiting = np.add.reduceat((running_min >= bias).astype(np.int64), offsets)
        steps = np.minimum(waiting + 1, lengths)
        accuracy = float(np.mean(predicted[offsets + steps - 1] == labels))
        earliness = float(np.mean(steps / lengths))
        sweep.append(
            {
                "parameter": float(bias),
                "accuracy": accuracy,
                "earliness": earliness,
                "harmonic_mean": harmonic_mean(accuracy, earliness),
                **({"level": float(levels[i])} if levels is not None else {}),
            }
        )
    return sweep


def tune_wait_bias(
    network: torch.nn.Module,
    store: FeatureStore,
    layout: Any,
    earliness_budget: float | None = None,
) -> tuple[float, float, tuple[float, float], dict[str, Any]]:
    """The shrinkage and wait bias with the best :func:`sweep_scores` on ``store`` (the
    smoothed harmonic mean, or with ``earliness_budget`` the best accuracy at a mean
    earliness within it; see the module docstring): ``(bias, shrink, (mean_wait,
    mean_share), reached)`` with the accuracy, earliness and HM the pair reaches there, and
    ``flat``: whether every pair scored the same (nothing tuned: the learnt policy kept)."""
    best: tuple[float, float, float, tuple[float, float], dict[str, float]] = (
        -np.inf,
        0.0,
        0.0,
        (0.0, 0.0),
        {},
    )
    parts = stop_parts(network, step_observations(store, layout))  # once for every α
    seen: list[float] = []
    for shrink in SHRINKS:
        margin, mean = shrunk_margins(network, parts, shrink)
        sweep = margin_sweep(margin, parts["predicted"], store, None)
        scores = sweep_scores(sweep, earliness_budget)
        seen += [float(scores.min()), float(scores.max())]
        for point, score in zip(sweep, scores):
            bias = point["parameter"]
            closer = shrink == best[2] and abs(bias) < abs(best[1])
            if score > best[0] + 1e-12 or (abs(score - best[0]) <= 1e-12 and closer):
                reached = {
                    "accuracy": point["accuracy"],
                    "earliness": point["earliness"],
                    "hm": point["harmonic_mean"],
                }
                best = (score, bias, shrink, mean, reached)
    return best[1], best[2], best[3], {**best[4], "flat": max(seen) - min(seen) <= 1e-12}


def sweep_scores(sweep: list[dict[str, float]], earliness_budget: float | None) -> np.ndarray:
    """What the tuning maximises at each point of a sweep (sorted by bias): the HM averaged
    over the :data:`SMOOTHING` points on either side (the edge points repeated), or with an
    earliness budget the accuracy within it (over budget: ranked below every value within
    it, earliest first)."""
    if earliness_budget is not None:
        return np.array(
            [
                p["accuracy"] if p["earliness"] <= earliness_budget else -1.0 - p["earliness"]
                for p in sweep
            ]
        )
    hm = np.pad([p["harmonic_mean"] for p in sweep], SMOOTHING, mode="edge")
    return np.convolve(hm, np.full(2 * SMOOTHING + 1, 1 / (2 * SMOOTHING + 1)), mode="valid")


def final_model(
    online: torch.nn.Module,
    config: DQNConfig,
    envs: Any,
    data: AgentData,
    tune: bool = True,
) -> torch.nn.Module:
    """The network to save, its stopping rule tuned when ``tune`` (once, after training).
    With cross-fitting: the posterior model fitted on every training speaker as its front
    end, with ``online``'s learnt layers; otherwise a copy of ``online``."""
    full = data.all_speakers
    if data.crossfit:
        n_actions = envs.single_action_space.n
        layout = ObservationLayout(full, config.obs_mode, envs.layout.max_length)
        model = transplant(online, make_q_network(config, layout.size, n_actions, full.dim))
        data.fit_final(model.frontend, layout)
    else:
        model = copy.deepcopy(online)
    if tune and config.tune_wait_bias and isinstance(model, StoppingQNetwork):
        bias, shrink, (mean, share), reached = tune_wait_bias(
            online, data.store, envs.layout, config.earliness_budget
        )
        model.wait_bias.fill_(bias)
        model.wait_shrink.fill_(shrink)
        model.wait_mean.fill_(mean)
        model.correct_shrink.fill_(shrink if model.correct is not None else 0.0)
        model.correct_mean.fill_(share)
        flat = bool(reached.pop("flat", False))  # recorded as "untuned", printed by the runner
        data.tuned = {
            "wait_bias": bias,
            "wait_shrink": shrink,
            "wait_mean": mean,
            "correct_mean": share,
            **{f"train_{k}": v for k, v in reached.items()},
            "untuned": flat,
        }
    return model
