"""Our DQN top to bottom, like CleanRL's ``dqn.py``: setup → collect → learn, one gradient
step in :func:`update`. Double DQN, dueling or stopping head, action masking, n-step returns,
a recurrent option; design and figures: docs/agents.md."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from avemotion.agents.dqn.checkpoint import load_checkpoint, save_checkpoint, save_model
from avemotion.agents.dqn.config import DQNConfig
from avemotion.agents.dqn.earliness_weight import MatchedEarlinessWeight
from avemotion.agents.dqn.networks import (
    augment,
    env_rewards,
    make_q_network,
    masked_argmax,
    reset_state,
)
from avemotion.agents.dqn.posterior_input import AgentData, SharpnessJitter
from avemotion.agents.dqn.replay import (
    EpisodeBatch,
    EpisodeReplay,
    EpisodeScratch,
    NStepBatch,
    TransitionReplay,
)
from avemotion.agents.dqn.stop_tuning import final_model
from avemotion.agents.training_log import TrainingLog
from avemotion.device import bridge
from avemotion.envs.core import RewardSpec
from avemotion.holds import reached
from avemotion.posterior import CrossFit
from avemotion.store import FeatureStore

MODEL_NAME = "model.pt"
CHECKPOINT_NAME = "checkpoint.pt"


def make_envs(config: DQNConfig, store: FeatureStore, max_length: int) -> Any:
    """The native vector env the agent trains on: ``num_envs`` sub-envs of ``store`` with
    the config's observation mode and reward, time feature ``t / max_length``."""
    return gym.make_vec(
        "AVEmotion-v0", num_envs=config.num_envs, store=store, obs_mode=config.obs_mode,
        reward=config.reward, wait_cost=config.wait_cost,
        earliness_weight=config.earliness_weight, max_length=max_length,
    )  # fmt: skip


def replay_rewards(
    spec: RewardSpec, matched: MatchedEarlinessWeight | None
) -> tuple[RewardSpec, bool]:
    """The reward spec the replay scores its samples with, and whether it recomputes their
    rewards from the stored outcomes (the matched earliness weight, or the env's unmodified
    earliness preset: then the recomputed rewards are the env's own)."""
    if matched is not None:
        return RewardSpec.preset("earliness", earliness_weight=matched.value), True
    return spec, spec == RewardSpec.preset("earliness", earliness_weight=spec.earliness_weight)


def epsilon_at(config: DQNConfig, step: int, total: int) -> float:
    """Linear ε schedule from ``start_epsilon`` to ``end_epsilon``."""
    fraction = min(1.0, step / max(1.0, config.exploration_fraction * total))
    return config.start_epsilon + fraction * (config.end_epsilon - config.start_epsilon)


def explore(mask: np.ndarray, wait_prob: float, rng: np.random.Generator) -> np.ndarray:
    """Random valid actions: wait with ``wait_prob`` where allowed, else a uniform class."""
    classes = 1 + rng.integers(mask.shape[1] - 1, size=len(mask))
    wait = mask[:, 0] & (rng.random(len(mask)) < wait_prob)
    return np.where(wait, 0, classes)


def step_outcome(
    actions: np.ndarray, before: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """``(fraction, hit)`` of a vector-env step: the fraction of the clip observed when the
    action was taken (``before``: that state's env info), and whether it answered right."""
    fraction = ((before["frame_index"] + 1) / before["clip_length"]).astype(np.float32)
    hit = (actions != 0) & (actions - 1 == before["label"])
    return fraction, hit


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
    """Train our DQN for ``steps`` env steps into ``run_dir`` (``resume``: from its
    checkpoint), tune its stopping rule once, save ``model.pt``; return a summary.
    ``max_length``: T_max of the time feature; ``fitted``: the run's posterior model."""
    setup_start = time.perf_counter()
    torch.set_num_threads(config.torch_threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    data = AgentData(store, config, fitted)
    loop = _Loop(config, data, int(store.lengths.max()) if max_length is None else max_length)
    loop.build(rng, device)
    loop.start(run_dir, seed, resume)
    bar = tqdm(total=steps, initial=loop.global_step, disable=not progress, unit="step", desc="dqn")
    start_step, start_time = loop.global_step, loop.log.elapsed()
    setup_seconds = time.perf_counter() - setup_start
    while loop.global_step < steps:
        epsilon = epsilon_at(config, loop.global_step, steps)
        bar.update(loop.collect(epsilon, steps - loop.global_step))
        loop.learn()
        loop.log_row(epsilon, done=loop.global_step >= steps)
        loop.checkpoint(done=loop.global_step >= steps)
    bar.close()
    seconds = max(loop.log.elapsed() - start_time, 1e-9)
    loop_seconds = max(seconds - loop.checkpoint_seconds, 1e-9)
    save_model(final_model(loop.online, config, loop.envs, data), run_dir / MODEL_NAME)
    loop.close()
    return {
        "env_steps": loop.global_step,
        "updates": loop.updates,
        "train_seconds": seconds,
        "checkpoint_seconds": loop.checkpoint_seconds,
        "setup_seconds": setup_seconds,
        "env_steps_per_s": (loop.global_step - start_step) / loop_seconds,
        "earliness_weight": loop.earliness_weight(),
        "stop_tuning": data.tuned,
    }


class _Loop:
    """One training run's state, in the order the loop touches it: :meth:`build` (envs,
    networks, replay), :meth:`start`, then per iteration :meth:`collect`, :meth:`learn`
    (:func:`update`), :meth:`log_row` and :meth:`checkpoint`."""

    def __init__(self, config: DQNConfig, data: AgentData, max_length: int) -> None:
        self.config, self.data = config, data
        self.spec = env_rewards(config)
        self.envs = make_envs(config, data.store, max_length)
        self.n_envs = config.num_envs
        self.recurrent = bool(config.recurrent)
        self.global_step, self.updates, self.checkpoint_seconds = 0, 0, 0.0
        self.losses: list[float] = []
        self.q_means: list[float] = []

    def build(self, rng: np.random.Generator, device: str | torch.device) -> None:
        """The online and target networks, the optimiser, the replay and the matched
        earliness weight (when asked for)."""
        config, envs, store = self.config, self.envs, self.data.store
        self.rng = rng
        n_actions = envs.single_action_space.n
        obs_dim = envs.single_observation_space.shape[0]
        self.online = make_q_network(config, obs_dim, n_actions, store.dim)
        self.data.fit(self.online.frontend, envs.layout)
        self.target = bridge(copy.deepcopy(self.online), device)
        bridge(self.online, device)
        # foreach: one call over every tensor (the same arithmetic, a third less time on the CPU)
        self.optimiser = torch.optim.AdamW(
            self.online.parameters(),
            lr=config.learning_rate,
            weight_decay=config.weight_decay,
            foreach=True,
        )
        if self.recurrent:  # whole episodes, gathered step by step in the scratch
            episode_length = int(store.lengths.max())
            capacity = max(8, config.buffer_size // max(1, int(store.lengths.mean())))
            self.replay: Any = EpisodeReplay(capacity, episode_length, obs_dim, n_actions)
            self.scratch = EpisodeScratch(self.n_envs, episode_length, obs_dim, n_actions)
        else:
            self.replay = TransitionReplay(config.buffer_size, self.n_envs, obs_dim, n_actions)
        self.earliness = (
            MatchedEarlinessWeight(None, start=self.spec.earliness_weight or 1.0)
            if config.match_earliness_weight
            else None
        )

    def start(self, run_dir: Path, seed: int, resume: bool) -> None:
        """Resume from ``run_dir``'s checkpoint (if asked and present), open the training
        log and reset the envs."""
        config, rng = self.config, self.rng
        self.run_dir = run_dir
        if resume and (run_dir / CHECKPOINT_NAME).is_file():
            nets = (self.online, self.target, self.optimiser)
            self.global_step, self.updates = load_checkpoint(
                run_dir / CHECKPOINT_NAME, nets, rng, self.earliness, self.replay
            )
        self.log = TrainingLog(
            run_dir,
            ("loss", "q_mean", "epsilon", "updates", "earliness_weight"),
            resume=resume,
            start_step=self.global_step,
        )
        obs, self.info = self.envs.reset(seed=seed + self.global_step)
        data = self.data
        jitter = config.posterior_jitter if data.crossfit or data.posterior_store else 0.0
        self.jitter = SharpnessJitter(jitter, self.envs.layout, rng)
        self.obs = self.jitter.start(np.ones(self.n_envs, dtype=bool), obs)
        self.mask = self.info["action_mask"].astype(bool)
        self.prev_done = np.zeros(self.n_envs, dtype=bool)
        self.episode_return = np.zeros(self.n_envs)
        if self.recurrent:
            self.hidden = self.online.zero_state(self.n_envs)
            self.scratch.start(np.ones(self.n_envs, dtype=bool), self.obs, self.mask)
        self.next_log = self._next(config.log_every)
        self.next_checkpoint = self._next(config.checkpoint_every)

    def _next(self, every: int) -> int:
        return (self.global_step // every + 1) * every

    def collect(self, epsilon: float, budget: int) -> int:
        """Step every sub-env ε-greedily and record the real transitions, at most
        ``budget`` of them; returns how many were kept."""
        rng, n_envs = self.rng, self.n_envs
        with torch.no_grad():
            obs = torch.from_numpy(self.obs)
            if self.recurrent:
                q, self.hidden = self.online.step(obs, self.hidden)
            else:
                q = self.online(obs)
            greedy = masked_argmax(q, torch.from_numpy(self.mask)).numpy()
        exploring = rng.random(n_envs) < epsilon  # drawn before explore()'s: a fixed stream
        actions = np.where(
            exploring, explore(self.mask, self.config.exploration_wait_prob, rng), greedy
        )
        before = self.info
        next_obs, reward, terminated, truncated, info = self.envs.step(actions)
        next_obs = self.jitter.start(self.prev_done, next_obs)
        next_mask = info["action_mask"].astype(bool)
        fraction, hit = step_outcome(actions, before)
        valid = ~self.prev_done  # never the reset transition that follows a done
        if int(valid.sum()) > budget:
            # The budget ends inside this batch: keep (and count) exactly ``steps`` transitions.
            valid &= np.cumsum(valid) <= budget
        done = (terminated | truncated) & valid
        if self.recurrent:
            scratch = self.scratch
            scratch.record(valid, actions, reward, fraction, hit, next_obs, next_mask)
            for e in np.flatnonzero(done):
                scratch.push(e, self.replay, bool(terminated[e]), int(info["label"][e]))
            scratch.start(self.prev_done, next_obs, next_mask)
            self.hidden = reset_state(self.hidden, torch.from_numpy(self.prev_done))
        else:
            self.replay.add(
                self.obs, actions, reward, next_obs, next_mask, terminated, truncated, valid,
                info["label"], fraction, hit,
            )  # fmt: skip
        self.episode_return += reward * valid
        if done.any():
            self._episodes_done(done, terminated, hit, fraction, info)
        self.prev_done = terminated | truncated
        self.obs, self.mask, self.info = next_obs, next_mask, info
        collected = int(valid.sum())
        self.global_step += collected
        return collected

    def _episodes_done(
        self, done: np.ndarray, terminated: np.ndarray, hit: np.ndarray, fraction: np.ndarray,
        info: dict[str, Any],
    ) -> None:  # fmt: skip
        """Log the episodes that ended (``done``) and feed the answered ones to the matched
        earliness weight; their returns restart at 0."""
        if self.earliness is not None:
            answered = done & terminated
            self.earliness.episodes(hit[answered], fraction[answered])
        self.log.episodes_batch(
            self.episode_return[done],
            info["prediction"][done] == info["label"][done],
            info["frame_index"][done] + 1,
            info["clip_length"][done],
        )
        self.episode_return[done] = 0.0

    def learn(self) -> None:
        """The gradient steps of one iteration, once ``learning_starts`` steps are in."""
        config = self.config
        if self.global_step < config.learning_starts or len(self.replay) == 0:
            return
        spec, recompute = replay_rewards(self.spec, self.earliness)
        for _ in range(config.gradient_steps):
            if self.recurrent:
                size = max(1, config.batch_size // 32)
                batch: Any = self.replay.sample(size, config.n_step, config.gamma, self.rng, spec, recompute)  # fmt: skip
            else:
                batch = self.replay.sample(
                    config.batch_size, config.n_step, config.gamma, self.rng, spec, recompute
                )
            self.updates += 1
            loss, q_mean = update(
                (self.online, self.target), self.optimiser, batch, config, self.spec.wrong,
                self.updates % config.target_update_interval == 0,
            )  # fmt: skip
            self.losses.append(loss)
            self.q_means.append(q_mean)

    def log_row(self, epsilon: float, done: bool) -> None:
        """A training-log row every ``log_every`` steps and at the end."""
        if not (self.global_step >= self.next_log or done):
            return
        self.log.row(
            self.global_step,
            loss=_mean(self.losses),
            q_mean=_mean(self.q_means),
            earliness_weight=self.earliness.value if self.earliness is not None else float("nan"),
            epsilon=epsilon,
            updates=self.updates,
        )
        self.losses, self.q_means = [], []
        self.next_log = self._next(self.config.log_every)

    def checkpoint(self, done: bool) -> None:
        """``checkpoint.pt`` (and, before the end, an untuned ``model.pt``) every
        ``checkpoint_every`` steps and at the end; their time is kept apart from the loop's."""
        if not (self.global_step >= self.next_checkpoint or done):
            return
        start = time.perf_counter()
        nets = (self.online, self.target, self.optimiser)
        replay = self.replay if self.config.checkpoint_replay else None
        counters = (self.global_step, self.updates)
        save_checkpoint(
            self.run_dir / CHECKPOINT_NAME, nets, counters, self.rng, self.earliness, replay
        )
        if not done:  # an unfinished run's model, untuned (the end saves the tuned one)
            model = final_model(self.online, self.config, self.envs, self.data, tune=False)
            save_model(model, self.run_dir / MODEL_NAME)
        self.next_checkpoint = self._next(self.config.checkpoint_every)
        self.checkpoint_seconds += time.perf_counter() - start
        reached("dqn-checkpoint")

    def earliness_weight(self) -> float:
        """The earliness weight trained with last (the matched one's, or the env's)."""
        return self.earliness.value if self.earliness is not None else self.spec.earliness_weight

    def close(self) -> None:
        self.log.close()
        self.envs.close()
        self.data.close()


def update(
    nets: tuple[torch.nn.Module, torch.nn.Module],
    optimiser: torch.optim.Optimizer,
    batch: NStepBatch | EpisodeBatch,
    config: DQNConfig,
    wrong: float,
    sync_target: bool,
) -> tuple[float, float]:
    """One gradient step on a sampled batch: the masked (Double) n-step TD target, the
    Huber loss (plus the class actions' known rewards), a clipped AdamW step and, when
    ``sync_target``, the target update. Returns the loss and the mean Q of the actions taken."""
    online, target = nets
    q_all = online(augment(online, batch.obs, config.input_noise))
    with torch.no_grad():
        if isinstance(batch, EpisodeBatch):  # recurrent: Q of every step of whole episodes
            rows = torch.arange(len(batch.boot))[:, None]
            next_target = target(batch.obs)[rows, batch.boot]
            chooser = q_all.detach()[rows, batch.boot] if config.double else next_target
            next_mask = batch.mask[rows, batch.boot]
        else:
            next_target = target(batch.bootstrap_obs)
            chooser = online(batch.bootstrap_obs) if config.double else next_target
            next_mask = batch.bootstrap_mask
        best = masked_argmax(chooser, next_mask)
        y = batch.returns + batch.discount * next_target.gather(-1, best[..., None])[..., 0]
    if isinstance(batch, EpisodeBatch):
        q_all = q_all[:, : batch.action.shape[1]]  # the last observation has no action
    q = q_all.gather(-1, batch.action[..., None])[..., 0]
    valid = batch.valid
    loss = F.smooth_l1_loss(q[valid], y[valid])
    if config.counterfactual_classes:  # a class action ends the clip: its value is its reward
        targets = class_targets(batch.label, q_all.shape[-1], batch.correct_reward, wrong)
        loss = loss + F.smooth_l1_loss(q_all[..., 1:][valid], targets[valid])
    optimiser.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(online.parameters(), config.max_grad_norm, foreach=True)
    optimiser.step()
    if sync_target:  # move the target toward the online network (tau 1: copy); buffers copied
        with torch.no_grad():
            for p_target, p_online in zip(target.parameters(), online.parameters()):
                p_target.lerp_(p_online, config.tau)
            for b_target, b_online in zip(target.buffers(), online.buffers()):
                b_target.copy_(b_online)
    return loss.item(), q[valid].mean().item()


def class_targets(
    label: torch.Tensor, n_actions: int, correct_reward: torch.Tensor, wrong_reward: float
) -> torch.Tensor:
    """Reward of each classification action (columns 1..K) given the true label and what a
    correct answer earns there (``correct_reward`` has the label's shape)."""
    correct = torch.nn.functional.one_hot(label, n_actions - 1).bool()
    return torch.where(correct, correct_reward[..., None], wrong_reward)


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")
