"""Input checks shared by the whole package.

Every public function of mmlib checks its arguments with these helpers, so that bad
input gets a ``TypeError`` or ``ValueError`` that names the argument, the expected
form and what was given, before torch fails somewhere deep inside.
Messages read: ``"<name> must be <expected>, got <given>"``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
from torch import nn


def describe(value: object) -> str:
    """A short description of ``value`` for an error message."""
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return f"{type(value).__name__} {value!r}"[:120]


def _given(value: object) -> str:
    """How a given value reads after "got": tensors described, text as is, others repr'd."""
    if isinstance(value, torch.Tensor):
        return describe(value)
    return value if isinstance(value, str) else repr(value)[:120]


def require(ok: bool, name: str, expected: str, given: object) -> None:
    """Raise ``ValueError("<name> must be <expected>, got <given>")`` unless ``ok``.

    One line per rule at the call site: ``require(size % 2 == 0, "size", "even", size)``.
    ``given`` is shown as is when it is a str (so a caller can phrase it), described when
    it is a tensor, and repr'd otherwise.
    """
    if not ok:
        raise ValueError(f"{name} must be {expected}, got {_given(given)}")


def check_tensor(
    name: str,
    value: object,
    *,
    ndim: int | None = None,
    dtype: str | torch.dtype | None = None,
    shape: Sequence[int | None] | None = None,
    allow_empty: bool = False,
    finite: bool = False,
) -> torch.Tensor:
    """Check that ``value`` is a tensor of the expected form and return it.

    ``dtype`` is a torch dtype, or ``"float"`` (any floating dtype) or ``"integer"``
    (any integer dtype). ``shape`` may hold ``None`` for any size along that axis.
    ``finite=True`` rejects NaN and infinity.
    """
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {describe(value)}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got {describe(value)}")
    if shape is not None:
        if value.ndim != len(shape) or any(
            want is not None and got != want for want, got in zip(shape, value.shape, strict=True)
        ):
            wanted = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
            raise ValueError(f"{name} must have shape {wanted}, got {describe(value)}")
    if dtype == "float":
        if not value.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got {describe(value)}")
    elif dtype == "integer":
        if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
            raise TypeError(f"{name} must be an integer tensor, got {describe(value)}")
    elif dtype is not None and value.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype}, got {describe(value)}")
    if not allow_empty and value.numel() == 0:
        raise ValueError(f"{name} must not be empty, got {describe(value)}")
    if finite and value.is_floating_point() and not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} must hold only finite values, got NaN or infinity")
    return value


def check_images(
    name: str, images: object, *, channels: int = 3, size: int | None = 32, finite: bool = False
) -> torch.Tensor:
    """Check a float image batch of shape ``(B, channels, size, size)``.

    ``finite=True`` also scans every value for NaN and infinity: for entry points that see a
    data set once, not for forward passes, which run every step (there ``train`` reports a
    non-finite loss, naming the step).
    """
    check_tensor(name, images, ndim=4, dtype="float")
    _, c, h, w = images.shape
    if c != channels:
        raise ValueError(
            f"{name} must have {channels} channels (B, {channels}, H, W), got {describe(images)}"
        )
    if size is not None and (h, w) != (size, size):
        raise ValueError(
            f"{name} must be {size}x{size} images (B, {channels}, {size}, {size}), "
            f"got {describe(images)}"
        )
    return check_tensor(name, images, finite=finite)


def check_token_ids(name: str, ids: object, vocab_size: int, *, ndim: int = 2) -> torch.Tensor:
    """Check an integer tensor of token ids (default shape ``(B, T)``) in ``[0, vocab_size)``."""
    check_tensor(name, ids, ndim=ndim, dtype="integer")
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= vocab_size:
        raise ValueError(
            f"{name} must hold token ids in [0, {vocab_size}), got values from {low} to {high}"
        )
    return ids


def check_same_batch(**tensors: torch.Tensor) -> int:
    """Check that all tensors share their first (batch) dimension and return it."""
    sizes = {name: int(t.shape[0]) for name, t in tensors.items()}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{n}={s}" for n, s in sizes.items())
        raise ValueError(f"batch sizes must match, got {listed}")
    return next(iter(sizes.values()))


def check_int(name: str, value: object, *, minimum: int | None = None) -> int:
    """Check that ``value`` is an int (not a bool), optionally ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {describe(value)}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_ints(*, minimum: int | None = None, **values: object) -> None:
    """:func:`check_int` for several named values at once: ``check_ints(minimum=1, a=a, b=b)``."""
    for name, value in values.items():
        check_int(name, value, minimum=minimum)


def check_float(
    name: str, value: object, *, low: float | None = None, high: float | None = None
) -> float:
    """Check that ``value`` is a real number in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {describe(value)}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    return float(value)


def check_choice(name: str, value: object, choices: Iterable[object]) -> object:
    """Check that ``value`` is one of ``choices``."""
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def check_strings(name: str, texts: object) -> list[str]:
    """Check that ``texts`` is a sequence of str (not one str); return it as a list."""
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError(f"{name} must be a list of str, got {describe(texts)}")
    for text in texts:
        if not isinstance(text, str):
            raise TypeError(f"{name} must hold only str, got {describe(text)}")
    return list(texts)


def check_string_pairs(
    name_a: str, a: object, name_b: str, b: object
) -> tuple[list[str], list[str]]:
    """Two non-empty lists of str of the same length, such as questions and their answers."""
    a, b = check_strings(name_a, a), check_strings(name_b, b)
    if len(a) != len(b) or not a:
        raise ValueError(
            f"{name_a} and {name_b} must be non-empty and of the same length, got "
            f"{len(a)} and {len(b)}"
        )
    return a, b


def check_positive(name: str, value: object) -> float:
    """Check that ``value`` is a positive, finite real number (a learning rate, a clip norm)."""
    check_float(name, value)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return float(value)


def check_type(name: str, value: object, kind: type | tuple[type, ...], what: str = "") -> object:
    """Check that ``value`` is an instance of ``kind`` (``what`` names it in the message)."""
    if not isinstance(value, kind):
        what = what or " or ".join(
            k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,))
        )
        raise TypeError(f"{name} must be a {what}, got {describe(value)}")
    return value


class CheckedEmbedding(nn.Embedding):
    """An ``nn.Embedding`` whose out-of-range error names the argument the ids came in.

    Checking that every id is in ``[0, num_embeddings)`` before each lookup would scan the
    whole tensor on every forward pass (and, on a GPU, wait for it). This checks nothing on
    the way in and turns the lookup's own ``IndexError`` into a ``ValueError`` that names
    ``argument`` and the range of ids given. The weights and ``state_dict`` are those of
    ``nn.Embedding``. (On a GPU an out-of-range id stops the kernel with CUDA's device-side
    assert instead; run on the CPU to see this message.)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, *, argument: str, **kwargs):
        super().__init__(num_embeddings, embedding_dim, **kwargs)
        self.argument = argument

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        try:
            return super().forward(ids)
        except IndexError:
            low, high = int(ids.min()), int(ids.max())
            raise ValueError(
                f"{self.argument} must hold token ids in [0, {self.num_embeddings}), "
                f"got values from {low} to {high}"
            ) from None
