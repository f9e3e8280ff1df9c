"""The losses of our DQN: masked (Double) n-step TD targets, plus counterfactual targets
for the classification actions (a classification ends the episode, so its value is its
reward, known from the clip's label without a rollout)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from avemotion.agents.networks import masked_argmax


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


def class_targets(
    label: torch.Tensor, n_actions: int, correct_reward: torch.Tensor, wrong_reward: float
) -> torch.Tensor:
    """Reward of each classification action (columns 1..K) given the true label and what a
    correct answer earns there (``correct_reward`` has the label's shape)."""
    correct = torch.nn.functional.one_hot(label, n_actions - 1).bool()
    return torch.where(correct, correct_reward[..., None], wrong_reward)


def td_loss(
    online: torch.nn.Module,
    target: torch.nn.Module,
    batch: Any,
    config: Any,
    rewards: tuple[float, float] = (1.0, -1.0),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Huber loss of ``Q(s, a)`` against the masked (Double) n-step target, and mean Q.

    With ``counterfactual_classes`` the loss also covers every classification action;
    ``rewards[1]`` is the reward of a wrong answer."""
    obs = augment(online, batch.obs, config.input_noise)
    q_all = online(obs)
    q = q_all.gather(1, batch.action[:, None])[:, 0]
    with torch.no_grad():
        next_target = target(batch.bootstrap_obs)
        chooser = online(batch.bootstrap_obs) if config.double else next_target
        best = masked_argmax(chooser, batch.bootstrap_mask)
        value = next_target.gather(1, best[:, None])[:, 0]
        y = batch.returns + batch.discount * value
    loss = F.smooth_l1_loss(q, y)
    if config.counterfactual_classes:
        loss = loss + F.smooth_l1_loss(
            q_all[:, 1:],
            class_targets(
                batch.label,
                q_all.shape[1],
                _or_constant(batch.correct_reward, batch.label, rewards[0]),
                rewards[1],
            ),
        )
    return loss, q.mean()


def recurrent_td_loss(
    online: torch.nn.Module,
    target: torch.nn.Module,
    episodes: dict[str, torch.Tensor],
    config: Any,
    rewards: tuple[float, float] = (1.0, -1.0),
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same loss over every step of whole sampled episodes (zero initial state)."""
    obs, mask, action, reward = (
        episodes["obs"],
        episodes["mask"],
        episodes["action"],
        episodes["reward"],
    )
    length, terminated = episodes["length"], episodes["terminated"]
    batch, steps = action.shape
    n, gamma = config.n_step, config.gamma
    q_all = online(augment(online, obs, config.input_noise))
    q = q_all[:, :steps].gather(2, action[..., None])[..., 0]
    with torch.no_grad():
        t = torch.arange(steps)[None, :]
        # A terminated episode ends with its one classification (or a masked wait): the
        # look-ahead of earlier steps stops before it and bootstraps from the state where it
        # was taken (as in TransitionReplay), and that last step's target is its reward.
        end = torch.where(terminated, length - 1, length)[:, None]
        boot = torch.where(t < end, torch.minimum(t + n, end), length[:, None])
        within = (t[..., None] + torch.arange(n)[None, None, :]) < boot[..., None]
        padded = F.pad(reward, (0, n))
        returns = sum(gamma**k * padded[:, k : k + steps] * within[..., k] for k in range(n))
        discount = gamma ** (boot - t).float() * ~(terminated[:, None] & (boot == length[:, None]))
        rows = torch.arange(batch)[:, None]
        next_target = target(obs)[rows, boot]
        chooser = q_all.detach()[rows, boot] if config.double else next_target
        best = masked_argmax(chooser, mask[rows, boot])
        y = returns + discount * next_target.gather(2, best[..., None])[..., 0]
        valid = t < length[:, None]
    loss = F.smooth_l1_loss(q[valid], y[valid])
    if config.counterfactual_classes:
        label = episodes["label"][:, None].expand(-1, steps)
        correct = _or_constant(episodes.get("correct_reward"), label, rewards[0])
        targets = class_targets(label, q_all.shape[2], correct, rewards[1])
        loss = loss + F.smooth_l1_loss(q_all[:, :steps, 1:][valid], targets[valid])
    return loss, q[valid].mean()


def _or_constant(
    correct_reward: torch.Tensor | None, like: torch.Tensor, constant: float
) -> torch.Tensor:
    """Per-row correct-answer rewards, or ``constant`` everywhere when there are none."""
    if correct_reward is not None:
        return correct_reward
    return torch.full(like.shape, constant, dtype=torch.float32)
