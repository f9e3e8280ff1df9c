"""Hand-computed outputs of the Q-network parts (:mod:`avemotion.agents.dqn.networks`)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from avemotion.agents.dqn.networks import (
    FrontEnd,
    MLPQNetwork,
    QHead,
    RecurrentQNetwork,
    StoppingQNetwork,
    masked_argmax,
    reset_state,
)


def set_linear(layer: nn.Linear, weight: list[list[float]], bias: list[float]) -> None:
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.copy_(torch.tensor(bias))


def test_masked_argmax_skips_forbidden_actions() -> None:
    q = torch.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]])
    mask = torch.tensor([[False, True, True], [True, True, False]])
    # row 0: 3 is forbidden -> max(1, 2) at index 2;  row 1: 5 at index 1 is allowed
    assert masked_argmax(q, mask).tolist() == [2, 1]


def test_dueling_head_is_value_plus_centred_advantage() -> None:
    head = QHead(features=1, n_actions=2, dueling=True)
    set_linear(head.advantage, [[1.0], [3.0]], [0.0, 0.0])
    assert head.value is not None
    set_linear(head.value, [[2.0]], [0.5])
    q = head(torch.tensor([[1.0]]))
    # A = [1, 3], mean(A) = 2, V = 2 * 1 + 0.5 = 2.5 -> Q = 2.5 + [1, 3] - 2 = [1.5, 3.5]
    torch.testing.assert_close(q, torch.tensor([[1.5, 3.5]]), atol=1e-6, rtol=0.0)


def test_plain_head_is_the_advantage_layer() -> None:
    head = QHead(features=1, n_actions=2, dueling=False)
    set_linear(head.advantage, [[1.0], [3.0]], [0.25, 0.0])
    # Q = [1 * 2 + 0.25, 3 * 2] = [2.25, 6]
    torch.testing.assert_close(
        head(torch.tensor([[2.0]])), torch.tensor([[2.25, 6.0]]), atol=1e-6, rtol=0.0
    )


def test_raw_frontend_normalises_each_feature() -> None:
    frontend = FrontEnd(obs_dim=2, store_dim=1, n_classes=2, kind="raw")
    frontend.set(torch.tensor([1.0, 0.0]), torch.tensor([2.0, 0.5]))
    # (3 - 1) / 2 = 1;  (1 - 0) / 0.5 = 2
    out = frontend(torch.tensor([[3.0, 1.0]]))
    torch.testing.assert_close(out, torch.tensor([[1.0, 2.0]]), atol=1e-6, rtol=0.0)


def test_raw_frontend_clamps_a_zero_scale() -> None:
    frontend = FrontEnd(obs_dim=1, store_dim=1, n_classes=2, kind="raw")
    frontend.set(torch.zeros(1), torch.zeros(1))
    # scale clamped to 1e-6: 2e-6 / 1e-6 = 2
    assert frontend(torch.tensor([[2e-6]])).item() == pytest.approx(2.0, abs=1e-5)


def test_frontend_rejects_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="frontend"):
        FrontEnd(obs_dim=3, store_dim=1, n_classes=2, kind="pca")


def posterior_frontend() -> FrontEnd:
    """Observation ``[frame (2), running mean (2), time]``, 2 classes.

    shift [1, 0], scale [2, 1], weight [[1, -1], [0, 2]], bias [0.5, 0]:
    logits(x) = ((x - shift) / scale) @ weight + bias."""
    frontend = FrontEnd(obs_dim=5, store_dim=2, n_classes=2, kind="posterior")
    frontend.set(
        torch.tensor([1.0, 0.0]),
        torch.tensor([2.0, 1.0]),
        torch.tensor([[1.0, -1.0], [0.0, 2.0]]),
        torch.tensor([0.5, 0.0]),
    )
    return frontend


OBS = torch.tensor([[3.0, 1.0, 1.0, 2.0, 0.5]])
# frame [3, 1]: z = [1, 1] -> [1 + 0, -1 + 2] + [0.5, 0] = [1.5, 1.0]
# mean  [1, 2]: z = [0, 2] -> [0, 4] + [0.5, 0] = [0.5, 4.0]


def test_posterior_frontend_maps_every_part_to_class_logits_and_keeps_time() -> None:
    frontend = posterior_frontend()
    assert frontend.parts == 2 and frontend.out_dim == 5
    # no calibration: exp(0 + 0 * log(steps)) = 1
    expected = torch.tensor([[1.5, 1.0, 0.5, 4.0, 0.5]])
    torch.testing.assert_close(frontend(OBS), expected, atol=1e-6, rtol=0.0)


def test_posterior_frontend_calibration_scales_logits_by_steps_seen() -> None:
    frontend = posterior_frontend()
    frontend.set_calibration(math.log(2.0), 1.0, max_length=4)
    # time 0.5 -> steps = round(0.5 * 4) + 1 = 3 -> factor exp(log 2 + 1 * log 3) = 6
    expected = torch.tensor([[9.0, 6.0, 3.0, 24.0, 0.5]])
    torch.testing.assert_close(frontend(OBS), expected, atol=1e-5, rtol=0.0)
    # time 0 -> steps = 1 -> factor exp(log 2 + log 1) = 2
    at_start = OBS.clone()
    at_start[0, -1] = 0.0
    expected = torch.tensor([[3.0, 2.0, 1.0, 8.0, 0.0]])
    torch.testing.assert_close(frontend(at_start), expected, atol=1e-5, rtol=0.0)


def test_mlp_network_applies_relu_between_body_and_dueling_head() -> None:
    frontend = FrontEnd(obs_dim=2, store_dim=1, n_classes=2, kind="raw")
    net = MLPQNetwork(frontend, n_actions=2, hidden=[1], dueling=True)
    set_linear(net.body[0], [[1.0, -1.0]], [0.0])
    set_linear(net.head.advantage, [[1.0], [-1.0]], [0.0, 0.0])
    assert net.head.value is not None
    set_linear(net.head.value, [[1.0]], [0.5])
    q = net(torch.tensor([[2.0, 0.5], [0.5, 2.0]]))
    # row 0: h = relu(2 - 0.5) = 1.5; A = [1.5, -1.5], mean 0; V = 2 -> [3.5, 0.5]
    # row 1: h = relu(0.5 - 2) = 0;   A = [0, 0];              V = 0.5 -> [0.5, 0.5]
    torch.testing.assert_close(q, torch.tensor([[3.5, 0.5], [0.5, 0.5]]), atol=1e-6, rtol=0.0)


def stopping_net(learned_correct: bool = False, time_feature: bool = True) -> StoppingQNetwork:
    """Store dim 1, 2 classes: obs ``[frame, running mean m, time]``; logits ``[m, -m]``.

    No hidden layer: the wait value reads ``[p_max, p_min, entropy, time]`` directly,
    wait = 2 * p_max + 0 * p_min + 1 * entropy + 1 * time."""
    frontend = FrontEnd(obs_dim=3, store_dim=1, n_classes=2, kind="posterior")
    frontend.set(torch.zeros(1), torch.ones(1), torch.tensor([[1.0, -1.0]]), torch.zeros(2))
    net = StoppingQNetwork(
        frontend,
        3,
        [],
        rewards=(1.0, -1.0),
        learned_correct=learned_correct,
        time_feature=time_feature,
    )
    set_linear(net.wait, [[2.0, 0.0, 1.0, 1.0]], [0.0])
    if net.correct is not None:
        set_linear(net.correct, [[0.0, 0.0, 0.0, 0.0]], [0.0])  # sigmoid(0) = 0.5
    return net


# m = -log(3) / 2: logits [-log 3 / 2, log 3 / 2] -> p = [1/4, 3/4]. The frame (5) would
# give a confident class 0, so any use of the frame part instead of the mean shows.
STOP_OBS = torch.tensor([[5.0, -math.log(3.0) / 2, 0.5]])
ENTROPY = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))  # ≈ 0.5623


def test_stop_parts_reads_the_running_mean_posterior() -> None:
    wait, share, p = stopping_net().stop_parts(STOP_OBS)
    torch.testing.assert_close(p, torch.tensor([[0.25, 0.75]]), atol=1e-6, rtol=0.0)
    # wait = 2 * 0.75 (sorted: largest first) + H + 0.5
    assert wait.item() == pytest.approx(2.0 + ENTROPY, abs=1e-6)
    assert share.item() == 1.0


def test_stop_parts_without_time_feature_reads_zero_time() -> None:
    wait, _, _ = stopping_net(time_feature=False).stop_parts(STOP_OBS)
    # wait = 1.5 + H + 1 * 0
    assert wait.item() == pytest.approx(1.5 + ENTROPY, abs=1e-6)


def test_q_values_are_wait_then_expected_class_rewards() -> None:
    q, p = stopping_net().q_and_posterior(STOP_OBS)
    # classes: -1 + (1 - (-1)) * 1 * p = -1 + 2 * [1/4, 3/4] = [-0.5, 0.5]
    expected = torch.tensor([[2.0 + ENTROPY, -0.5, 0.5]])
    torch.testing.assert_close(q, expected, atol=1e-6, rtol=0.0)
    torch.testing.assert_close(p, torch.tensor([[0.25, 0.75]]), atol=1e-6, rtol=0.0)


def test_q_values_apply_wait_shrink_and_bias() -> None:
    net = stopping_net()
    net.wait_shrink.fill_(0.25)
    net.wait_mean.fill_(1.0)
    net.wait_bias.fill_(0.5)
    q = net(STOP_OBS)
    # wait = 0.75 * (2 + H) + 0.25 * 1 - 0.5 = 1.25 + 0.75 H; class values unchanged
    expected = torch.tensor([[1.25 + 0.75 * ENTROPY, -0.5, 0.5]])
    torch.testing.assert_close(q, expected, atol=1e-6, rtol=0.0)


def test_learned_correct_share_scales_and_shrinks_class_values() -> None:
    net = stopping_net(learned_correct=True)
    wait, share, _ = net.stop_parts(STOP_OBS)
    assert share.item() == pytest.approx(0.5, abs=1e-6)  # sigmoid(0)
    # classes: -1 + 2 * 0.5 * p = -1 + p = [-0.75, -0.25]
    torch.testing.assert_close(net(STOP_OBS)[:, 1:], torch.tensor([[-0.75, -0.25]]))
    net.correct_shrink.fill_(0.5)
    net.correct_mean.fill_(1.0)
    # share = 0.5 * 0.5 + 0.5 * 1 = 0.75 -> -1 + 1.5 * p = [-0.625, 0.125]
    torch.testing.assert_close(net(STOP_OBS)[:, 1:], torch.tensor([[-0.625, 0.125]]))


def test_stopping_network_needs_a_posterior_frontend() -> None:
    with pytest.raises(ValueError, match="posterior"):
        StoppingQNetwork(FrontEnd(3, 1, 2, "raw"), 3, [])


def test_reset_state_zeroes_only_the_chosen_rows() -> None:
    state = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])  # [layers 1, batch 2, hidden 2]
    out = reset_state(state, torch.tensor([True, False]))
    torch.testing.assert_close(out, torch.tensor([[[0.0, 0.0], [3.0, 4.0]]]))


def test_reset_state_handles_lstm_pairs_and_none() -> None:
    h = torch.tensor([[[1.0], [2.0]]])
    c = torch.tensor([[[5.0], [6.0]]])
    out = reset_state((h, c), torch.tensor([False, True]))
    assert isinstance(out, tuple)
    torch.testing.assert_close(out[0], torch.tensor([[[1.0], [0.0]]]))
    torch.testing.assert_close(out[1], torch.tensor([[[5.0], [0.0]]]))
    assert reset_state(None, torch.tensor([True])) is None


def test_recurrent_zero_state_shapes() -> None:
    frontend = FrontEnd(obs_dim=2, store_dim=1, n_classes=2, kind="raw")
    gru = RecurrentQNetwork(frontend, 3, [4], dueling=True, cell="gru")
    lstm = RecurrentQNetwork(frontend, 3, [4], dueling=True, cell="lstm")
    assert gru.zero_state(2).shape == (1, 2, 4)
    h, c = lstm.zero_state(2)  # type: ignore[misc]
    assert h.shape == c.shape == (1, 2, 4) and not h.any() and not c.any()
    with pytest.raises(ValueError, match="recurrent"):
        RecurrentQNetwork(frontend, 3, [4], dueling=True, cell="rnn")
