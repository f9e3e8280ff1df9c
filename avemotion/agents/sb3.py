"""Stable-Baselines3 and sb3-contrib agents on ``AVEmotion-v0``, behind our run interface.

``sb3-dqn``, ``sb3-ppo``, ``sb3-a2c``, ``sb3-qrdqn``, ``sb3-recurrent-ppo`` and
``sb3-maskable-ppo`` train with their library defaults on SB3's own ``DummyVecEnv`` of
single envs (same-step autoreset, so no reset transition ever reaches their buffers). Only
MaskablePPO sees the action mask while training (through the env's ``action_masks()``).
At evaluation every agent must answer on a clip's last step: when a policy that ignores
the mask picks the forbidden wait there, :class:`SB3Agent` takes its best-scoring class
instead (Q-values, quantile means or action probabilities), which can only help it.
"""

from __future__ import annotations

import inspect
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avemotion.agents.training_log import TrainingLog
from avemotion.store import FeatureStore

MODEL_NAME = "model.zip"
SB3_AGENTS = ("sb3-dqn", "sb3-ppo", "sb3-a2c", "sb3-qrdqn", "sb3-recurrent-ppo", "sb3-maskable-ppo")
DEFAULT_ENVS = {
    "sb3-dqn": 1,
    "sb3-qrdqn": 1,
    "sb3-ppo": 8,
    "sb3-a2c": 8,
    "sb3-recurrent-ppo": 8,
    "sb3-maskable-ppo": 8,
}


def algorithm_class(agent: str) -> Any:
    """The SB3 / sb3-contrib class behind an agent name."""
    if agent not in SB3_AGENTS:
        raise ValueError(f"agent: expected one of {list(SB3_AGENTS)}, got {agent!r}")
    if agent in ("sb3-dqn", "sb3-ppo", "sb3-a2c"):
        import stable_baselines3 as sb3

        return {"sb3-dqn": sb3.DQN, "sb3-ppo": sb3.PPO, "sb3-a2c": sb3.A2C}[agent]
    import sb3_contrib

    return {
        "sb3-qrdqn": sb3_contrib.QRDQN,
        "sb3-recurrent-ppo": sb3_contrib.RecurrentPPO,
        "sb3-maskable-ppo": sb3_contrib.MaskablePPO,
    }[agent]


def _episode_callback(log: TrainingLog, log_every: int) -> Any:
    from stable_baselines3.common.callbacks import BaseCallback

    class EpisodeLogger(BaseCallback):
        """Feeds finished episodes to the training log and writes a row every ``log_every`` steps."""

        def _on_training_start(self) -> None:
            self.returns = np.zeros(self.training_env.num_envs)
            self.next_row = log_every

        def _on_step(self) -> bool:
            self.returns += self.locals["rewards"]
            for e in np.flatnonzero(self.locals["dones"]):
                info = self.locals["infos"][e]
                log.episode(
                    self.returns[e],
                    info["prediction"] == info["label"],
                    int(info["frame_index"]) + 1,
                    int(info["clip_length"]),
                )
                self.returns[e] = 0.0
            if self.num_timesteps >= self.next_row:
                log.row(self.num_timesteps)
                self.next_row = (self.num_timesteps // log_every + 1) * log_every
            return True

    return EpisodeLogger()


def train_sb3(
    agent: str,
    store: FeatureStore,
    steps: int,
    seed: int,
    run_dir: Path,
    obs_mode: str = "frame+mean",
    reward: str | None = None,
    earliness_weight: float | None = None,
    wait_cost: float | None = None,
    n_envs: int | None = None,
    log_every: int = 5_000,
    progress: bool = True,
    max_length: int | None = None,
    device: str = "cpu",
    **algorithm_kwargs: Any,
) -> dict[str, Any]:
    """Train an SB3 agent for ``steps`` env steps into ``run_dir`` (``model.zip`` + log).

    ``max_length`` is T_max of the env's time feature (default: the store's longest clip);
    ``reward``, ``earliness_weight`` and ``wait_cost`` are the env's reward arguments; None
    keeps the env's default (``reward="earliness"``), which every agent of a comparison
    trains on. The returned summary records the reward spec the agent trained on.
    """
    import gymnasium as gym
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    torch.set_num_threads(1)
    given = {"reward": reward, "earliness_weight": earliness_weight, "wait_cost": wait_cost}
    reward_kwargs = {key: value for key, value in given.items() if value is not None}

    def make_env() -> gym.Env:
        return Monitor(
            gym.make(
                "AVEmotion-v0",
                store=store,
                obs_mode=obs_mode,
                max_length=max_length,
                **reward_kwargs,
            )
        )

    vec = DummyVecEnv([make_env] * (n_envs or DEFAULT_ENVS[agent]))
    vec.seed(seed)
    rewards = vec.envs[0].unwrapped.rewards.as_dict()
    policy = "MlpLstmPolicy" if agent == "sb3-recurrent-ppo" else "MlpPolicy"
    model = algorithm_class(agent)(
        policy, vec, seed=seed, device=device, verbose=0, **algorithm_kwargs
    )
    log = TrainingLog(run_dir)
    start = log.elapsed()
    model.learn(
        total_timesteps=steps, callback=_episode_callback(log, log_every), progress_bar=False
    )
    seconds = max(log.elapsed() - start, 1e-9)
    if model.num_timesteps % log_every:
        log.row(model.num_timesteps)
    log.close()
    model.save(run_dir / MODEL_NAME)
    vec.close()
    return {
        "env_steps": int(model.num_timesteps),
        "train_seconds": seconds,
        "env_steps_per_s": model.num_timesteps / seconds,
        "reward": rewards,
    }


class SB3Agent:
    """Greedy per-step decisions of a trained SB3 model, never a masked action."""

    def __init__(self, agent: str, model: Any, obs_mode: str) -> None:
        self.agent, self.model, self.obs_mode = agent, model, obs_mode
        self.max_length: int | None = None
        """T_max of the time feature the model was trained with (set by ``load_agent``)."""
        self.recurrent = agent == "sb3-recurrent-ppo"
        self.reset()

    def reset(self) -> None:
        self._state: Any = None
        self._start = True
        self._batch_state: Any = None

    def _predict(
        self, obs: np.ndarray, masks: np.ndarray, starts: np.ndarray, state: Any
    ) -> tuple[np.ndarray, Any]:
        kwargs: dict[str, Any] = {"deterministic": True}
        if self.recurrent:
            kwargs.update(state=state, episode_start=starts)
        if self.agent == "sb3-maskable-ppo":
            kwargs["action_masks"] = masks
        actions, new_state = self.model.predict(obs, **kwargs)
        actions = np.asarray(actions, dtype=np.int64).reshape(len(obs))
        bad = ~masks[np.arange(len(obs)), actions]
        if bad.any():
            scores = self._scores(
                obs[bad], None if state is None else tuple(s[:, bad] for s in state), starts[bad]
            )
            actions[bad] = 1 + scores[:, 1:].argmax(axis=1)
        return actions, new_state

    def _scores(self, obs: np.ndarray, state: Any, starts: np.ndarray) -> np.ndarray:
        """Per-action scores of the policy (Q-values, quantile means or probabilities)."""
        policy = self.model.policy
        with torch.no_grad():
            obs_t = torch.as_tensor(obs, dtype=torch.float32)
            if self.agent == "sb3-dqn":
                return policy.q_net(obs_t).numpy()
            if self.agent == "sb3-qrdqn":
                return policy.quantile_net(obs_t).mean(dim=1).numpy()
            if self.recurrent:
                n, size = len(obs), policy.lstm_actor.hidden_size
                states = (
                    tuple(torch.as_tensor(s) for s in state)
                    if state is not None
                    else (torch.zeros(1, n, size), torch.zeros(1, n, size))
                )
                distribution, _ = policy.get_distribution(
                    obs_t, states, torch.as_tensor(starts, dtype=torch.float32)
                )
                return distribution.distribution.probs.numpy()
            return policy.get_distribution(obs_t).distribution.probs.numpy()

    def act(self, observation: np.ndarray, action_mask: np.ndarray) -> int:
        obs = np.asarray(observation, dtype=np.float32)[None]
        mask = np.asarray(action_mask, dtype=bool)[None]
        actions, self._state = self._predict(obs, mask, np.array([self._start]), self._state)
        self._start = False
        return int(actions[0])

    def act_batch(
        self, observations: np.ndarray, action_masks: np.ndarray, episode_starts: np.ndarray
    ) -> np.ndarray:
        obs = np.asarray(observations, dtype=np.float32)
        state = self._batch_state
        if state is not None and state[0].shape[1] != len(obs):
            state = None
        actions, self._batch_state = self._predict(
            obs, np.asarray(action_masks, dtype=bool), np.asarray(episode_starts, dtype=bool), state
        )
        return actions


_NOT_NEEDED_TO_ACT = (
    "_last_obs",
    "_last_original_obs",
    "_last_episode_starts",
    "ep_info_buffer",
    "ep_success_buffer",
    "rollout_buffer_class",
    "replay_buffer_class",
    "lr_schedule",
    "exploration_schedule",
)


def safe_custom_objects(path: Path, config: dict[str, Any]) -> dict[str, Any]:
    """Stand-ins for every cloudpickled field of an SB3 ``model.zip``, so that loading it
    unpickles nothing (a tampered file cannot run code): the policy class and spaces from
    the run's config, constructor arguments from its SB3 options or their defaults, and
    ``None`` for training-only state. Raises ``ValueError`` naming an unknown pickled field."""
    from gymnasium import spaces

    agent = config["agent"]
    cls = algorithm_class(agent)
    options = dict(config["agent_config"].get("algorithm_kwargs", {}))
    policy_kwargs = dict(options.get("policy_kwargs") or {})
    if agent == "sb3-a2c" and options.get("use_rms_prop", True):
        policy_kwargs.setdefault("optimizer_class", torch.optim.RMSprop)  # as A2C sets it
        policy_kwargs.setdefault(
            "optimizer_kwargs",
            {"alpha": 0.99, "eps": options.get("rms_prop_eps", 1e-5), "weight_decay": 0},
        )
    known: dict[str, Any] = {
        "policy_class": cls.policy_aliases[
            "MlpLstmPolicy" if agent == "sb3-recurrent-ppo" else "MlpPolicy"
        ],
        "observation_space": spaces.Box(-np.inf, np.inf, (int(config["obs_dim"]),), np.float32),
        "action_space": spaces.Discrete(int(config["n_actions"])),
        "policy_kwargs": policy_kwargs,
        **dict.fromkeys(_NOT_NEEDED_TO_ACT),
    }
    arguments = inspect.signature(cls.__init__).parameters
    with zipfile.ZipFile(path) as archive:
        data = json.loads(archive.read("data"))
    objects = {}
    for key, value in data.items():
        if not (isinstance(value, dict) and ":serialized:" in value):
            continue
        if key in known:
            objects[key] = known[key]
        elif key in arguments:
            objects[key] = options.get(key, arguments[key].default)
        else:
            raise ValueError(f"{path}: {key}: a pickled field that this package will not unpickle")
    return objects


def load_sb3_agent(run_dir: Path, config: dict[str, Any]) -> SB3Agent:
    """Load ``model.zip`` of an SB3 run."""
    path = Path(run_dir) / MODEL_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (the run did not finish)")
    model = algorithm_class(config["agent"]).load(
        path, device="cpu", custom_objects=safe_custom_objects(path, config)
    )
    return SB3Agent(config["agent"], model, config["agent_config"].get("obs_mode", "frame+mean"))
