"""The two small fits every posterior model here is made of: a softmax regression and a
step-count calibration of its logits."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class _RowsTimesWeight(torch.autograd.Function):
    """``rows @ weight`` whose backward reads a contiguous copy of ``rows.T``.

    Autograd's own backward of ``rows @ weight`` computes ``rows.t() @ grad`` on the
    transposed *view*, which single-threaded MKL runs about three times slower than the
    same product on a contiguous copy. The product, and so every L-BFGS iterate, is the
    same (``tests/posterior/test_softmax.py`` checks the fitted weights bit for bit
    against plain autograd); only the memory layout of one operand differs.
    """

    @staticmethod
    def forward(ctx: Any, weight: torch.Tensor, rows: torch.Tensor, rows_t: torch.Tensor) -> Any:
        ctx.rows_t = rows_t
        return rows @ weight

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        return ctx.rows_t @ grad, None, None


class SoftmaxRegression:
    """Multinomial logistic regression with L2, fitted by L-BFGS on standardised inputs."""

    def __init__(self, l2: float = 1e-2, max_iter: int = 200) -> None:
        self.l2, self.max_iter = l2, max_iter

    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        n_classes: int,
        init: SoftmaxRegression | None = None,
    ) -> SoftmaxRegression:
        """Fit on rows ``x`` and labels ``y``; ``init`` (a model fitted on similar data, e.g.
        all folds) is a warm start, which needs far fewer L-BFGS iterations."""
        x = np.asarray(x, dtype=np.float32)
        self.mean, self.std = x.mean(axis=0), x.std(axis=0) + 1e-6
        xt = torch.from_numpy((x - self.mean) / self.std)
        xt_t = xt.t().contiguous()  # the weight gradient's operand (see _RowsTimesWeight)
        yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
        if init is not None:
            self.weight = init.weight.detach().clone().requires_grad_()
            self.bias = init.bias.detach().clone().requires_grad_()
        else:
            generator = torch.Generator().manual_seed(0)
            self.weight = (
                torch.randn(x.shape[1], n_classes, generator=generator) * 0.01
            ).requires_grad_()
            self.bias = torch.zeros(n_classes, requires_grad=True)
        optimiser = torch.optim.LBFGS(
            [self.weight, self.bias], max_iter=self.max_iter, line_search_fn="strong_wolfe"
        )

        def closure() -> torch.Tensor:
            optimiser.zero_grad()
            loss = (
                torch.nn.functional.cross_entropy(
                    _RowsTimesWeight.apply(self.weight, xt, xt_t) + self.bias, yt
                )
                + self.l2 * (self.weight**2).sum()
            )
            loss.backward()
            return loss

        optimiser.step(closure)
        return self

    def logits(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            xt = torch.from_numpy(
                ((np.asarray(x, dtype=np.float32) - self.mean) / self.std).astype(np.float32)
            )
            return (xt @ self.weight + self.bias).numpy()

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return torch.softmax(torch.from_numpy(self.logits(x)), dim=1).numpy()

    def arrays(self) -> dict[str, np.ndarray]:
        """The fitted parameters as plain arrays (for ``np.savez``)."""
        return {
            "mean": np.asarray(self.mean, np.float32),
            "std": np.asarray(self.std, np.float32),
            "weight": self.weight.detach().numpy().astype(np.float32),
            "bias": self.bias.detach().numpy().astype(np.float32),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], l2: float) -> SoftmaxRegression:
        model = cls(l2=l2)
        model.mean, model.std = arrays["mean"], arrays["std"]
        model.weight = torch.from_numpy(np.array(arrays["weight"], np.float32))
        model.bias = torch.from_numpy(np.array(arrays["bias"], np.float32))
        return model


def calibration_scale(
    calibration: tuple[float, float], steps: np.ndarray | float
) -> np.ndarray | float:
    """The factor ``exp(a + b · log steps)`` that calibrated logits are multiplied by."""
    a, b = calibration
    return np.exp(a + b * np.log(steps))


def fit_calibration(
    logits: np.ndarray, steps: np.ndarray, labels: np.ndarray
) -> tuple[float, float]:
    """``(a, b)`` minimising the NLL of ``softmax(logits · exp(a + b · log steps))``.

    A softmax regression on running means is over-confident after one step and
    under-confident after many; a scale growing with the steps seen fixes both (for
    i.i.d. Gaussian frames the exact log-likelihood ratio grows linearly with them).
    Fit it on held-out data.
    """
    z = torch.from_numpy(np.asarray(logits, dtype=np.float32))
    log_n = torch.from_numpy(np.log(np.asarray(steps, dtype=np.float32)))[:, None]
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    ab = torch.zeros(2, requires_grad=True)
    optimiser = torch.optim.LBFGS([ab], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(z * torch.exp(ab[0] + ab[1] * log_n), y)
        loss.backward()
        return loss

    optimiser.step(closure)
    a, b = ab.detach().tolist()
    return float(a), float(b)
