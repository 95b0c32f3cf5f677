"""A VQ-VAE image tokenizer: images -> a small grid of discrete codes -> images.

The encoder turns a 32x32 image into an ``h x w`` grid of vectors; each vector is replaced by
its nearest entry of a learned codebook of ``num_codes`` vectors, so the image becomes ``h*w``
integers that a transformer can model like words (DALL-E's first stage; van den Oord et al. 2017).
Three tricks make it train at toy scale:

- the straight-through estimator ``z + (z_q - z).detach()``: the forward pass uses the code
  vector, the backward pass copies the decoder's gradient to the encoder unchanged;
- the codebook loss ``|sg(z) - z_q|^2`` moves codes towards encoder outputs, and the commitment
  loss ``beta * |z - sg(z_q)|^2`` (beta = 0.25) keeps encoder outputs near their codes;
- the codebook starts as ``num_codes`` encoder outputs (k-means++ seeding) of a training batch,
  taken after a short warm-up as a plain autoencoder, so every code begins where the data is
  (random codes far from the data are never picked: "index collapse").

Shapes: B batch, D = code_dim, h x w latent grid (image_size / patch on a side), K = num_codes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmlib.validate import (
    CheckedEmbedding,
    check_float,
    check_images,
    check_int,
    check_ints,
    check_tensor,
    check_token_ids,
    require,
)

__all__ = ["VQVAE", "VectorQuantizer", "codebook_usage"]


class VectorQuantizer(nn.Module):
    """Nearest-neighbour quantisation of ``(B, D, h, w)`` vectors to a codebook ``(K, D)``."""

    def __init__(self, num_codes: int = 64, code_dim: int = 16, beta: float = 0.25):
        super().__init__()
        self.num_codes = check_int("num_codes", num_codes, minimum=2)
        self.code_dim = check_int("code_dim", code_dim, minimum=1)
        self.beta = check_float("beta", beta, low=0.0)
        self.codebook = CheckedEmbedding(num_codes, code_dim, argument="codes")
        nn.init.uniform_(self.codebook.weight, -1.0 / num_codes, 1.0 / num_codes)
        self.register_buffer("initialised", torch.tensor(False))

    @torch.no_grad()
    def init_from(self, z: torch.Tensor) -> None:
        """Set the codebook to ``K`` vectors of ``z (B, D, h, w)``, picked by k-means++ seeding.

        Each next code is drawn with probability proportional to its squared distance from the
        codes picked so far, so a batch that is mostly background still yields ``K`` different
        codes. Needs ``B * h * w >= K`` vectors; draws from torch's global RNG.
        """
        self._check_z(z)
        flat = z.permute(0, 2, 3, 1).reshape(-1, self.code_dim)  # (N, D)
        require(len(flat) >= self.num_codes, "z", f"at least {self.num_codes} vectors (K)", z)
        first = torch.randint(len(flat), (1,)).item()
        picked = [first]
        nearest = (flat - flat[first]).pow(2).sum(1)  # (N,) squared distance to nearest pick
        for _ in range(self.num_codes - 1):
            weights = nearest if bool(nearest.sum() > 0) else torch.ones_like(nearest)
            k = torch.multinomial(weights.cpu(), 1).item()
            picked.append(k)
            nearest = torch.minimum(nearest, (flat - flat[k]).pow(2).sum(1))
        self.codebook.weight.copy_(flat[picked])
        self.initialised.fill_(True)

    def _check_z(self, z: object) -> torch.Tensor:
        return check_tensor("z", z, dtype="float", shape=(None, self.code_dim, None, None))

    def codes(self, z: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code for every vector: ``(B, D, h, w)`` -> ``(B, h, w) int64``."""
        B, D, h, w = self._check_z(z).shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, D)  # (B*h*w, D)
        distance = torch.cdist(flat, self.codebook.weight)  # (B*h*w, K)
        return distance.argmin(dim=1).view(B, h, w)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """Code vectors of ``codes (B, h, w)`` as a ``(B, D, h, w)`` grid (ids out of range:
        the codebook's lookup reports them, without a scan)."""
        check_tensor("codes", codes, ndim=3, dtype="integer")
        return self.codebook(codes).permute(0, 3, 1, 2)

    def forward(
        self, z: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """``z (B, D, h, w)`` -> straight-through ``z_q (B, D, h, w)``, ``codes (B, h, w)`` and
        the losses ``{"codebook": ..., "commitment": beta * ...}``."""
        codes = self.codes(z)  # checks z
        z_q = self.lookup(codes)  # (B, D, h, w)
        losses = {
            "codebook": F.mse_loss(z_q, z.detach()),  # moves the codes
            "commitment": self.beta * F.mse_loss(z, z_q.detach()),  # moves the encoder
        }
        z_st = z + (z_q - z).detach()  # forward: z_q; backward: gradient passes to z unchanged
        return z_st, codes, losses


def _edges(images: torch.Tensor) -> torch.Tensor:
    """Horizontal and vertical pixel differences of ``(B, C, H, W)`` images, flattened."""
    dy = images[..., 1:, :] - images[..., :-1, :]  # (B, C, H-1, W)
    dx = images[..., :, 1:] - images[..., :, :-1]  # (B, C, H, W-1)
    return torch.cat([dy.flatten(1), dx.flatten(1)], dim=1)


class VQVAE(nn.Module):
    """Images ``(B, 3, S, S)`` in [0, 1] <-> codes ``(B, grid, grid)`` in ``[0, num_codes)``.

    - Encoder: each ``patch x patch`` square of pixels goes through the same small network (a
      convolution with stride ``patch``, then a 3x3 convolution that lets each cell see its
      neighbours, then a 1x1 projection), giving one ``code_dim`` vector per square: a
      ``grid x grid`` latent with ``grid = image_size // patch``.
    - Quantiser: nearest codebook vector, straight-through gradient, codebook and commitment
      losses (see :class:`VectorQuantizer`).
    - Decoder: an MLP from all ``grid * grid`` code vectors to all pixels, so neighbouring codes
      can share the work of drawing one object.
    - Loss: mean squared error on pixels, plus ``edge_weight`` times the mean squared error on
      pixel differences ("edges"). Plain pixel error spends the codes on sub-pixel jitter; the
      edge term makes an object's outline (circle or square?) worth getting right.

    For the first ``warmup_steps`` training forward passes the quantiser is bypassed (a plain
    autoencoder); the next training pass seeds the codebook from that batch's encoder outputs,
    which by then describe the data. ``warmup_steps=0`` seeds it on the first pass.
    """

    def __init__(
        self,
        num_codes: int = 64,
        code_dim: int = 16,
        image_size: int = 16,
        patch: int = 4,
        width: int = 32,
        hidden: int = 256,
        beta: float = 0.25,
        edge_weight: float = 15.0,
        warmup_steps: int = 50,
    ):
        super().__init__()
        check_ints(minimum=1, code_dim=code_dim, patch=patch, width=width, hidden=hidden)
        self.image_size = check_int("image_size", image_size, minimum=2)
        require(image_size % patch == 0, "patch", f"a divisor of image_size={image_size}", patch)
        self.edge_weight = check_float("edge_weight", edge_weight, low=0.0)
        self.warmup_steps = check_int("warmup_steps", warmup_steps, minimum=0)
        self.grid = image_size // patch
        self.encoder = nn.Sequential(
            nn.Conv2d(3, width, patch, stride=patch),  # (B, width, grid, grid)
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),  # each cell also sees its neighbours
            nn.ReLU(),
            nn.Conv2d(width, code_dim, 1),  # (B, D, grid, grid)
        )
        self.quantizer = VectorQuantizer(num_codes, code_dim, beta)
        self.decoder = nn.Sequential(
            nn.Flatten(),  # (B, D * grid * grid)
            nn.Linear(code_dim * self.grid**2, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 3 * image_size**2),
            nn.Unflatten(1, (3, image_size, image_size)),  # (B, 3, S, S)
        )
        self.register_buffer("steps_seen", torch.tensor(0))

    @property
    def num_codes(self) -> int:
        return self.quantizer.num_codes

    def _check(self, images: object) -> torch.Tensor:
        return check_images("images", images, size=self.image_size)

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 3, S, S)`` -> codes ``(B, grid, grid) int64``."""
        return self.quantizer.codes(self.encoder(self._check(images)))

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes ``(B, grid, grid)`` -> images ``(B, 3, S, S)``, clipped to [0, 1]."""
        check_tensor("codes", codes, dtype="integer", shape=(None, self.grid, self.grid))
        return self.decoder(self.quantizer.lookup(codes)).clamp(0.0, 1.0)

    def _losses(self, recon: torch.Tensor, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            "reconstruction": F.mse_loss(recon, images),
            "edges": self.edge_weight * F.mse_loss(_edges(recon), _edges(images)),
        }

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Images ``(B, 3, S, S)`` -> reconstructions ``(B, 3, S, S)`` and the loss parts
        ``{"reconstruction", "edges", "codebook", "commitment"}``; train on their sum."""
        z = self.encoder(self._check(images))  # (B, D, grid, grid)
        if self.training:
            self.steps_seen += 1
            if int(self.steps_seen) <= self.warmup_steps:  # a plain autoencoder for now
                recon = self.decoder(z)
                zero = z.new_zeros(())
                return recon, {**self._losses(recon, images), "codebook": zero, "commitment": zero}
            if not bool(self.quantizer.initialised):
                self.quantizer.init_from(z.detach())
        z_q, _, losses = self.quantizer(z)
        recon = self.decoder(z_q)
        return recon, {**self._losses(recon, images), **losses}


def codebook_usage(codes: torch.Tensor, num_codes: int) -> float:
    """Fraction of the ``num_codes`` codes that occur at least once in ``codes`` (any shape,
    integer ids in ``[0, num_codes)``)."""
    check_int("num_codes", num_codes, minimum=1)
    check_token_ids("codes", codes, num_codes, ndim=None)  # any shape; evaluation: scan is fine
    return torch.unique(codes).numel() / num_codes
