"""Layers and the update rule on top of the from-scratch engine (:mod:`mmlib.maths.autograd`).

:class:`Linear` and :class:`MLP` hold their weights as engine :class:`~mmlib.maths.autograd.Tensor`
objects; :func:`sgd_step` applies the article's update ``w <- w - lr * dE/dw`` to them after
``backward`` has filled in the gradients (micrograd's ``nn.py``, for tensors).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from mmlib.maths.autograd import Tensor, _describe
from mmlib.validate import check_choice, check_float, check_int, check_ints, check_type

__all__ = ["Linear", "MLP", "sgd_step"]


class Linear:
    """``x (B, in_features) -> x @ weight + bias (B, out_features)``.

    ``weight (in_features, out_features)`` (torch's ``nn.Linear.weight`` is its transpose),
    ``bias (out_features,)``, both drawn from U(-1/sqrt(in), 1/sqrt(in)) as torch does.
    """

    def __init__(self, in_features: int, out_features: int, *, rng: np.random.Generator):
        check_ints(minimum=1, in_features=in_features, out_features=out_features)
        check_type("rng", rng, np.random.Generator, "numpy.random.Generator")
        bound = 1.0 / np.sqrt(in_features)
        self.weight = Tensor(rng.uniform(-bound, bound, (in_features, out_features)))
        self.bias = Tensor(rng.uniform(-bound, bound, (out_features,)))

    def __call__(self, x: Tensor) -> Tensor:
        return x @ self.weight + self.bias

    def parameters(self) -> list[Tensor]:
        return [self.weight, self.bias]


class MLP:
    """``sizes = [D_in, H, ..., C]``: Linear layers with ``activation`` between them, none last.

    For the fusion model: ``MLP([D_text + D_image, H, C])(cat([text, image], axis=1))``.
    """

    def __init__(self, sizes: Sequence[int], *, activation: str = "tanh", seed: int = 0):
        if not isinstance(sizes, (list, tuple)) or len(sizes) < 2:
            raise TypeError(f"sizes must be a list of at least 2 ints, got {_describe(sizes)}")
        self.activation = check_choice("activation", activation, ["tanh", "relu", "sigmoid"])
        rng = np.random.default_rng(check_int("seed", seed, minimum=0))
        self.layers = [Linear(a, b, rng=rng) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]

    def __call__(self, x: Tensor) -> Tensor:
        """``x (B, sizes[0]) -> logits (B, sizes[-1])``."""
        if not isinstance(x, Tensor) or x.data.ndim != 2:
            raise TypeError(f"x must be a 2-D Tensor (B, D), got {_describe(x)}")
        for i, layer in enumerate(self.layers):
            x = layer(x)
            x = getattr(x, self.activation)() if i < len(self.layers) - 1 else x
        return x

    def parameters(self) -> list[Tensor]:
        return [p for layer in self.layers for p in layer.parameters()]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = np.zeros_like(p.data)


def sgd_step(params: Iterable[Tensor], lr: float) -> None:
    """The article's update rule, in place: ``w <- w + Δw`` with ``Δw = -lr * dE/dw``."""
    params, lr = _check_step(params, lr)  # a list of Tensor, a float >= 0
    for p in params:
        p.data -= lr * p.grad


def _check_step(params: object, lr: object) -> tuple[list[Tensor], float]:
    """Check :func:`sgd_step`'s arguments; return ``params`` as a list and ``lr`` as a float."""
    lr = check_float("lr", lr, low=0.0)
    params = list(params) if isinstance(params, Iterable) else params
    if not isinstance(params, list) or not all(isinstance(p, Tensor) for p in params):
        raise TypeError(f"params must be an iterable of Tensor, got {_describe(params)}")
    return params, lr
