"""Text-conditioned flow matching: the generator family that replaced DALL-E's token-by-token
prior (DALL-E 2, Imagen and Stable Diffusion generate by denoising).

Flow matching on the straight path (rectified flow: Liu et al., ICLR 2023; Lipman et al.,
ICLR 2023) joins a noise sample ``x0 ~ N(0, I)`` to a data sample ``x1`` by

    x_t = t * x1 + (1 - t) * x0,        t in [0, 1],

whose velocity is ``dx_t/dt = x1 - x0``. A network that knows the velocity at every ``(x_t, t)``
turns noise into data by integrating ``dx/dt = v`` from ``t = 0`` to ``1`` (here with Euler steps).
The denoiser below predicts the *clean* sample ``x1`` instead, and the velocity follows from it:
``v = (x1_hat - x_t) / (1 - t)``, since ``x1 - x_t = (1 - t) (x1 - x0)``; on the shapes world this
gave sharp images where predicting the velocity left speckle. The ``(1 - t)`` is floored at
``MIN_GAP``, which also makes the last Euler step land on the last prediction.

Classifier-free guidance (Ho and Salimans, 2022): in training the condition is dropped (replaced
by a learned "no caption" vector) for a share of the examples, so one network predicts with and
without the caption; at sampling the two predictions are combined as
``uncond + scale * (cond - uncond)``. ``scale = 1`` is the conditional model, larger values follow
the caption harder (Ho and Salimans write it as ``(1 + w) cond - w uncond``, so ``w = scale - 1``).

Shapes: B batch, D data numbers per sample (flattened pixels or latents), E condition size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mmlib.validate import check_float, check_int, check_ints, check_tensor, check_type, require

__all__ = [
    "MIN_GAP",
    "FlowDenoiser",
    "flow_loss",
    "guided",
    "interpolate",
    "sample",
    "velocity_from_clean",
    "velocity_target",
]

#: The smallest ``1 - t`` that a clean prediction is divided by (:func:`velocity_from_clean`).
MIN_GAP = 0.05


def interpolate(x1: torch.Tensor, x0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The straight path's point ``x_t = t x1 + (1 - t) x0`` for data ``x1 (B, D)``, noise
    ``x0 (B, D)`` and times ``t (B,)``."""
    t = t.view(-1, 1)
    return t * x1 + (1 - t) * x0


def velocity_target(x1: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """The straight path's velocity ``x1 - x0 (B, D)``, the same at every time."""
    return x1 - x0


def velocity_from_clean(
    x1_hat: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, min_gap: float = MIN_GAP
) -> torch.Tensor:
    """The velocity that a clean prediction ``x1_hat (B, D)`` implies at ``x_t (B, D)`` and
    ``t (B,)``: ``(x1_hat - x_t) / max(1 - t, min_gap)``."""
    return (x1_hat - x_t) / (1 - t.view(-1, 1)).clamp(min=min_gap)


def guided(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance: ``uncond + scale * (cond - uncond)``."""
    return uncond + scale * (cond - uncond)


class FlowDenoiser(nn.Module):
    """An MLP that predicts the clean sample: ``x_t (B, D)``, ``t (B,)`` and a condition
    ``(B, E)`` or none -> ``x1_hat (B, D)``.

    The time (as sine and cosine features) and the condition (or the learned ``null`` vector
    where it is dropped) make one embedding, which scales and shifts the hidden units of every
    block (FiLM: Perez et al., AAAI 2018). An MLP, not a U-Net: at 16x16 pixels it trains many
    times faster on a CPU, and its width is the whole image.
    """

    def __init__(
        self, data_dim: int, cond_dim: int, hidden: int = 512, depth: int = 3, time_dim: int = 32
    ):
        super().__init__()
        check_ints(minimum=1, data_dim=data_dim, cond_dim=cond_dim, hidden=hidden, depth=depth)
        self.time_dim = check_int("time_dim", time_dim, minimum=2)
        require(time_dim % 2 == 0, "time_dim", "even", time_dim)
        self.data_dim, self.cond_dim = data_dim, cond_dim
        self.null = nn.Parameter(torch.zeros(cond_dim))  # the condition of "no caption"
        self.embed = nn.Sequential(
            nn.Linear(time_dim + cond_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden)
        )
        self.inp = nn.Linear(data_dim, hidden)
        self.films = nn.ModuleList(nn.Linear(hidden, 2 * hidden) for _ in range(depth))
        self.blocks = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(depth))
        self.norms = nn.ModuleList(
            nn.LayerNorm(hidden, elementwise_affine=False) for _ in range(depth)
        )
        self.out = nn.Linear(hidden, data_dim)

    def time_features(self, t: torch.Tensor) -> torch.Tensor:
        """Times ``(B,)`` -> sines and cosines ``(B, time_dim)`` over a range of frequencies."""
        half = self.time_dim // 2
        freqs = torch.exp(torch.arange(half, device=t.device) * (-math.log(1000.0) / half))
        angles = 1000.0 * t.view(-1, 1) * freqs  # (B, half)
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    def _check(self, x_t, t, cond, drop) -> None:
        # x_t.shape[0], not len(x_t): an exported model (ONNX) keeps its batch size free
        check_tensor("x_t", x_t, dtype="float", shape=(None, self.data_dim))
        check_tensor("t", t, dtype="float", shape=(x_t.shape[0],))
        if cond is not None:
            check_tensor("cond", cond, dtype="float", shape=(x_t.shape[0], self.cond_dim))
        if drop is not None:
            check_tensor("drop", drop, dtype=torch.bool, shape=(x_t.shape[0],))

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        cond: torch.Tensor | None = None,
        drop: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The clean prediction ``(B, D)``. ``cond=None`` is the unconditional model; ``drop
        (B,) bool`` replaces the condition of the marked rows by the learned ``null``."""
        self._check(x_t, t, cond, drop)
        null = self.null.expand(x_t.shape[0], -1)
        if cond is None:
            cond = null
        elif drop is not None:
            cond = torch.where(drop.view(-1, 1), null, cond)
        emb = self.embed(torch.cat([self.time_features(t), cond], dim=1))  # (B, H)
        h = self.inp(x_t)  # (B, H)
        for film, block, norm in zip(self.films, self.blocks, self.norms, strict=True):
            scale, shift = film(emb).chunk(2, dim=1)
            h = h + block(F.gelu(norm(h) * (1 + scale) + shift))
        return self.out(h)  # (B, D)


def flow_loss(
    model: FlowDenoiser,
    x1: torch.Tensor,
    cond: torch.Tensor,
    drop_prob: float = 0.1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The mean squared error of the clean prediction at a random point of each sample's path.

    For data ``x1 (B, D)`` and conditions ``cond (B, E)``: draw ``t ~ U(0, 1)`` and noise
    ``x0 ~ N(0, I)``, form ``x_t``, drop each condition with probability ``drop_prob`` (for
    classifier-free guidance) and compare the model's ``x1_hat`` with ``x1``."""
    check_type("model", model, FlowDenoiser)
    check_float("drop_prob", drop_prob, low=0.0, high=1.0)
    check_tensor("x1", x1, dtype="float", ndim=2)
    B, device = len(x1), x1.device
    t = torch.rand(B, generator=generator).to(device)
    x0 = torch.randn(x1.shape, generator=generator).to(device)
    drop = (torch.rand(B, generator=generator) < drop_prob).to(device)
    x1_hat = model(interpolate(x1, x0, t), t, cond, drop)
    return F.mse_loss(x1_hat, x1)


def _check_sampling(model, cond, steps, scale, clip, path, noise) -> None:
    """Check :func:`sample`'s arguments."""
    check_type("model", model, FlowDenoiser)
    check_tensor("cond", cond, dtype="float", shape=(None, model.cond_dim))
    if noise is not None:
        check_tensor("noise", noise, dtype="float", shape=(len(cond), model.data_dim))
    check_int("steps", steps, minimum=1)
    check_float("scale", scale, low=0.0)
    if clip is not None:
        ok = isinstance(clip, tuple) and len(clip) == 2 and clip[0] < clip[1]
        require(ok, "clip", "a (low, high) tuple with low < high, or None", clip)
    if path is not None:
        check_type("path", path, list, "list or None")


@torch.no_grad()
def sample(
    model: FlowDenoiser,
    cond: torch.Tensor,
    steps: int = 16,
    scale: float = 2.0,
    generator: torch.Generator | None = None,
    clip: tuple[float, float] | None = None,
    path: list | None = None,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """Samples ``(B, D)`` for conditions ``cond (B, E)``: Euler steps of ``dx/dt = v`` from noise
    at ``t = 0`` to ``t = 1``, the velocity from the guided clean prediction. Both predictions of
    a step run as one batch of ``2B``. The same ``generator`` state gives the same samples.
    With at most ``1 / MIN_GAP`` steps the last step lands on its clean prediction.

    ``clip=(low, high)`` clamps each guided clean prediction to the data's range (*static
    thresholding*, as Imagen does: Saharia et al., NeurIPS 2022): guidance can push a
    prediction past the range of any real image, and clamping keeps every step's target in it.
    ``path``, a list, receives ``x`` at every step's start and the samples at the end
    (``steps + 1`` tensors ``(B, D)``): the way from noise to image. ``noise (B, D)`` is the
    start at ``t = 0`` when given (``generator`` is then not used): the same start gives the
    same samples anywhere, as the browser's sampler of the book's website is tested to do."""
    _check_sampling(model, cond, steps, scale, clip, path, noise)
    B, device = len(cond), cond.device
    if noise is None:
        noise = torch.randn(B, model.data_dim, generator=generator)
    x = noise.to(device)
    drop = torch.cat([torch.zeros(B, dtype=torch.bool), torch.ones(B, dtype=torch.bool)])
    for i in range(steps):
        if path is not None:
            path.append(x)
        t = torch.full((B,), i / steps, device=device)
        both = model(x.repeat(2, 1), t.repeat(2), cond.repeat(2, 1), drop.to(device))
        x1_hat = guided(both[:B], both[B:], scale)
        if clip is not None:
            x1_hat = x1_hat.clamp(*clip)
        x = x + velocity_from_clean(x1_hat, x, t) / steps
    if path is not None:
        path.append(x)
    return x
