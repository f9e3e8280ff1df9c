"""The softmax regression's fit: its faster weight gradient changes no iterate."""

from __future__ import annotations

import numpy as np
import torch

from avemotion.posterior.softmax import SoftmaxRegression, _RowsTimesWeight


def reference_fit(
    x: np.ndarray, y: np.ndarray, n_classes: int, l2: float, init: SoftmaxRegression | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The fit as plain autograd computes it (``xt @ weight`` differentiated by torch)."""
    x = np.asarray(x, dtype=np.float32)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    xt = torch.from_numpy((x - mean) / std)
    yt = torch.from_numpy(y)
    if init is not None:
        weight = init.weight.detach().clone().requires_grad_()
        bias = init.bias.detach().clone().requires_grad_()
    else:
        generator = torch.Generator().manual_seed(0)
        weight = (torch.randn(x.shape[1], n_classes, generator=generator) * 0.01).requires_grad_()
        bias = torch.zeros(n_classes, requires_grad=True)
    optimiser = torch.optim.LBFGS([weight, bias], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ weight + bias, yt) + l2 * (weight**2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    return weight.detach(), bias.detach()


def test_weight_gradient_by_hand() -> None:
    """rows [[1, 2], [3, 4]], weight [[1], [1]]: forward [3, 7]; with an upstream gradient
    of ones the weight's gradient is rows.T @ [1, 1] = [1 + 3, 2 + 4] = [4, 6]."""
    rows = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    weight = torch.ones(2, 1, requires_grad=True)
    out = _RowsTimesWeight.apply(weight, rows, rows.t().contiguous())
    assert out[:, 0].tolist() == [3.0, 7.0]
    out.sum().backward()
    assert weight.grad[:, 0].tolist() == [4.0, 6.0]


def test_fit_is_bit_identical_to_plain_autograd() -> None:
    torch.set_num_threads(1)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(600, 24)) + np.repeat(np.eye(3, 24) * 1.5, 200, axis=0)
    y = np.repeat(np.arange(3), 200).astype(np.int64)
    fitted = SoftmaxRegression(l2=1e-2).fit(x, y, 3)
    weight, bias = reference_fit(x, y, 3, 1e-2, None)
    assert torch.equal(fitted.weight.detach(), weight) and torch.equal(fitted.bias.detach(), bias)
    # a warm start on a subset, as a cross-fitting fold is fitted
    warm = SoftmaxRegression(l2=1e-2).fit(x[::2], y[::2], 3, init=fitted)
    weight, bias = reference_fit(x[::2], y[::2], 3, 1e-2, fitted)
    assert torch.equal(warm.weight.detach(), weight) and torch.equal(warm.bias.detach(), bias)
