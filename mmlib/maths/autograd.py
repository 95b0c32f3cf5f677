"""A from-scratch reverse-mode autodiff engine over NumPy arrays (micrograd, but for tensors).

A :class:`Tensor` wraps a float64 array ``data`` and gets ``grad`` (same shape) filled in by
:meth:`Tensor.backward`: every op records its inputs (``_prev``) and a closure (``_backward``)
that applies the chain rule locally, ``input.grad += (d output / d input)^T output.grad``;
``backward`` runs those closures in reverse topological order; layers and the update rule
``w <- w - lr * dE/dw`` are in :mod:`mmlib.maths.layers`. Torch is not used here at all;
parameters are plain NumPy arrays (``p.data``, ``p.grad``), so they copy straight into torch
tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from mmlib.validate import check_choice, check_float, check_type, describe, require

__all__ = ["Tensor", "cat", "cross_entropy", "numerical_grad"]


def _describe(value: object) -> str:
    """Like :func:`mmlib.validate.describe`, but short for arrays and Tensors."""
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    if isinstance(value, Tensor):
        return f"a Tensor of shape {value.shape}"
    return describe(value)


def _as_array(name: str, value: object) -> np.ndarray:
    """A real number, list or numeric array -> float64 array (a copy); else TypeError."""
    numeric = isinstance(value, (int, float, list, tuple, np.ndarray, np.generic))
    array = np.asarray(value) if numeric and not isinstance(value, bool) else None
    if array is None or array.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a number or a numeric array, got {_describe(value)}")
    return array.astype(np.float64)


def _broadcastable(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Whether NumPy broadcasting joins shapes ``a`` and ``b``: sizes equal or 1, from the right."""
    return all(x == y or 1 in (x, y) for x, y in zip(a[::-1], b[::-1], strict=False))


def _unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting added or stretched, back to ``shape``."""
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape)))) if grad.ndim > len(shape) else grad
    stretched = tuple(i for i, size in enumerate(shape) if size == 1 and grad.shape[i] != 1)
    return grad.sum(axis=stretched, keepdims=True) if stretched else grad


class Tensor:
    """A node of the graph: ``data`` (any shape) float64, ``grad`` of the same shape."""

    __array_ufunc__ = None  # numpy_array + Tensor calls Tensor.__radd__, not numpy

    def __init__(self, data: object, _prev: tuple[Tensor, ...] = (), _op: str = ""):
        self.data = _as_array("data", data)
        self.grad = np.zeros_like(self.data)
        self._backward: Callable[[], None] = lambda: None
        self._prev = _prev
        self._op = _op

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    def __repr__(self) -> str:
        return f"Tensor(shape={self.shape}, op={self._op or 'leaf'!r})"

    def item(self) -> float:
        """The value of a one-element tensor as a Python float."""
        require(self.data.size == 1, "self", "a one-element Tensor for item()", self.shape)
        return float(self.data.reshape(()))

    def _operand(self, other: object, op: str) -> Tensor:
        """``other`` as a Tensor (numbers and arrays become constants) whose shape fits ``op``."""
        other = other if isinstance(other, Tensor) else Tensor(_as_array("other", other))
        a, b = self.shape, other.shape
        fits = (len(a) == len(b) == 2 and a[1] == b[0]) if op == "@" else _broadcastable(a, b)
        rule = "shapes (N, K) @ (K, M)" if op == "@" else "shapes that broadcast"
        require(fits, f"self {op} other", rule, f"{a} {op} {b}")
        return other

    # ----- elementwise arithmetic, with NumPy broadcasting --------------------------------
    def __add__(self, other: object) -> Tensor:
        other = self._operand(other, "+")
        out = Tensor(self.data + other.data, (self, other), "+")

        def _backward():  # d(a + b)/da = 1: pass the gradient through, summed to a's shape
            self.grad += _unbroadcast(out.grad, self.shape)
            other.grad += _unbroadcast(out.grad, other.shape)

        out._backward = _backward
        return out

    def __mul__(self, other: object) -> Tensor:
        other = self._operand(other, "*")
        out = Tensor(self.data * other.data, (self, other), "*")

        def _backward():  # d(a * b)/da = b
            self.grad += _unbroadcast(other.data * out.grad, self.shape)
            other.grad += _unbroadcast(self.data * out.grad, other.shape)

        out._backward = _backward
        return out

    def __neg__(self) -> Tensor:
        return self * -1.0

    def __sub__(self, other: object) -> Tensor:
        return self + (-self._operand(other, "-"))

    def __rsub__(self, other: object) -> Tensor:
        return (-self) + other

    __radd__, __rmul__ = __add__, __mul__  # a + b == b + a, a * b == b * a

    # ----- matrix product ------------------------------------------------------------------
    def __matmul__(self, other: object) -> Tensor:
        """``self (N, K) @ other (K, M) -> (N, M)``."""
        other = self._operand(other, "@")
        out = Tensor(self.data @ other.data, (self, other), "@")

        def _backward():  # dE/dA = dE/dC B^T,  dE/dB = A^T dE/dC
            self.grad += out.grad @ other.data.T
            other.grad += self.data.T @ out.grad

        out._backward = _backward
        return out

    # ----- elementwise functions: (any shape) -> same shape --------------------------------
    def _unary(self, value: np.ndarray, local_grad: Callable[[np.ndarray], np.ndarray], op: str):
        out = Tensor(value, (self,), op)

        def _backward():
            self.grad += local_grad(out.data) * out.grad

        out._backward = _backward
        return out

    def tanh(self) -> Tensor:
        return self._unary(np.tanh(self.data), lambda y: 1.0 - y**2, "tanh")

    def relu(self) -> Tensor:
        return self._unary(np.maximum(self.data, 0.0), lambda y: (y > 0).astype(float), "relu")

    def sigmoid(self) -> Tensor:  # written with tanh: no overflow for large |x|
        return self._unary(0.5 * (1.0 + np.tanh(0.5 * self.data)), lambda y: y * (1 - y), "sig")

    def exp(self) -> Tensor:
        return self._unary(np.exp(self.data), lambda y: y, "exp")

    def log(self) -> Tensor:
        x = self.data
        return self._unary(np.log(x), lambda y: 1.0 / x, "log")

    # ----- reductions ----------------------------------------------------------------------
    def sum(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        """Sum over ``axis`` (all axes when None); ``keepdims`` keeps it with size 1."""
        check_choice("axis", axis, [None, *range(-self.data.ndim, self.data.ndim)])
        out = Tensor(self.data.sum(axis=axis, keepdims=keepdims), (self,), "sum")

        def _backward():  # every summed element gets the same upstream gradient
            grad = out.grad if keepdims or axis is None else np.expand_dims(out.grad, axis)
            self.grad += np.broadcast_to(grad, self.shape)

        out._backward = _backward
        return out

    def mean(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        """Mean over ``axis`` (all axes when None)."""
        total = self.sum(axis, keepdims)
        return total * (total.data.size / self.data.size)

    # ----- the backward pass ---------------------------------------------------------------
    def backward(self) -> None:
        """Fill ``grad`` of every tensor this scalar depends on with d self / d tensor.

        Leaf gradients (parameters, inputs) accumulate (``+=``), as in torch: zero them
        between steps (:meth:`~mmlib.maths.layers.MLP.zero_grad`).
        """
        require(self.data.size == 1, "self", "a scalar (e.g. a loss) for backward()", self.shape)
        order, seen, stack = [], set(), [(self, False)]
        while stack:  # depth-first search, iterative so deep graphs cannot hit recursion limits
            node, children_done = stack.pop()
            if children_done:
                order.append(node)
            elif id(node) not in seen:
                seen.add(id(node))
                stack.append((node, True))
                stack.extend((child, False) for child in node._prev)
        for node in order:  # fresh gradients inside the graph; leaves keep accumulating
            node.grad = np.zeros_like(node.data) if node._prev else node.grad
        self.grad = np.ones_like(self.data)
        for node in reversed(order):  # every node runs after all the nodes that use it
            node._backward()


def _check_cat(tensors: object, axis: object) -> int:
    """Check ``cat``'s arguments; return ``axis`` counted from the front."""
    listed = isinstance(tensors, (list, tuple)) and all(isinstance(t, Tensor) for t in tensors)
    if not (listed and tensors):
        raise TypeError(f"tensors must be a non-empty list of Tensor, got {_describe(tensors)}")
    shapes = [t.shape for t in tensors]
    axis = check_choice("axis", axis, range(-len(shapes[0]), len(shapes[0]))) % len(shapes[0])
    others = {(len(s), s[:axis] + s[axis + 1 :]) for s in shapes}  # ndim, sizes off the axis
    require(len(others) == 1, "tensors", f"shapes that match on every axis but {axis}", shapes)
    return axis


def cat(tensors: Sequence[Tensor], axis: int = 1) -> Tensor:
    """Concatenate along ``axis``: ``[(B, D1), (B, D2), ...] -> (B, D1 + D2 + ...)`` for axis 1.

    The fusion step: ``cat([text_features, image_features], axis=1)``.
    """
    axis = _check_cat(tensors, axis)  # in [0, ndim)
    out = Tensor(np.concatenate([t.data for t in tensors], axis=axis), tuple(tensors), "cat")
    edges = np.cumsum([t.shape[axis] for t in tensors])[:-1]

    def _backward():  # each input gets back its own slice of the gradient
        for t, piece in zip(tensors, np.split(out.grad, edges, axis=axis), strict=True):
            t.grad += piece

    out._backward = _backward
    return out


def cross_entropy(logits: Tensor, targets: object) -> Tensor:
    """Mean softmax cross-entropy: ``logits (B, C)``, integer ``targets (B,)`` in ``[0, C)``.

    ``E = mean_b( logsumexp(logits[b]) - logits[b, targets[b]] )``, computed after subtracting
    each row's max so that ``exp`` never overflows. Gradient: ``(softmax - onehot) / B``.
    """
    if not isinstance(logits, Tensor) or logits.data.ndim != 2:
        raise TypeError(f"logits must be a 2-D Tensor (B, C), got {_describe(logits)}")
    targets = np.asarray(targets) if isinstance(targets, (list, tuple, np.ndarray)) else targets
    if not isinstance(targets, np.ndarray) or targets.dtype.kind not in "iu":
        raise TypeError(f"targets must be an integer array (B,), got {_describe(targets)}")
    batch, classes = logits.shape
    require(batch * classes > 0, "logits", "non-empty (B, C >= 1)", logits.shape)
    ok = targets.shape == (batch,) and targets.min() >= 0 and targets.max() < classes  # O(B)
    require(ok, "targets", f"({batch},) class ids in [0, {classes})", targets)
    shifted = logits.data - logits.data.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(batch)
    out = Tensor(-log_probs[rows, targets].mean(), (logits,), "xent")

    def _backward():
        grad = np.exp(log_probs)  # softmax (B, C)
        grad[rows, targets] -= 1.0
        logits.grad += grad * (out.grad / batch)

    out._backward = _backward
    return out


def numerical_grad(
    f: Callable[[np.ndarray], object], array: np.ndarray, eps: float = 1e-6
) -> np.ndarray:
    """Central finite differences ``(f(x + eps e_i) - f(x - eps e_i)) / (2 eps)`` for each i.

    ``array`` (any shape, float64) is nudged in place, one entry at a time, and restored, so
    ``f`` may read it directly (e.g. a model's ``weight.data``). ``f`` returns a scalar (float
    or one-element Tensor). Returns an array shaped like ``array``.
    """
    check_type("f", f, Callable, "callable")
    if not isinstance(array, np.ndarray) or array.dtype != np.float64:
        raise TypeError(f"array must be a float64 numpy array, got {_describe(array)}")
    eps = check_float("eps", eps, low=1e-12)

    def value() -> float:
        out = f(array)
        return out.item() if isinstance(out, Tensor) else float(out)

    grad = np.zeros_like(array)
    for i in np.ndindex(array.shape):
        original = array[i]
        array[i] = original + eps
        plus = value()
        array[i] = original - eps
        minus = value()
        array[i] = original
        grad[i] = (plus - minus) / (2 * eps)
    return grad
