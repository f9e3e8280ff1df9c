"""Q-networks for our DQN: a feed-forward dueling MLP and a recurrent (GRU/LSTM) variant.

Both read the env observation through a frozen :class:`FrontEnd` (normalisation, or a
linear class-logit projection) held as buffers so that it travels with the state dict, and
both end in a dueling head ``Q = V + A − mean(A)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from avemotion.agents.dqn.config import DQNConfig
from avemotion.envs.core import RewardSpec

RecurrentState = torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None


def masked_argmax(q: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Index of the largest ``q`` among the allowed actions (``mask`` is bool, same shape)."""
    return q.masked_fill(~mask, float("-inf")).argmax(dim=-1)


def mlp(sizes: Sequence[int]) -> nn.Sequential:
    """Linear layers with ReLU between (and after) them."""
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers)


class QHead(nn.Module):
    """A plain or dueling output layer from features to ``n_actions`` Q-values."""

    def __init__(self, features: int, n_actions: int, dueling: bool) -> None:
        super().__init__()
        self.dueling = dueling
        self.advantage = nn.Linear(features, n_actions)
        self.value = nn.Linear(features, 1) if dueling else None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        a = self.advantage(h)
        if self.value is None:
            return a
        return self.value(h) + a - a.mean(dim=-1, keepdim=True)


class FrontEnd(nn.Module):
    """A fixed (not trained) map from the env observation to the network's input.

    - ``"raw"``: per-feature normalisation ``(x − shift) / scale``.
    - ``"posterior"``: every embedding part of the observation (the frame, the running
      mean) goes through the same frozen linear softmax classifier, fitted on the training
      speakers, and is replaced by its K class logits; the time feature is kept. Such a
      low-dimensional input cannot memorise training clips by their frame noise.

    Its buffers travel with the state dict, so a loaded agent needs no training data.
    """

    def __init__(self, obs_dim: int, store_dim: int, n_classes: int, kind: str) -> None:
        super().__init__()
        if kind not in ("raw", "posterior"):
            raise ValueError(f"frontend: expected 'raw' or 'posterior', got {kind!r}")
        self.kind, self.store_dim = kind, store_dim
        self.parts = (obs_dim - 1) // store_dim
        width = obs_dim if kind == "raw" else store_dim
        self.register_buffer("shift", torch.zeros(width))
        self.register_buffer("scale", torch.ones(width))
        if kind == "posterior":
            self.register_buffer("weight", torch.zeros(store_dim, n_classes))
            self.register_buffer("bias", torch.zeros(n_classes))
            # The same map fused into one matrix over the whole observation (the time
            # feature's row is zero): logits of every part with a single matmul.
            self.register_buffer("projection", torch.zeros(obs_dim, self.parts * n_classes))
            self.register_buffer("offset", torch.zeros(self.parts * n_classes))
            # Calibration: logits × exp(a + b · log(steps seen)); steps seen are recovered
            # from the time feature t / T_max with the training store's T_max.
            self.register_buffer("calibration", torch.zeros(2))
            self.register_buffer("max_length", torch.ones(()))
        self.out_dim = obs_dim if kind == "raw" else self.parts * n_classes + 1

    def set(
        self,
        shift: torch.Tensor,
        scale: torch.Tensor,
        weight: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
    ) -> None:
        self.shift.copy_(shift)
        self.scale.copy_(scale.clamp_min(1e-6))
        if self.kind == "posterior":
            self.weight.copy_(weight)
            self.bias.copy_(bias)
            scaled = self.weight / self.scale[:, None]
            constant = self.bias - (self.shift / self.scale) @ self.weight
            k, d = self.weight.shape[1], self.store_dim
            self.projection.zero_()
            for i in range(self.parts):
                self.projection[i * d : (i + 1) * d, i * k : (i + 1) * k] = scaled
                self.offset[i * k : (i + 1) * k] = constant

    def set_calibration(self, a: float, b: float, max_length: int) -> None:
        self.calibration.copy_(torch.tensor([a, b]))
        self.max_length.fill_(float(max_length))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "raw":
            return (x - self.shift) / self.scale
        time = x[..., -1:]
        logits = torch.addmm(self.offset, x.reshape(-1, x.shape[-1]), self.projection).reshape(
            *x.shape[:-1], -1
        )
        steps = torch.round(time * self.max_length) + 1.0
        scale = torch.exp(self.calibration[0] + self.calibration[1] * torch.log(steps))
        return torch.cat([logits * scale, time], dim=-1)


class MLPQNetwork(nn.Module):
    """``obs -> Q(obs, ·)`` through a ReLU MLP and a (dueling) head."""

    recurrent = False

    def __init__(
        self, frontend: FrontEnd, n_actions: int, hidden: Sequence[int], dueling: bool
    ) -> None:
        super().__init__()
        self.frontend = frontend
        self.body = mlp([frontend.out_dim, *hidden])
        self.head = QHead(hidden[-1] if hidden else frontend.out_dim, n_actions, dueling)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.frontend(obs)))


class RecurrentQNetwork(nn.Module):
    """``obs_0..obs_t -> Q(history, ·)``: an MLP embedding per step, a GRU or LSTM, a head.

    :meth:`forward` runs whole ``[B, T, obs_dim]`` sequences from a zero state (training);
    :meth:`step` advances a ``[B, obs_dim]`` batch by one step with an explicit state
    (acting online).
    """

    recurrent = True

    def __init__(
        self, frontend: FrontEnd, n_actions: int, hidden: Sequence[int], dueling: bool, cell: str
    ) -> None:
        super().__init__()
        if cell not in ("gru", "lstm"):
            raise ValueError(f"recurrent: expected 'gru' or 'lstm', got {cell!r}")
        in_dim = frontend.out_dim
        size = hidden[-1] if hidden else in_dim
        self.frontend = frontend
        self.embed = mlp([in_dim, *hidden[:-1]]) if len(hidden) > 1 else nn.Identity()
        embed_size = hidden[-2] if len(hidden) > 1 else in_dim
        rnn_class = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn_class(embed_size, size, batch_first=True)
        self.head = QHead(size, n_actions, dueling)

    def forward(self, obs: torch.Tensor, state: RecurrentState = None) -> torch.Tensor:
        h, _ = self.rnn(self.embed(self.frontend(obs)), state)
        return self.head(h)

    def step(self, obs: torch.Tensor, state: RecurrentState) -> tuple[torch.Tensor, RecurrentState]:
        h, state = self.rnn(self.embed(self.frontend(obs)).unsqueeze(1), state)
        return self.head(h[:, 0]), state

    def zero_state(self, batch: int) -> RecurrentState:
        size = self.rnn.hidden_size
        zeros = torch.zeros(1, batch, size)
        return (zeros, zeros.clone()) if isinstance(self.rnn, nn.LSTM) else zeros


def reset_state(state: RecurrentState, which: torch.Tensor) -> RecurrentState:
    """Zero the recurrent state of the batch rows where ``which`` (bool ``[B]``) is true."""
    if state is None:
        return None
    keep = (~which).to(torch.float32).view(1, -1, 1)
    if isinstance(state, tuple):
        return (state[0] * keep, state[1] * keep)
    return state * keep


STOP_BUFFERS = ("wait_bias", "wait_shrink", "wait_mean", "correct_shrink", "correct_mean")
"""A stopping network's tuned constants (:mod:`~avemotion.agents.dqn.stop_tuning`)."""


class StoppingQNetwork(nn.Module):
    """A Q-network for the stopping problem: class values ``r_wrong + (r_correct − r_wrong) ·
    p(k)`` from the frozen posterior front end, and a learnt Q(wait) (with ``learned_correct``
    also a learnt share of the correct reward) from class-agnostic confidence features, so
    that it cannot memorise the training clips."""

    recurrent = False

    def __init__(
        self,
        frontend: FrontEnd,
        n_actions: int,
        hidden: Sequence[int],
        rewards: tuple[float, float] = (1.0, -1.0),
        learned_correct: bool = False,
        time_feature: bool = True,
    ) -> None:
        super().__init__()
        self.time_feature = time_feature
        if frontend.kind != "posterior":
            raise ValueError("q_head 'stopping' needs frontend 'posterior'")
        self.frontend = frontend
        self.n_classes = n_actions - 1
        self.register_buffer("rewards", torch.tensor(rewards, dtype=torch.float32))
        features = self.n_classes + 2
        self.body = mlp([features, *hidden])
        width = hidden[-1] if hidden else features
        self.wait = nn.Linear(width, 1)
        self.correct = nn.Linear(width, 1) if learned_correct else None
        # Subtracted from Q(wait) when acting; 0 while learning, tuned afterwards for the
        # harmonic mean on the training speakers (avemotion.agents.dqn.stop_tuning).
        self.register_buffer("wait_bias", torch.zeros(()))
        # Shrinkage of the learnt wait value toward its mean over the training steps
        # (tuned with the bias): Q(wait) = (1 − α) · wait(h) + α · mean − bias.
        self.register_buffer("wait_shrink", torch.zeros(()))
        self.register_buffer("wait_mean", torch.zeros(()))
        # The same for the learnt share of a correct answer's reward (learned_correct):
        # with both shrunk fully, the rule reads the posterior's maximum alone.
        self.register_buffer("correct_shrink", torch.zeros(()))
        self.register_buffer("correct_mean", torch.zeros(()))

    def stop_parts(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(wait, share, p)`` before shrinkage and bias: the learnt wait value, the learnt
        share of a correct answer's reward (ones without ``learned_correct``) and the
        posterior."""
        logits = self.frontend(obs)[..., -self.n_classes - 1 : -1]  # the running-mean part
        time = obs[..., -1:] if self.time_feature else torch.zeros_like(obs[..., -1:])
        p = torch.softmax(logits, dim=-1)
        ranked = p.sort(dim=-1, descending=True).values
        entropy = -(p * p.clamp_min(1e-8).log()).sum(dim=-1, keepdim=True)
        h = self.body(torch.cat([ranked, entropy, time], dim=-1))
        wait = self.wait(h)
        share = (
            torch.sigmoid(self.correct(h)) if self.correct is not None else torch.ones_like(wait)
        )
        return wait, share, p

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.q_and_posterior(obs)[0]

    def q_and_posterior(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The Q-values (shrinkage and bias applied) and the posterior they were read from,
        in one pass."""
        wait, share, p = self.stop_parts(obs)
        if self.correct is not None:
            share = (1 - self.correct_shrink) * share + self.correct_shrink * self.correct_mean
        correct, wrong = self.rewards[0], self.rewards[1]
        wait = (1 - self.wait_shrink) * wait + self.wait_shrink * self.wait_mean
        wait = wait - self.wait_bias
        return torch.cat([wait, wrong + (correct - wrong) * share * p], dim=-1), p


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


def env_rewards(config: DQNConfig) -> RewardSpec:
    """The env reward this config trains on."""
    return RewardSpec.preset(
        config.reward, wait_cost=config.wait_cost, earliness_weight=config.earliness_weight
    )


def augment(online: torch.nn.Module, obs: torch.Tensor, noise: float) -> torch.Tensor:
    """Add ``noise`` × the per-feature frame std of Gaussian noise to all but the time feature."""
    if noise <= 0.0:
        return obs
    frontend = online.frontend
    if frontend.kind == "raw":
        scale = frontend.scale.clone()
        scale[-1] = 0.0
    else:
        scale = torch.cat([frontend.scale.repeat(frontend.parts), frontend.scale.new_zeros(1)])
    # the replay's batch is on the CPU while the network may sit on a GPU
    return obs + torch.randn_like(obs) * scale.to(obs.device) * noise
