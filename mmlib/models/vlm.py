"""The projector of a vision-language model: the connector of LLaVA (Liu et al., NeurIPS 2023).

A frozen vision encoder turns an image into patch (or region) features; the *projector* maps
each feature to the language model's width, so the image becomes a sequence of *visual tokens*
placed before the conversation's tokens. LLaVA's projector is one linear layer; LLaVA-1.5
(Liu et al., CVPR 2024) made it a two-layer MLP with a GELU (``"mlp"``). CLIP's vision
transformer adds a position to every patch before its layers, so LLaVA's patch features know
where they are; the conv encoder here does not, so the projector adds a learned vector per
patch. :class:`mmlib.models.dialogue.VisualDialogueModel` uses it, with LLaVA's training stages.

Shapes: B batch, P patches, D patch features, C the language model's width.
"""

from __future__ import annotations

import torch
from torch import nn

from mmlib.validate import check_choice, check_float, check_ints

__all__ = ["PROJECTORS", "Projector"]

#: The kinds of projector, one linear layer (LLaVA) or Linear-GELU-Linear (LLaVA-1.5).
PROJECTORS = ("linear", "mlp")


class Projector(nn.Module):
    """Patch features ``(B, P, D)`` -> visual tokens ``(B, P, C)``, a learned position added.

    The positions start at zero, or drawn with spread ``position_std`` (a language model with
    a small width reads them sooner when they start as large as its word embeddings)."""

    def __init__(
        self,
        patch_dim: int,
        width: int,
        num_patches: int,
        kind: str = "mlp",
        position_std: float = 0.0,
    ):
        super().__init__()
        check_ints(minimum=1, patch_dim=patch_dim, width=width, num_patches=num_patches)
        self.kind = check_choice("kind", kind, PROJECTORS)
        check_float("position_std", position_std, low=0.0)
        if kind == "linear":
            self.net = nn.Linear(patch_dim, width)
        else:
            hidden = nn.Linear(patch_dim, width)
            self.net = nn.Sequential(hidden, nn.GELU(), nn.Linear(width, width))
        self.position = nn.Parameter(torch.zeros(num_patches, width))
        if position_std > 0:
            nn.init.normal_(self.position, std=position_std)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return self.net(patches) + self.position  # (B, P, C)
