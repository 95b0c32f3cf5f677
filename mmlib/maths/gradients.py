"""Gradients in practice (chapter 4): check them, follow them, watch them.

- :func:`sgd_fit`: train an :class:`mmlib.maths.layers.MLP` with the article's update rule
  ``w <- w - lr * dE/dw`` on mini-batches of several modalities' features, joined with ``cat``.
- :func:`torch_twin`: the from-scratch :class:`mmlib.maths.layers.MLP` rebuilt as a torch
  ``nn.Sequential`` with the very same weights, so that the engine's gradients can be checked
  against ``torch.autograd`` (and the same network trained with torch).
- :func:`grad_norms`: the L2 norm of the gradient of each named group of parameters (a text
  module, an image module, a fusion module...), as it stands now.
- :class:`GradNormTracker`: records :func:`grad_norms` just before every ``optimizer.step()``,
  so a training run (e.g. :func:`~mmlib.training.loop.train`) leaves a gradient-norm curve per
  module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from mmlib.maths.autograd import Tensor, cat, cross_entropy
from mmlib.maths.layers import MLP, sgd_step
from mmlib.validate import check_float, check_int, check_ints, check_type, describe, require

__all__ = ["GradNormTracker", "grad_norms", "sgd_fit", "torch_twin"]


def _describe(value: object) -> str:
    """Like :func:`mmlib.validate.describe`, but short for NumPy arrays and lists of them."""
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_describe(item) for item in value) + "]"
    return describe(value)


_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}


def _check_fit(mlp, features, targets, lr, steps, batch_size, seed) -> None:
    """Check :func:`sgd_fit`'s arguments."""
    check_type("mlp", mlp, MLP, "mmlib.maths.layers.MLP")
    arrays = isinstance(features, (list, tuple)) and all(_is_2d_float(f) for f in features)
    if not (arrays and features):
        raise TypeError(f"features must be a list of 2-D float arrays, got {_describe(features)}")
    rows, width = [f.shape[0] for f in features], sum(f.shape[1] for f in features)
    require(min(rows) == max(rows) > 0, "features", "arrays with the same N >= 1 rows", rows)
    takes = mlp.layers[0].weight.shape[0]
    require(takes == width, "mlp", f"an MLP with {width} inputs (the features joined)", takes)
    if not isinstance(targets, np.ndarray) or targets.dtype.kind not in "iu":
        raise TypeError(f"targets must be an integer array (N,), got {_describe(targets)}")
    require(
        targets.shape == (rows[0],), "targets", f"({rows[0]},) to match features", targets.shape
    )
    check_float("lr", lr, low=0.0)
    check_ints(minimum=1, steps=steps, batch_size=batch_size)
    check_int("seed", seed, minimum=0)


def _is_2d_float(array: object) -> bool:
    return isinstance(array, np.ndarray) and array.ndim == 2 and array.dtype.kind == "f"


def sgd_fit(
    mlp: MLP,
    features: Sequence[np.ndarray],
    targets: np.ndarray,
    *,
    lr: float,
    steps: int,
    batch_size: int = 128,
    seed: int = 0,
) -> list[float]:
    """Train ``mlp`` in place with plain SGD, the article's ``Δw = -lr * dE/dw``; return the losses.

    ``features``: one ``(N, D_k)`` float array per modality (e.g. text, image); each step draws
    ``batch_size`` rows at random (with replacement, from ``seed``), joins the modalities with
    ``cat`` into ``(batch_size, sum D_k)``, and takes one step on the mean cross-entropy
    against the integer ``targets (N,)``. ``mlp`` must take ``sum D_k`` inputs.
    """
    _check_fit(mlp, features, targets, lr, steps, batch_size, seed)
    n, rng = len(targets), np.random.default_rng(seed)
    losses = []
    for _ in range(steps):
        rows = rng.integers(0, n, batch_size)
        x = cat([Tensor(f[rows]) for f in features], axis=1)  # (batch, sum D_k): [t; i]
        loss = cross_entropy(mlp(x), targets[rows])  # E
        mlp.zero_grad()
        loss.backward()  # dE/dw for every parameter w
        sgd_step(mlp.parameters(), lr)  # w <- w - lr * dE/dw
        losses.append(loss.item())
    return losses


def torch_twin(mlp: MLP, dtype: torch.dtype = torch.float64) -> nn.Sequential:
    """The same network as ``mlp``, in torch: ``Linear, activation, ..., Linear``.

    ``mlp`` is an :class:`mmlib.maths.layers.MLP` with sizes ``[D, H, ..., C]``; the twin maps
    ``(B, D) -> (B, C)`` with identical weights (torch stores ``weight`` transposed,
    ``(out, in)``). ``dtype`` is the twin's floating dtype; the default float64 matches the
    engine to rounding error. The twin is a copy: training one does not change the other.
    """
    check_type("mlp", mlp, MLP, "mmlib.maths.layers.MLP")
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch.dtype, got {describe(dtype)}")
    modules: list[nn.Module] = []
    for k, layer in enumerate(mlp.layers):
        d_in, d_out = layer.weight.shape
        linear = nn.Linear(d_in, d_out, dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(layer.weight.data.T))
            linear.bias.copy_(torch.from_numpy(layer.bias.data))
        modules.append(linear)
        if k < len(mlp.layers) - 1:
            modules.append(_ACTIVATIONS[mlp.activation]())
    return nn.Sequential(*modules)


def _check_groups(groups: object) -> Mapping[str, nn.Module | Iterable[torch.Tensor]]:
    """``{name: nn.Module or list of tensors}``, non-empty, each group holding a parameter."""
    if not (isinstance(groups, Mapping) and groups and all(isinstance(k, str) for k in groups)):
        raise TypeError(f"groups must be a non-empty dict of str -> module, got {describe(groups)}")
    for name, group in groups.items():
        params = _parameters(group) if isinstance(group, (nn.Module, list, tuple)) else None
        if params is None or not all(isinstance(p, torch.Tensor) for p in params):
            raise TypeError(f"groups[{name!r}] must be a module or tensors, got {describe(group)}")
        require(bool(params), f"groups[{name!r}]", "a group with at least one parameter", "none")
    return groups


def _parameters(group: nn.Module | Iterable[torch.Tensor]) -> list[torch.Tensor]:
    return list(group.parameters()) if isinstance(group, nn.Module) else list(group)


def grad_norms(groups: Mapping[str, nn.Module | Iterable[torch.Tensor]]) -> dict[str, float]:
    """The L2 norm of each group's gradient: ``sqrt(sum over its parameters of |p.grad|^2)``.

    ``groups`` maps a name to an ``nn.Module`` (all its parameters) or a list of tensors, e.g.
    ``{"text": model.text_module, "image": model.image_module}``. Parameters without a
    gradient (``grad is None``) count as zero.
    """
    return _norms(_check_groups(groups))


def _norms(groups: Mapping[str, nn.Module | Iterable[torch.Tensor]]) -> dict[str, float]:
    """:func:`grad_norms` of groups already checked."""
    norms = {}
    for name, group in groups.items():
        grads = [p.grad for p in _parameters(group) if p.grad is not None]
        norms[name] = float(nn.utils.get_total_norm(grads)) if grads else 0.0
    return norms


class GradNormTracker:
    """Record :func:`grad_norms` of ``groups`` just before every ``optimizer.step()``.

    ``norms[name][k]`` is the gradient norm of group ``name`` that step ``k + 1`` used (after
    any gradient clipping). Works with any loop that calls ``optimizer.step()``, e.g.
    ``train(model, loss_fn, batches, optimizer=optimizer, ...)``. Call :meth:`remove` (or use
    ``with GradNormTracker(...) as tracker:``) to stop recording.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        groups: Mapping[str, nn.Module | Iterable[torch.Tensor]],
    ):
        check_type("optimizer", optimizer, torch.optim.Optimizer, "torch.optim.Optimizer")
        self.groups = dict(_check_groups(groups))
        held = {id(p) for g in optimizer.param_groups for p in g["params"]}
        idle = [n for n, g in self.groups.items() if not any(id(p) in held for p in _parameters(g))]
        require(not idle, f"groups{idle}", "parameters that optimizer updates", "none")
        self.norms: dict[str, list[float]] = {name: [] for name in self.groups}
        self._handle = optimizer.register_step_pre_hook(self._record)

    def _record(self, optimizer, args, kwargs) -> None:
        for name, value in _norms(self.groups).items():
            self.norms[name].append(value)

    def remove(self) -> None:
        """Stop recording (the recorded norms stay)."""
        self._handle.remove()

    def __enter__(self) -> GradNormTracker:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def __repr__(self) -> str:
        steps = len(next(iter(self.norms.values())))
        return f"GradNormTracker(groups={list(self.norms)}, steps={steps})"
