"""Measure why deep networks are hard to train: gradient norms per layer and per time step.

- :func:`deep_mlp` builds a plain stack of Linear layers with one activation, with PyTorch's
  default initialisation or He (Kaiming) initialisation.
- :func:`layer_gradient_norms` backpropagates a loss and returns the gradient norm of every
  weight matrix, input side first: the numbers that vanish in a deep sigmoid network.
- :func:`input_gradient_norms` measures how strongly a recurrent network's last output depends
  on each earlier input: the gradient that vanishes over long sequences.
- :func:`set_update_gate_bias` starts a GRU with its update gate mostly shut, so the state is
  carried forward; :func:`first_token_task` is a task that needs exactly that.
"""

from __future__ import annotations

import torch
from torch import nn

from mmlib.validate import (
    check_choice,
    check_float,
    check_int,
    check_ints,
    check_tensor,
    check_type,
    require,
)

__all__ = [
    "deep_mlp",
    "first_token_task",
    "input_gradient_norms",
    "layer_gradient_norms",
    "set_update_gate_bias",
]

_ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}


def deep_mlp(
    depth: int = 10,
    width: int = 64,
    *,
    in_dim: int | None = None,
    out_dim: int | None = None,
    activation: str = "sigmoid",
    init: str = "default",
) -> nn.Sequential:
    """``depth`` Linear layers with ``activation`` between them: ``(B, in_dim) -> (B, out_dim)``.

    Hidden layers are ``width`` wide; ``in_dim`` and ``out_dim`` default to ``width``.
    ``init="default"`` keeps PyTorch's initialisation (uniform, variance ``1 / (3 fan_in)``);
    ``init="kaiming"`` draws weights from N(0, 2 / fan_in) (He et al. 2015), the variance that
    keeps ReLU activations and gradients the same size from layer to layer; biases start at 0.
    """
    in_dim = width if in_dim is None else in_dim
    out_dim = width if out_dim is None else out_dim
    check_ints(minimum=1, depth=depth, width=width, in_dim=in_dim, out_dim=out_dim)
    check_choice("activation", activation, _ACTIVATIONS)
    check_choice("init", init, ("default", "kaiming"))
    sizes = [in_dim] + [width] * (depth - 1) + [out_dim]
    layers: list[nn.Module] = []
    for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        linear = nn.Linear(fan_in, fan_out)
        if init == "kaiming":
            nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
            nn.init.zeros_(linear.bias)
        layers.append(linear)
        if k < depth - 1:
            layers.append(_ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def _check_model_and_loss(model: object, loss: object) -> None:
    check_type("model", model, nn.Module, "torch.nn.Module")
    check_tensor("loss", loss, dtype="float")
    got = f"shape {tuple(loss.shape)}, requires_grad={loss.requires_grad}"
    require(loss.ndim == 0 and loss.requires_grad, "loss", "a scalar that depends on model", got)


def layer_gradient_norms(model: nn.Module, loss: torch.Tensor) -> list[float]:
    """Backpropagate ``loss`` and return ``||dloss/dW||`` for every Linear/Conv weight of ``model``.

    The list runs in module order (for a ``Sequential``: input side first). Gradients already
    stored in ``model`` are cleared first, so the numbers belong to this ``loss`` alone.
    """
    _check_model_and_loss(model, loss)
    layers = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]
    require(bool(layers), "model", "a network with Linear or Conv layers", "none")
    model.zero_grad(set_to_none=True)
    loss.backward()
    norms = []
    for layer in layers:
        grad = layer.weight.grad
        norms.append(0.0 if grad is None else float(grad.norm()))
    return norms


def input_gradient_norms(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """How much the last output depends on each input step: ``(T,)`` float64 on the CPU.

    ``model`` maps ``inputs (B, T, E)`` to outputs ``(B, T, H)`` (or a tuple whose first item is
    that, like ``nn.GRU(..., batch_first=True)``). Entry t is ``||d sum(outputs[:, -1]) /
    d inputs[:, t]||``, averaged over the batch. Vanishing gradients show as entries that
    shrink geometrically towards t = 0. The norms are taken in float64: a float32 gradient of
    1e-25 is representable, but its square is not (float32 ends near 1e-45), so a float32 norm
    would print 0 where the gradient is merely tiny.
    """
    check_type("model", model, nn.Module, "torch.nn.Module")
    check_tensor("inputs", inputs, ndim=3, dtype="float", finite=True)
    x = inputs.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        outputs = model(x)
        if isinstance(outputs, tuple):
            outputs = outputs[0]
        ok = isinstance(outputs, torch.Tensor) and outputs.ndim == 3
        require(ok, "model", "a network whose outputs are (B, T, H) for (B, T, E)", outputs)
        (grad,) = torch.autograd.grad(outputs[:, -1].sum(), x)
    return grad.detach().cpu().double().norm(dim=2).mean(dim=0)  # float64 on the CPU (MPS has none)


def set_update_gate_bias(gru: nn.GRU, value: float) -> nn.GRU:
    """Set every layer's update-gate bias of ``gru`` to ``value``, in place; return ``gru``.

    PyTorch's GRU computes ``h_t = (1 - z_t) * n_t + z_t * h_{t-1}``; with the bias at ``b``
    the gate starts near ``z = sigmoid(b)`` (0.5 at the default b near 0, 0.98 at b = 4), so
    the state, and the gradient flowing back through it, is mostly carried over unchanged.
    """
    value = _check_gate(gru, value)
    hidden = gru.hidden_size
    with torch.no_grad():
        for name, parameter in gru.named_parameters():
            if name.startswith("bias_ih"):
                parameter[hidden : 2 * hidden] = value  # gate order: reset, update, new
            elif name.startswith("bias_hh"):
                parameter[hidden : 2 * hidden] = 0.0
    return gru


def _check_gate(gru: object, value: object) -> float:
    """Check :func:`set_update_gate_bias`'s arguments; return ``value`` as a float."""
    check_type("gru", gru, nn.GRU, "torch.nn.GRU")
    value = check_float("value", value, low=-20.0, high=20.0)
    require(gru.bias, "gru", "a GRU with biases (bias=True)", "one built with bias=False")
    return value


def first_token_task(
    n: int, length: int, num_classes: int = 4, vocab_size: int = 8, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequences whose class only their first token tells: ``tokens (n, length)``, ``labels (n,)``.

    Token ``1 + label`` opens each sequence; the other ``length - 1`` tokens are noise drawn
    from ``[1 + num_classes, vocab_size)``. Id 0 stays free for padding. To answer, a model
    must carry the first token through ``length - 1`` steps.
    """
    check_ints(minimum=1, n=n, length=length)
    check_int("num_classes", num_classes, minimum=2)
    check_int("vocab_size", vocab_size, minimum=num_classes + 2)
    check_int("seed", seed, minimum=0)
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, num_classes, (n,), generator=g)
    tokens = torch.randint(1 + num_classes, vocab_size, (n, length), generator=g)
    tokens[:, 0] = 1 + labels
    return tokens, labels
