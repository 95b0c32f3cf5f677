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
from mmlib.validate import check_float, check_int, check_type, describe

__all__ = ["GradNormTracker", "grad_norms", "sgd_fit", "torch_twin"]


def _describe(value: object) -> str:
    """Like :func:`mmlib.validate.describe`, but short for NumPy arrays."""
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    return describe(value)


_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}


def _check_fit(mlp, features, targets, lr, steps, batch_size, seed) -> None:
    """Check :func:`sgd_fit`'s arguments."""
    if not isinstance(mlp, MLP):
        raise TypeError(f"mlp must be an mmlib.maths.autograd.MLP, got {_describe(mlp)}")
    if isinstance(features, np.ndarray) or not isinstance(features, (list, tuple)) or not features:
        raise TypeError(
            f"features must be a non-empty list of 2-D arrays, got {_describe(features)}"
        )
    for k, f in enumerate(features):
        if not isinstance(f, np.ndarray) or f.ndim != 2 or f.dtype.kind != "f":
            raise TypeError(f"features[{k}] must be a 2-D float array (N, D), got {_describe(f)}")
    n = features[0].shape[0]
    if any(f.shape[0] != n for f in features) or n == 0:
        sizes = [f.shape[0] for f in features]
        raise ValueError(f"features must share a non-zero number of rows N, got {sizes}")
    width = sum(f.shape[1] for f in features)
    if mlp.layers[0].weight.shape[0] != width:
        raise ValueError(
            f"mlp must take {width} inputs (the features joined), "
            f"got one that takes {mlp.layers[0].weight.shape[0]}"
        )
    if not isinstance(targets, np.ndarray) or targets.dtype.kind not in "iu":
        raise TypeError(f"targets must be an integer array (N,), got {_describe(targets)}")
    if targets.shape != (n,):
        raise ValueError(f"targets must have shape ({n},) to match features, got {targets.shape}")
    check_float("lr", lr, low=0.0)
    check_int("steps", steps, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    check_int("seed", seed, minimum=0)


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
    if not isinstance(mlp, MLP):
        raise TypeError(f"mlp must be an mmlib.maths.autograd.MLP, got {describe(mlp)}")
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
    if not isinstance(groups, Mapping) or not groups:
        raise TypeError(
            f"groups must be a non-empty dict of name -> nn.Module or list of parameters, "
            f"got {describe(groups)}"
        )
    for name, group in groups.items():
        if not isinstance(name, str):
            raise TypeError(f"groups must have str names, got {describe(name)}")
        params = _parameters(group) if isinstance(group, (nn.Module, list, tuple)) else None
        if params is None or not all(isinstance(p, torch.Tensor) for p in params):
            raise TypeError(
                f"groups[{name!r}] must be an nn.Module or a list of tensors, got {describe(group)}"
            )
        if not params:
            raise ValueError(f"groups[{name!r}] must hold at least one parameter, got none")
    return groups


def _parameters(group: nn.Module | Iterable[torch.Tensor]) -> list[torch.Tensor]:
    return list(group.parameters()) if isinstance(group, nn.Module) else list(group)


def grad_norms(groups: Mapping[str, nn.Module | Iterable[torch.Tensor]]) -> dict[str, float]:
    """The L2 norm of each group's gradient: ``sqrt(sum over its parameters of |p.grad|^2)``.

    ``groups`` maps a name to an ``nn.Module`` (all its parameters) or a list of tensors, e.g.
    ``{"text": model.text_module, "image": model.image_module}``. Parameters without a
    gradient (``grad is None``) count as zero.
    """
    _check_groups(groups)
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
        for name, group in self.groups.items():
            if not any(id(p) in held for p in _parameters(group)):
                raise ValueError(
                    f"groups[{name!r}] must hold parameters that optimizer updates, got none"
                )
        self.norms: dict[str, list[float]] = {name: [] for name in self.groups}
        self._handle = optimizer.register_step_pre_hook(self._record)

    def _record(self, optimizer, args, kwargs) -> None:
        for name, value in grad_norms(self.groups).items():
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
