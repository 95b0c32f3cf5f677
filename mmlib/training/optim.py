"""The optimizers written out: the update a training loop applies after ``backward``.

Chapter 4 derives plain gradient descent, ``w <- w - lr * dE/dw``; :class:`SGD` is that
rule, with optional momentum (a running sum of past gradients). Adam (Kingma & Ba, 2015)
keeps two running averages per weight, of the gradient ``m`` and of its square ``v``, and
steps by ``m / sqrt(v)``: every weight gets its own step size, large where gradients are
small and steady, small where they are large or noisy. AdamW (Loshchilov & Hutter, 2019)
shrinks the weights by ``lr * weight_decay`` separately from that step.

Why the book has its own and does not call ``torch.optim.AdamW``: every ``torch.optim``
optimizer imports ``torch._dynamo``, the compiler, the first time it is built or stepped
(2 to 3 s on the book's 2-core machines, in every notebook that trains), though the book
never compiles anything. These classes subclass ``torch.optim.Optimizer`` (so learning-rate
schedulers, ``state_dict`` and checkpoints work as usual) but define their own
``add_param_group``, ``zero_grad`` and ``step``, which do not import the compiler.

:class:`SGD` follows ``torch.optim.SGD`` operation for operation, so its results are
bit-for-bit torch's. AdamW's ``step`` has two paths that compute the same update: the
readable loop below, one tensor at a time, and ``fused=True``, which hands all tensors of
one device to the single fused kernel ``torch.optim.AdamW(fused=True)`` calls
(``torch._fused_adamw_``), so its results are bit-for-bit those of
``torch.optim.AdamW(fused=True)``. ``tests/test_optim.py`` checks both.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from mmlib.validate import check_float, check_positive, check_type, describe, require

__all__ = ["SGD", "AdamW", "default_optimizer"]


def _check_non_negative(**numbers: object) -> None:
    """:func:`~mmlib.validate.check_float` with ``low=0`` for several named numbers."""
    for name, number in numbers.items():
        check_float(name, number, low=0.0)


class _Optimizer(torch.optim.Optimizer):
    """``torch.optim.Optimizer`` with parameter groups and ``zero_grad`` that skip the compiler."""

    def add_param_group(self, param_group: dict) -> None:
        """Add a group ``{"params": [...], **options}``; options it leaves out take the defaults."""
        params = param_group["params"]
        params = [params] if isinstance(params, torch.Tensor) else list(params)
        for p in params:
            if not (isinstance(p, torch.Tensor) and p.is_leaf and p.is_floating_point()):
                raise TypeError(f"params must hold floating-point leaf tensors, got {describe(p)}")
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        twice = any(id(p) in seen for p in params)
        require(not twice, "params", "in one parameter group only", "one in two groups")
        self.param_groups.append({**self.defaults, **param_group, "params": params})

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients (``None``, or zeros with ``set_to_none=False``)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None and set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.detach_().zero_()


class SGD(_Optimizer):
    """Gradient descent, ``w <- w - lr * g``, where ``g`` is the gradient or, with ``momentum``
    ``mu > 0``, the running sum ``b <- mu * b + dE/dw`` (``b`` starts at the first gradient).
    ``weight_decay`` adds ``weight_decay * w`` to the gradient first (L2 regularisation)."""

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict],
        lr: float = 1e-3,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
    ) -> None:
        _check_non_negative(lr=lr, weight_decay=weight_decay)
        check_float("momentum", momentum, low=0.0, high=1.0)
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay}
        super().__init__(params, {**defaults, "differentiable": False})

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001, ANN201 - torch's signature
        """Apply one update to every parameter that has a gradient."""
        loss = None if closure is None else torch.enable_grad()(closure)()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if group["weight_decay"] != 0:
                    grad = grad.add(p, alpha=group["weight_decay"])
                if group["momentum"] != 0:
                    buffer = self.state[p].get("momentum_buffer")
                    if buffer is None:
                        buffer = self.state[p]["momentum_buffer"] = grad.detach().clone()
                    else:
                        buffer.mul_(group["momentum"]).add_(grad)
                    grad = buffer
                p.add_(grad, alpha=-group["lr"])  # the article's update, w <- w - lr * g
        return loss


class AdamW(_Optimizer):
    """Adam with decoupled weight decay; the defaults are ``torch.optim.AdamW``'s.

    ``params``: the model's parameters (``model.parameters()``) or a list of parameter-group
    dicts. ``fused``: use torch's fused kernel (every parameter a floating-point tensor on the
    CPU or a CUDA device); the result is the same update as the readable loop, up to rounding.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        *,
        fused: bool = False,
    ) -> None:
        _check_non_negative(lr=lr, eps=eps, weight_decay=weight_decay)
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise TypeError(f"betas must be a pair of floats in [0, 1), got {describe(betas)}")
        in_range = all(0.0 <= check_float("betas", b) < 1.0 for b in betas)
        require(in_range, "betas", "a pair of floats in [0, 1)", tuple(betas))
        check_type("fused", fused, bool)
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay}
        # torch's own schedulers and checks read these two keys.
        defaults.update(fused=fused, differentiable=False)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001, ANN201 - torch's signature
        """Apply one update to every parameter that has a gradient."""
        loss = None if closure is None else torch.enable_grad()(closure)()
        for group in self.param_groups:
            with_grad = [p for p in group["params"] if p.grad is not None]
            for p in with_grad:
                if not self.state[p]:  # first step: both averages start at zero
                    where = p.device if group["fused"] else "cpu"
                    self.state[p]["step"] = torch.zeros((), dtype=torch.float32, device=where)
                    self.state[p]["exp_avg"] = torch.zeros_like(p)
                    self.state[p]["exp_avg_sq"] = torch.zeros_like(p)
            if group["fused"]:
                _fused_step(group, with_grad, self.state)
            else:
                for p in with_grad:
                    _adamw_update(p, p.grad, self.state[p], group)
        return loss


def _adamw_update(p: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
    """One AdamW step for one tensor ``p``, in place: the maths, one line per idea."""
    lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
    state["step"] += 1
    t = state["step"].item()
    m, v = state["exp_avg"], state["exp_avg_sq"]
    p.mul_(1 - lr * group["weight_decay"])  # decoupled weight decay
    m.lerp_(grad, 1 - beta1)  # m <- beta1 m + (1 - beta1) g
    v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)  # v <- beta2 v + (1 - beta2) g^2
    m_hat_scale = 1 - beta1**t  # both averages start at 0: undo that bias
    v_hat_sqrt = math.sqrt(1 - beta2**t)
    denom = (v.sqrt() / v_hat_sqrt).add_(eps)
    p.addcdiv_(m, denom, value=-lr / m_hat_scale)  # p <- p - lr m_hat / (sqrt(v_hat) + eps)


def _fused_step(group: dict, params: list[torch.Tensor], state: dict) -> None:
    """The same step for all ``params`` at once, one fused kernel per device and dtype."""
    by_kind: dict[tuple, list[torch.Tensor]] = {}
    for p in params:
        by_kind.setdefault((p.device, p.dtype), []).append(p)
    beta1, beta2 = group["betas"]
    for same in by_kind.values():
        steps = [state[p]["step"] for p in same]
        torch._foreach_add_(steps, 1)
        torch._fused_adamw_(
            same,
            [p.grad for p in same],
            [state[p]["exp_avg"] for p in same],
            [state[p]["exp_avg_sq"] for p in same],
            [],
            steps,
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            amsgrad=False,
            maximize=False,
        )


def default_optimizer(
    model: nn.Module, lr: float = 1e-3, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """:class:`AdamW` on ``model.parameters()``, fused where torch has the kernel.

    The fused AdamW updates every parameter tensor in one kernel; the plain one runs about
    five small operations per tensor, which on a small model costs more than the update
    itself (a 30-tensor GPT of chapter 6.1: 1.7 ms a step plain, 0.3 ms fused, on 2 CPU
    cores). Both compute the same update, up to rounding. Used when every parameter is a
    floating-point tensor on the CPU or a CUDA device, all on one device.
    """
    check_type("model", model, nn.Module, "torch.nn.Module")
    check_positive("lr", lr)  # AdamW checks weight_decay
    params = list(model.parameters())
    given = f"a {type(model).__name__} with none"
    require(bool(params), "model", "a module with parameters to optimise", given)
    devices = {p.device.type for p in params}
    fused = len(devices) == 1 and devices <= {"cpu", "cuda"}
    fused = fused and all(p.is_floating_point() for p in params)
    return AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused)
