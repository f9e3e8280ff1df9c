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

from avemotion.agents.dqn_checkpoint import load_checkpoint, save_checkpoint, save_model
from avemotion.agents.dqn_config import DQNConfig
from avemotion.agents.dqn_paths import Rewards, Step, make_path
from avemotion.agents.dqn_state import SharpnessJitter
from avemotion.agents.dqn_updates import epsilon_at, explore, gradient_step, update_target
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
from avemotion.device import bridge
from avemotion.envs.core import ObservationLayout, RewardSpec
from avemotion.holds import reached
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
    loop.close()
    seconds = max(loop.log.elapsed() - start_time, 1e-9)
    loop_seconds = max(seconds - loop.checkpoint_seconds, 1e-9)
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
    """One training run's state, in the order the loop touches it: the envs and networks
    (:meth:`build`), the counters, log and first observation (:meth:`start`), then one
    iteration at a time: :meth:`collect` a step of every sub-env, :meth:`learn` from the
    replay, :meth:`log_row` and :meth:`checkpoint` when due."""

    def __init__(self, config: DQNConfig, data: AgentData, max_length: int) -> None:
        self.config, self.data = config, data
        self.spec = env_rewards(config)
        self.envs = make_envs(config, data.store, max_length)
        self.n_envs = config.num_envs
        self.rewards = Rewards(
            (self.spec.correct, self.spec.wrong), (self.spec.correct, self.spec.earliness_weight)
        )
        self.global_step, self.updates, self.checkpoint_seconds = 0, 0, 0.0
        self.losses: list[float] = []
        self.q_means: list[float] = []

    def build(self, rng: np.random.Generator, device: str | torch.device) -> None:
        """The online and target networks, the optimiser, the replay path and the matched
        earliness weight (when asked for)."""
        config, envs = self.config, self.envs
        self.rng = rng
        n_actions = envs.single_action_space.n
        obs_dim = envs.single_observation_space.shape[0]
        self.online = make_q_network(config, obs_dim, n_actions, self.data.store.dim)
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
        self.path = make_path(config, self.data.store, self.n_envs, obs_dim, n_actions)
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
                run_dir / CHECKPOINT_NAME, nets, rng, self.earliness, self.path.replay
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
        self.path.start(self.online, self.obs, self.mask)
        self.next_log = self._next(config.log_every)
        self.next_checkpoint = self._next(config.checkpoint_every)

    def _next(self, every: int) -> int:
        return (self.global_step // every + 1) * every

    def collect(self, epsilon: float, budget: int) -> int:
        """Step every sub-env ε-greedily and record the real transitions, at most
        ``budget`` of them; returns how many were kept."""
        rng, n_envs = self.rng, self.n_envs
        with torch.no_grad():
            q = self.path.q_values(self.online, torch.from_numpy(self.obs))
            greedy = masked_argmax(q, torch.from_numpy(self.mask)).numpy()
        exploring = (
            rng.random(n_envs) < epsilon
        )  # drawn before explore()'s draws: a seed's stream stays fixed
        actions = np.where(
            exploring, explore(self.mask, self.config.exploration_wait_prob, rng), greedy
        )
        before = self.info
        next_obs, reward, terminated, truncated, info = self.envs.step(actions)
        next_obs = self.jitter.start(self.prev_done, next_obs)
        next_mask = info["action_mask"].astype(bool)
        fraction, hit = step_outcome(actions, before)
        valid = ~self.prev_done
        if int(valid.sum()) > budget:
            # The budget ends inside this batch: keep (and count) exactly ``steps`` transitions.
            valid &= np.cumsum(valid) <= budget
        done = (terminated | truncated) & valid
        self.path.record(
            Step(self.obs, actions, reward, next_obs, next_mask, terminated, truncated, valid,
                 done, self.prev_done, info["label"], fraction, hit)
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
        if self.global_step < config.learning_starts or len(self.path.replay) == 0:
            return
        weight = replay_weight(self.spec, self.earliness)
        for _ in range(config.gradient_steps):
            loss, q_mean = self.path.loss(
                (self.online, self.target), self.rewards, self.rng, weight
            )
            gradient_step(self.online, self.optimiser, loss, config.max_grad_norm)
            self.updates += 1
            self.losses.append(loss.item())
            self.q_means.append(q_mean.item())
            if self.updates % config.target_update_interval == 0:
                update_target(self.online, self.target, config.tau)

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
        """``checkpoint.pt`` and ``model.pt`` every ``checkpoint_every`` steps and at the
        end (their time is kept apart from the loop's)."""
        if not (self.global_step >= self.next_checkpoint or done):
            return
        start = time.perf_counter()
        nets = (self.online, self.target, self.optimiser)
        replay = self.path.replay if self.config.checkpoint_replay else None
        counters = (self.global_step, self.updates)
        save_checkpoint(
            self.run_dir / CHECKPOINT_NAME, nets, counters, self.rng, self.earliness, replay
        )
        model = final_model(self.online, self.config, self.envs, self.data)
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


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")
