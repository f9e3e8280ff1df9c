"""Our DQN: Double DQN with a dueling head, action masking, n-step returns and a recurrent option.

Read it top to bottom like CleanRL's ``dqn.py``: the network, then the loop. Its config
dataclass is :mod:`~avemotion.agents.dqn_config`, the TD losses :mod:`~avemotion.agents.losses`,
the training reward :mod:`~avemotion.agents.rewards`. Collection runs many sub-envs of the
native vector env at once; every iteration steps all of them, stores their real transitions
(never the NEXT_STEP reset transition that follows a done), and takes one large batched
gradient step.

With the default posterior front end the agent steps a store of cross-fitted class logits
(:mod:`~avemotion.agents.frontend_fit`), learns with the "earliness" reward whose weight
follows the harmonic mean of its training episodes, and the saved network (front end
fitted on every training speaker) gets a wait bias tuned for that harmonic mean on the
training speakers' episodes (:mod:`~avemotion.agents.stop_tuning`).

Files written into the run directory: ``model.pt`` (state dict of the online network),
``checkpoint.pt`` (everything needed to resume: networks, optimiser, replay memory,
counters and random states; written atomically), ``training_log.csv`` and ``tensorboard/``.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tqdm import tqdm

from avemotion.agents.dqn_checkpoint import load_checkpoint, save_checkpoint
from avemotion.agents.dqn_config import DQNConfig
from avemotion.agents.dqn_paths import Rewards, Step, make_path
from avemotion.agents.dqn_state import SharpnessJitter
from avemotion.agents.frontend_fit import AgentData, transplant
from avemotion.agents.networks import (
    FrontEnd,
    MLPQNetwork,
    RecurrentQNetwork,
    StoppingQNetwork,
    masked_argmax,
)
from avemotion.agents.rewards import MatchedEarlinessWeight, step_outcome
from avemotion.agents.stop_tuning import tune_wait_bias
from avemotion.agents.training_log import TrainingLog
from avemotion.atomic import torch_save_atomic
from avemotion.device import bridge
from avemotion.envs.core import ObservationLayout, RewardSpec
from avemotion.posterior import CrossFit
from avemotion.store import FeatureStore

MODEL_NAME = "model.pt"
CHECKPOINT_NAME = "checkpoint.pt"


def make_q_network(
    config: DQNConfig, obs_dim: int, n_actions: int, store_dim: int
) -> torch.nn.Module:
    """The online Q-network this config describes (its front end still unfitted)."""
    frontend = FrontEnd(obs_dim, store_dim, n_actions - 1, config.frontend)
    if config.q_head == "stopping" and not config.recurrent:
        rewards = env_rewards(config)
        return StoppingQNetwork(
            frontend,
            n_actions,
            config.hidden,
            (rewards.correct, rewards.wrong),
            learned_correct=rewards.earliness_weight > 0 or config.match_earliness_weight,
            time_feature=config.stop_time_feature is True,
        )
    if config.recurrent:
        return RecurrentQNetwork(
            frontend, n_actions, config.hidden, config.dueling, config.recurrent
        )
    return MLPQNetwork(frontend, n_actions, config.hidden, config.dueling)


def make_envs(config: DQNConfig, store: FeatureStore, max_length: int) -> Any:
    """The native vector env the agent trains on: ``num_envs`` sub-envs of ``store`` with
    the config's observation mode and reward, time feature ``t / max_length``."""
    return gym.make_vec(
        "AVEmotion-v0",
        num_envs=config.num_envs,
        store=store,
        obs_mode=config.obs_mode,
        reward=config.reward,
        wait_cost=config.wait_cost,
        earliness_weight=config.earliness_weight,
        max_length=max_length,
    )


def env_rewards(config: DQNConfig) -> RewardSpec:
    """The env reward this config trains on."""
    return RewardSpec.preset(
        config.reward, wait_cost=config.wait_cost, earliness_weight=config.earliness_weight
    )


def replay_weight(rewards: RewardSpec, matched: MatchedEarlinessWeight | None) -> float | None:
    """The earliness weight the replay recomputes rewards with (None: the stored env
    rewards). With the env's unmodified earliness preset the recomputed rewards are the
    env's own, and every class action gets its counterfactual reward ``1 − w · t / T``."""
    if matched is not None:
        return matched.value
    preset = RewardSpec.preset("earliness", earliness_weight=rewards.earliness_weight)
    return rewards.earliness_weight if rewards == preset else None


def epsilon_at(config: DQNConfig, step: int, total: int) -> float:
    """Linear ε schedule from ``start_epsilon`` to ``end_epsilon``."""
    fraction = min(1.0, step / max(1.0, config.exploration_fraction * total))
    return config.start_epsilon + fraction * (config.end_epsilon - config.start_epsilon)


def explore(mask: np.ndarray, wait_prob: float, rng: np.random.Generator) -> np.ndarray:
    """Random valid actions: wait with ``wait_prob`` where allowed, else a uniform class."""
    classes = 1 + rng.integers(mask.shape[1] - 1, size=len(mask))
    wait = mask[:, 0] & (rng.random(len(mask)) < wait_prob)
    return np.where(wait, 0, classes)


def train_dqn(
    config: DQNConfig,
    store: FeatureStore,
    steps: int,
    seed: int,
    run_dir: Path,
    resume: bool = False,
    progress: bool = True,
    max_length: int | None = None,
    fitted: CrossFit | None = None,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Train our DQN for ``steps`` environment steps (real transitions) into ``run_dir``.

    With ``resume`` and a ``checkpoint.pt`` present, training continues from the
    checkpoint's step count up to ``steps``. ``max_length`` is T_max of the env's time
    feature (default: the longest clip of ``store``, before the front-end split).
    Returns a summary with ``env_steps_per_s`` (env steps over the training loop's time,
    checkpoint writing excluded), ``setup_seconds`` (fitting the front end before the
    loop), the final earliness weight and the stop tuning's result. ``fitted`` is the
    run's cross-fitted posterior model (fitted here when not given). ``device`` is where
    the networks run (:func:`~avemotion.device.bridge`: the loop, replay and envs stay on
    the CPU); the files written hold CPU tensors.
    """
    setup_start = time.perf_counter()
    torch.set_num_threads(config.torch_threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    if max_length is None:
        max_length = int(store.lengths.max())
    data = AgentData(store, config, fitted)
    store = data.store
    spec = env_rewards(config)
    envs = make_envs(config, store, max_length)
    n_envs, n_actions = config.num_envs, envs.single_action_space.n
    obs_dim = envs.single_observation_space.shape[0]
    rewards = Rewards((spec.correct, spec.wrong), (spec.correct, spec.earliness_weight))
    online = make_q_network(config, obs_dim, n_actions, store.dim)
    data.fit(online.frontend, envs.layout)
    target = bridge(copy.deepcopy(online), device)
    bridge(online, device)
    # foreach: one call over every tensor (the same arithmetic, a third less time on the CPU)
    optimiser = torch.optim.AdamW(
        online.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay, foreach=True
    )
    path = make_path(config, store, n_envs, obs_dim, n_actions)
    earliness = (
        MatchedEarlinessWeight(None, start=spec.earliness_weight or 1.0)
        if config.match_earliness_weight
        else None
    )
    global_step, updates = 0, 0
    checkpoint_path = run_dir / CHECKPOINT_NAME
    if resume and checkpoint_path.is_file():
        nets = (online, target, optimiser)
        global_step, updates = load_checkpoint(checkpoint_path, nets, rng, earliness, path.replay)
    log = TrainingLog(
        run_dir,
        ("loss", "q_mean", "epsilon", "updates", "earliness_weight"),
        resume=resume,
        start_step=global_step,
    )
    obs, info = envs.reset(seed=seed + global_step)
    jitter = SharpnessJitter(
        config.posterior_jitter if data.crossfit or data.posterior_store else 0.0, envs.layout, rng
    )
    obs = jitter.start(np.ones(n_envs, dtype=bool), obs)
    mask = info["action_mask"].astype(bool)
    prev_done = np.zeros(n_envs, dtype=bool)
    episode_return = np.zeros(n_envs)
    path.start(online, obs, mask)
    losses, q_means = [], []
    next_log = (global_step // config.log_every + 1) * config.log_every
    next_checkpoint = (global_step // config.checkpoint_every + 1) * config.checkpoint_every
    bar = tqdm(total=steps, initial=global_step, disable=not progress, unit="step", desc="dqn")
    start_step, start_time, checkpoint_seconds = global_step, log.elapsed(), 0.0
    setup_seconds = time.perf_counter() - setup_start
    while global_step < steps:
        epsilon = epsilon_at(config, global_step, steps)
        with torch.no_grad():
            q = path.q_values(online, torch.from_numpy(obs))
            greedy = masked_argmax(q, torch.from_numpy(mask)).numpy()
        actions = np.where(
            rng.random(n_envs) < epsilon, explore(mask, config.exploration_wait_prob, rng), greedy
        )
        before = info
        next_obs, reward, terminated, truncated, info = envs.step(actions)
        next_obs = jitter.start(prev_done, next_obs)
        next_mask = info["action_mask"].astype(bool)
        fraction, hit = step_outcome(actions, before)
        valid = ~prev_done
        if int(valid.sum()) > steps - global_step:
            # The budget ends inside this batch: keep (and count) exactly ``steps`` transitions.
            valid &= np.cumsum(valid) <= steps - global_step
        done = (terminated | truncated) & valid
        path.record(
            Step(obs, actions, reward, next_obs, next_mask, terminated, truncated, valid, done,
                 prev_done, info["label"], fraction, hit)
        )  # fmt: skip
        episode_return += reward * valid
        if done.any():
            _episodes_done(log, earliness, done, terminated, hit, fraction, episode_return, info)
        prev_done = terminated | truncated
        obs, mask = next_obs, next_mask
        collected = int(valid.sum())
        global_step += collected
        bar.update(collected)
        if global_step >= config.learning_starts and len(path.replay) > 0:
            weight = replay_weight(spec, earliness)
            for _ in range(config.gradient_steps):
                loss, q_mean = path.loss((online, target), rewards, rng, weight)
                _gradient_step(online, optimiser, loss, config.max_grad_norm)
                updates += 1
                losses.append(loss.item())
                q_means.append(q_mean.item())
                if updates % config.target_update_interval == 0:
                    _update_target(online, target, config.tau)
        if global_step >= next_log or global_step >= steps:
            log.row(
                global_step,
                loss=_mean(losses),
                q_mean=_mean(q_means),
                earliness_weight=earliness.value if earliness is not None else float("nan"),
                epsilon=epsilon,
                updates=updates,
            )
            losses, q_means = [], []
            next_log = (global_step // config.log_every + 1) * config.log_every
        if global_step >= next_checkpoint or global_step >= steps:
            checkpoint_start = time.perf_counter()
            nets = (online, target, optimiser)
            replay = path.replay if config.checkpoint_replay else None
            save_checkpoint(
                checkpoint_path, nets, (global_step, updates), rng, earliness, replay
            )  # fmt: skip
            _save_model(final_model(online, config, envs, data), run_dir / MODEL_NAME)
            next_checkpoint = (global_step // config.checkpoint_every + 1) * config.checkpoint_every
            checkpoint_seconds += time.perf_counter() - checkpoint_start
    bar.close()
    log.close()
    envs.close()
    data.close()
    seconds = max(log.elapsed() - start_time, 1e-9)
    loop_seconds = max(seconds - checkpoint_seconds, 1e-9)
    return {
        "env_steps": global_step,
        "updates": updates,
        "train_seconds": seconds,
        "checkpoint_seconds": checkpoint_seconds,
        "setup_seconds": setup_seconds,
        "env_steps_per_s": (global_step - start_step) / loop_seconds,
        "earliness_weight": earliness.value if earliness is not None else spec.earliness_weight,
        "stop_tuning": data.tuned,
    }


def _episodes_done(
    log: TrainingLog,
    earliness: MatchedEarlinessWeight | None,
    done: np.ndarray,
    terminated: np.ndarray,
    hit: np.ndarray,
    fraction: np.ndarray,
    episode_return: np.ndarray,
    info: dict[str, Any],
) -> None:
    """Log the episodes that ended (``done``) and feed the answered ones to the matched
    earliness weight; their returns restart at 0."""
    if earliness is not None:
        answered = done & terminated
        earliness.episodes(hit[answered], fraction[answered])
    log.episodes_batch(
        episode_return[done],
        info["prediction"][done] == info["label"][done],
        info["frame_index"][done] + 1,
        info["clip_length"][done],
    )
    episode_return[done] = 0.0


def final_model(
    online: torch.nn.Module,
    config: DQNConfig,
    envs: Any,
    data: AgentData,
) -> torch.nn.Module:
    """The network to save. With cross-fitting: a network over the embedding store whose
    front end is the posterior model fitted on every training speaker, with ``online``'s
    learnt layers. Otherwise ``online`` itself."""
    full = data.all_speakers
    if data.crossfit:
        n_actions = envs.single_action_space.n
        layout = ObservationLayout(full, config.obs_mode, envs.layout.max_length)
        model = transplant(online, make_q_network(config, layout.size, n_actions, full.dim))
        data.fit_final(model.frontend, layout)
    else:
        model = copy.deepcopy(online)
    if config.tune_wait_bias and isinstance(model, StoppingQNetwork):
        bias, shrink, (mean, share), reached = tune_wait_bias(
            online, data.store, envs.layout, config.earliness_budget
        )
        model.wait_bias.fill_(bias)
        model.wait_shrink.fill_(shrink)
        model.wait_mean.fill_(mean)
        model.correct_shrink.fill_(shrink if model.correct is not None else 0.0)
        model.correct_mean.fill_(share)
        data.tuned = {
            "wait_bias": bias,
            "wait_shrink": shrink,
            "wait_mean": mean,
            "correct_mean": share,
            **{f"train_{k}": v for k, v in reached.items()},
        }
    return model


def _gradient_step(
    online: torch.nn.Module, optimiser: torch.optim.Optimizer, loss: torch.Tensor, max_norm: float
) -> None:
    optimiser.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(online.parameters(), max_norm, foreach=True)
    optimiser.step()


def _save_model(model: torch.nn.Module, path: Path) -> None:
    """The network's state dict as CPU tensors (whatever device it trained on)."""
    torch_save_atomic({k: v.cpu() for k, v in model.state_dict().items()}, path)


def _update_target(online: torch.nn.Module, target: torch.nn.Module, tau: float) -> None:
    with torch.no_grad():
        for p_target, p_online in zip(target.parameters(), online.parameters()):
            p_target.lerp_(p_online, tau)
        for b_target, b_online in zip(target.buffers(), online.buffers()):
            b_target.copy_(b_online)


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")
