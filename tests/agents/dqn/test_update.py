"""Hand-computed values of one DQN update (:func:`avemotion.agents.dqn.dqn.update`): its
loss, the optimiser step and the target update.

The networks are linear Q-tables: a raw front end that passes the observation through
(shift 0, scale 1), no hidden layer and a plain head, so ``Q(s) = W @ s + b`` with ``W``
and ``b`` set by hand. Actions are ``[wait, class 0, class 1]``.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from avemotion.agents.dqn.dqn import class_targets, update
from avemotion.agents.dqn.networks import FrontEnd, MLPQNetwork, augment
from avemotion.agents.dqn.replay import EpisodeBatch, NStepBatch, episode_returns

N_ACTIONS = 3


def linear_q(weight: list[list[float]], bias: list[float] | None = None) -> MLPQNetwork:
    """``Q(s) = weight @ s + bias`` (``weight`` is ``[n_actions, obs_dim]``)."""
    obs_dim = len(weight[0])
    net = MLPQNetwork(FrontEnd(obs_dim, obs_dim, 2, "raw"), N_ACTIONS, [], dueling=False)
    with torch.no_grad():
        net.head.advantage.weight.copy_(torch.tensor(weight))
        net.head.advantage.bias.copy_(torch.tensor(bias or [0.0] * N_ACTIONS))
    return net


def config(
    double: bool = True,
    counterfactual: bool = False,
    n_step: int = 1,
    gamma: float = 0.9,
    max_grad_norm: float = 10.0,
    tau: float = 1.0,
) -> SimpleNamespace:
    return SimpleNamespace(
        input_noise=0.0,
        double=double,
        counterfactual_classes=counterfactual,
        n_step=n_step,
        gamma=gamma,
        max_grad_norm=max_grad_norm,
        tau=tau,
    )


def td_loss(online, target, batch, config, rewards=(1.0, -1.0)) -> tuple[float, float]:
    """The loss and mean Q of one :func:`update` that leaves the networks as they are."""
    optimiser = torch.optim.SGD(online.parameters(), lr=0.0)
    return update((online, target), optimiser, batch, config, rewards[1], sync_target=False)


# Online: Q(s=[1,0]) = [2, 0.5, -0.5];  Q(s'=[0,1]) = [0, 3, 2].
# Target: Q(s'=[0,1]) = [5, 4, 1].  s' allows wait and class 1 only (mask [T, F, T]).
ONLINE = [[2.0, 0.0], [0.5, 3.0], [-0.5, 2.0]]
TARGET = [[0.0, 5.0], [0.0, 4.0], [0.0, 1.0]]


def one_transition(
    returns: float = 0.5,
    discount: float = 0.9,
    correct_reward: torch.Tensor | None = None,
) -> NStepBatch:
    correct = torch.ones(1) if correct_reward is None else correct_reward
    return NStepBatch(
        obs=torch.tensor([[1.0, 0.0]]),
        action=torch.tensor([0]),
        returns=torch.tensor([returns]),
        bootstrap_obs=torch.tensor([[0.0, 1.0]]),
        bootstrap_mask=torch.tensor([[True, False, True]]),
        discount=torch.tensor([discount]),
        label=torch.tensor([1]),
        correct_reward=correct,
        valid=torch.ones(1, dtype=torch.bool),
    )


def test_td_loss_double_dqn_target_uses_masked_online_argmax() -> None:
    loss, q_mean = td_loss(linear_q(ONLINE), linear_q(TARGET), one_transition(), config())
    # online picks a* = 2 at s' (class 0, value 3, is masked; 2 > 0); Q_target(s', 2) = 1
    # y = 0.5 + 0.9 * 1 = 1.4;  q = Q(s, wait) = 2;  |q - y| = 0.6 < 1 -> 0.5 * 0.36 = 0.18
    assert loss == pytest.approx(0.18, abs=1e-6)
    assert q_mean == pytest.approx(2.0, abs=1e-6)


def test_td_loss_without_double_takes_the_target_masked_max() -> None:
    loss, _ = td_loss(linear_q(ONLINE), linear_q(TARGET), one_transition(), config(double=False))
    # target masked max at s': max(Q_t(wait) = 5, Q_t(class 1) = 1) = 5
    # y = 0.5 + 0.9 * 5 = 5.0;  |2 - 5| = 3 >= 1 -> 3 - 0.5 = 2.5
    assert loss == pytest.approx(2.5, abs=1e-6)


def test_td_loss_terminal_transition_does_not_bootstrap() -> None:
    batch = NStepBatch(
        obs=torch.tensor([[1.0, 0.0], [1.0, 0.0]]),
        action=torch.tensor([0, 1]),
        returns=torch.tensor([1.5, 1.5]),
        bootstrap_obs=torch.tensor([[0.0, 1.0], [0.0, 1.0]]),
        bootstrap_mask=torch.tensor([[True, False, True], [True, False, True]]),
        discount=torch.tensor([0.0, 0.9]),
        label=torch.tensor([1, 1]),
        correct_reward=torch.ones(2),
        valid=torch.ones(2, dtype=torch.bool),
    )
    loss, q_mean = td_loss(linear_q(ONLINE), linear_q(TARGET), batch, config())
    # row 0 (terminal): y = 1.5 + 0 * 1 = 1.5;  q = 2   -> 0.5 * 0.5^2 = 0.125
    # row 1:            y = 1.5 + 0.9 * 1 = 2.4; q = 0.5 -> |1.9| - 0.5 = 1.4
    # mean = (0.125 + 1.4) / 2 = 0.7625;  mean q = (2 + 0.5) / 2 = 1.25
    assert loss == pytest.approx(0.7625, abs=1e-6)
    assert q_mean == pytest.approx(1.25, abs=1e-6)


def test_td_loss_counterfactual_classes_with_constant_rewards() -> None:
    loss, _ = td_loss(
        linear_q(ONLINE),
        linear_q(TARGET),
        one_transition(),
        config(counterfactual=True),
        rewards=(1.0, -1.0),
    )
    # label 1 -> class targets [wrong, correct] = [-1, 1]; Q(s, classes) = [0.5, -0.5]
    # Huber: |1.5| - 0.5 = 1.0 and |-1.5| - 0.5 = 1.0 -> mean 1.0;  TD part 0.18
    assert loss == pytest.approx(0.18 + 1.0, abs=1e-6)


def test_td_loss_counterfactual_classes_use_per_row_correct_reward() -> None:
    batch = one_transition(correct_reward=torch.tensor([0.25]))
    loss, _ = td_loss(linear_q(ONLINE), linear_q(TARGET), batch, config(counterfactual=True))
    # targets [-1, 0.25]; diffs 0.5 - (-1) = 1.5 -> 1.0 and -0.5 - 0.25 = -0.75 -> 0.28125
    # class part (1.0 + 0.28125) / 2 = 0.640625;  TD part 0.18
    assert loss == pytest.approx(0.18 + 0.640625, abs=1e-6)


def test_class_targets_put_the_correct_reward_on_the_label_column() -> None:
    targets = class_targets(torch.tensor([0, 1]), 3, torch.tensor([0.7, 0.2]), -0.5)
    # row 0: label 0 -> [0.7, wrong];  row 1: label 1 -> [wrong, 0.2]
    expected = torch.tensor([[0.7, -0.5], [-0.5, 0.2]])
    torch.testing.assert_close(targets, expected, atol=1e-6, rtol=0.0)


def test_augment_without_noise_returns_the_observation() -> None:
    obs = torch.tensor([[1.0, 0.5]])
    assert augment(linear_q(ONLINE), obs, 0.0) is obs


def test_augment_raw_scales_noise_by_feature_std_and_keeps_time() -> None:
    net = linear_q(ONLINE)
    net.frontend.set(torch.zeros(2), torch.tensor([2.0, 3.0]))
    obs = torch.tensor([[1.0, 0.5], [-1.0, 0.25]])
    torch.manual_seed(0)
    noisy = augment(net, obs, 0.1)
    torch.manual_seed(0)
    z = torch.randn(2, 2)
    # feature 0: obs + z * 2 * 0.1; time column (scale set to 0) untouched
    torch.testing.assert_close(noisy[:, 0], obs[:, 0] + z[:, 0] * 0.2, atol=1e-6, rtol=0.0)
    assert torch.equal(noisy[:, 1], obs[:, 1])


def test_augment_posterior_repeats_the_std_over_every_part() -> None:
    frontend = FrontEnd(obs_dim=5, store_dim=2, n_classes=2, kind="posterior")
    frontend.set(torch.zeros(2), torch.tensor([2.0, 3.0]), torch.zeros(2, 2), torch.zeros(2))
    net = SimpleNamespace(frontend=frontend)
    obs = torch.zeros(1, 5)
    torch.manual_seed(1)
    noisy = augment(net, obs, 0.5)  # type: ignore[arg-type]
    torch.manual_seed(1)
    z = torch.randn(1, 5)
    # noise scale = [2, 3, 2, 3, 0] * 0.5 = [1, 1.5, 1, 1.5, 0]
    expected = z * torch.tensor([1.0, 1.5, 1.0, 1.5, 0.0])
    torch.testing.assert_close(noisy, expected, atol=1e-6, rtol=0.0)


# Recurrent loss: observation row t is the one-hot e_t, so Q(row t) is column t of W.
# Online Q(row 2) = [0.2, 0.9, 1.5]; target Q(row 2) = [2, 0.8, 5]; row 2 masks class 1.
# Target row 3 (after the episode) = 100 everywhere: it must never be used.
REC_ONLINE = [[0.0, 0.5, 0.2, 0.0], [0.0, 0.0, 0.9, 0.0], [0.0, 0.0, 1.5, 0.0]]
REC_TARGET = [[0.0, 0.0, 2.0, 100.0], [0.0, 0.0, 0.8, 100.0], [0.0, 0.0, 5.0, 100.0]]


def episodes(
    actions: list[list[int]],
    rewards: list[list[float]],
    lengths: list[int],
    terminated: list[bool],
    label: int = 0,
    correct: list[list[float]] | None = None,
    n: int = 2,
    gamma: float = 0.5,
) -> EpisodeBatch:
    """Padded episodes whose observation row t is the one-hot e_t (row 2 masks class 1)."""
    length = torch.tensor(lengths)
    steps = len(actions[0])
    mask = torch.ones(len(actions), steps + 1, N_ACTIONS, dtype=torch.bool)
    mask[:, 2, 2] = False
    returns, discount, boot = episode_returns(
        torch.tensor(rewards), length, torch.tensor(terminated), n, gamma
    )
    return EpisodeBatch(
        obs=torch.eye(4)[: steps + 1][None].repeat(len(actions), 1, 1),
        mask=mask,
        action=torch.tensor(actions),
        returns=returns,
        discount=discount,
        boot=boot,
        label=torch.full((len(actions), steps), label),
        correct_reward=torch.tensor(correct) if correct else torch.ones(len(actions), steps),
        valid=torch.arange(steps)[None, :] < length[:, None],
    )


def episode(
    actions: list[int], rewards: list[float], terminated: bool, label: int = 0, **kwargs
) -> EpisodeBatch:
    return episodes([actions], [rewards], [len(actions)], [terminated], label, **kwargs)


def test_recurrent_td_loss_n_step_stops_before_the_classification() -> None:
    batch = episode([0, 0, 1], [-0.1, -0.1, 1.0], terminated=True)
    loss, q_mean = td_loss(
        linear_q(REC_ONLINE), linear_q(REC_TARGET), batch, config(n_step=2, gamma=0.5)
    )
    # every look-ahead stops at row 2 (where the class was chosen): online masked
    # argmax there is class 0 (0.9; class 1 is masked) -> Q_target(row 2, 1) = 0.8
    # t=0: y = -0.1 + 0.5 * -0.1 + 0.5^2 * 0.8 = 0.05;  q = 0    -> 0.5 * 0.05^2 = 0.00125
    # t=1: y = -0.1 + 0.5^1 * 0.8 = 0.3;               q = 0.5  -> 0.5 * 0.2^2  = 0.02
    # t=2: y = 1.0 (terminal, no bootstrap from row 3); q = 0.9 -> 0.5 * 0.1^2  = 0.005
    assert loss == pytest.approx((0.00125 + 0.02 + 0.005) / 3, abs=1e-6)
    assert q_mean == pytest.approx((0.0 + 0.5 + 0.9) / 3, abs=1e-6)


def test_recurrent_td_loss_truncated_episode_bootstraps_from_final_observation() -> None:
    batch = episode([0, 0], [-0.1, -0.2], terminated=False)
    loss, _ = td_loss(
        linear_q(REC_ONLINE), linear_q(REC_TARGET), batch, config(n_step=2, gamma=0.5)
    )
    # both steps bootstrap from row 2 (the final observation), value 0.8 as above
    # t=0: y = -0.1 + 0.5 * -0.2 + 0.25 * 0.8 = 0.0;  q = 0   -> 0
    # t=1: y = -0.2 + 0.5 * 0.8 = 0.2;               q = 0.5 -> 0.5 * 0.3^2 = 0.045
    assert loss == pytest.approx(0.045 / 2, abs=1e-6)


def test_recurrent_td_loss_without_double_takes_the_target_masked_max() -> None:
    batch = episode([0, 0], [-0.1, -0.2], terminated=False)
    loss, _ = td_loss(
        linear_q(REC_ONLINE),
        linear_q(REC_TARGET),
        batch,
        config(double=False, n_step=2, gamma=0.5),
    )
    # target masked max at row 2: max(2, 0.8) = 2 (class 1, 5.0, is masked)
    # t=0: y = -0.2 + 0.25 * 2 = 0.3; q = 0   -> 0.045
    # t=1: y = -0.2 + 0.5 * 2 = 0.8;  q = 0.5 -> 0.5 * 0.3^2 = 0.045
    assert loss == pytest.approx(0.045, abs=1e-6)


def test_recurrent_td_loss_ignores_padded_steps() -> None:
    batch = episodes([[0, 0], [1, 0]], [[-0.1, -0.2], [1.0, 0.0]], [2, 1], [False, True])
    loss, q_mean = td_loss(
        linear_q(REC_ONLINE), linear_q(REC_TARGET), batch, config(n_step=2, gamma=0.5)
    )
    # long episode as in the truncated test: 0 and 0.045; short: y = 1.0 (terminal),
    # q = Q(row 0, class 0) = 0 -> 1 - 0.5 = 0.5; its padded step 1 is not counted
    assert loss == pytest.approx((0.0 + 0.045 + 0.5) / 3, abs=1e-6)
    assert q_mean == pytest.approx((0.0 + 0.5 + 0.0) / 3, abs=1e-6)


def test_recurrent_td_loss_counterfactual_classes_cover_every_valid_step() -> None:
    batch = episode([0, 0], [-0.1, -0.2], terminated=False, label=0, correct=[[1.0, 0.5]])
    loss, _ = td_loss(
        linear_q(REC_ONLINE),
        linear_q(REC_TARGET),
        batch,
        config(counterfactual=True, n_step=2, gamma=0.5),
        rewards=(1.0, 0.0),
    )
    # label 0: targets t=0 [1.0, 0], t=1 [0.5, 0]; Q(classes) is 0 at rows 0 and 1
    # Huber: |-1| -> 0.5, 0, |-0.5| -> 0.125, 0 -> mean 0.625 / 4 = 0.15625
    # TD part 0.045 / 2 (the truncated case above)
    assert loss == pytest.approx(0.0225 + 0.15625, abs=1e-6)


def test_update_clips_the_gradient_norm_before_the_optimiser_step() -> None:
    """The double-DQN case above: dL/dq = q − y = 0.6, on W[wait, 0] (s = [1, 0]) and
    b[wait]; norm 0.6·√2 clipped to 0.3 gives 0.3/√2 each; SGD at lr 1 takes it away."""
    online = linear_q(ONLINE)
    optimiser = torch.optim.SGD(online.parameters(), lr=1.0)
    update(
        (online, linear_q(TARGET)),
        optimiser,
        one_transition(),
        config(max_grad_norm=0.3),
        -1.0,
        False,
    )
    step = 0.3 / 2**0.5
    assert online.head.advantage.weight[0, 0].item() == pytest.approx(2.0 - step, abs=1e-6)
    assert online.head.advantage.bias[0].item() == pytest.approx(-step, abs=1e-6)
    assert online.head.advantage.weight[1:].tolist() == [[0.5, 3.0], [-0.5, 2.0]]


def test_update_moves_the_target_by_tau_and_copies_its_buffers_when_asked() -> None:
    """Target 0 → online W, τ = 0.25 (no optimiser step: lr 0): the target's W becomes
    TARGET + 0.25 · (ONLINE − TARGET); the front end's buffers are copied whole."""
    online, target = linear_q(ONLINE), linear_q(TARGET)
    online.frontend.set(torch.zeros(2), torch.tensor([2.0, 3.0]))
    optimiser = torch.optim.SGD(online.parameters(), lr=0.0)
    update((online, target), optimiser, one_transition(), config(tau=0.25), -1.0, False)
    assert target.head.advantage.weight.tolist() == TARGET  # not asked: unchanged
    update((online, target), optimiser, one_transition(), config(tau=0.25), -1.0, True)
    expected = torch.tensor(TARGET) + 0.25 * (torch.tensor(ONLINE) - torch.tensor(TARGET))
    torch.testing.assert_close(target.head.advantage.weight.detach(), expected)
    assert target.frontend.scale.tolist() == [2.0, 3.0]


def test_episode_returns_stop_before_the_classification_and_skip_the_padding() -> None:
    """n = 2, γ = 0.5; episode 0 terminated by a class at t = 2, episode 1 truncated at 1."""
    reward = torch.tensor([[-0.1, -0.1, 1.0], [-0.2, 0.0, 0.0]])
    returns, discount, boot = episode_returns(
        reward, torch.tensor([3, 1]), torch.tensor([True, False]), 2, 0.5
    )
    # ep 0: t0 -> -0.1 + 0.5·-0.1, boot 2, discount 0.25; t1 -> -0.1, boot 2, 0.5;
    #       t2 -> its reward 1.0, no bootstrap (boot = length 3, discount 0)
    # ep 1: t0 -> -0.2, boot 1 (the final observation), discount 0.5
    assert boot.tolist()[0] == [2, 2, 3] and boot[1, 0].item() == 1
    torch.testing.assert_close(returns[0], torch.tensor([-0.15, -0.1, 1.0]))
    torch.testing.assert_close(discount[0], torch.tensor([0.25, 0.5, 0.0]))
    assert returns[1, 0].item() == pytest.approx(-0.2) and discount[1, 0].item() == 0.5
