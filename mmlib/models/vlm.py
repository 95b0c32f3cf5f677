"""Visual instruction tuning in miniature: the recipe of LLaVA (Liu et al., NeurIPS 2023).

A frozen vision encoder turns an image into patch features; a small *projector* maps each
patch feature to the language model's width, so the image becomes a sequence of *visual tokens*
placed before the conversation's tokens; a decoder-only language model, trained on text first,
reads both. Training has two stages (LLaVA, section 4.2):

1. **alignment** (``"align"``): only the projector trains, on image -> caption, so that visual
   tokens come out in a form the frozen language model can read;
2. **visual instruction tuning** (``"instruct"``): the projector and the language model train on
   conversations about the image, with the loss on answer tokens only.

The encoder stays frozen in both, as LLaVA keeps CLIP's. LLaVA's projector is one linear layer;
LLaVA-1.5 (Liu et al., CVPR 2024) made it a two-layer MLP with a GELU (``"mlp"``). CLIP's vision
transformer adds a position to every patch before its layers, so LLaVA's patch features know
where they are; the conv encoder here does not, so the projector adds a learned vector per patch.

Shapes: B batch, P patches, D patch features, C the language model's width, T tokens, V vocabulary.
"""

from __future__ import annotations

import torch
from torch import nn

from mmlib.encoders import ImageEncoder
from mmlib.models.gpt import GPT
from mmlib.validate import check_choice, check_int, check_ints, check_tensor, check_type, require

__all__ = ["PROJECTORS", "STAGES", "Projector", "VisionLanguageModel"]

#: The kinds of projector, one linear layer (LLaVA) or Linear-GELU-Linear (LLaVA-1.5).
PROJECTORS = ("linear", "mlp")
#: The parts of a vision-language model that train in each stage; the encoder never does.
STAGES = {"align": ("projector",), "instruct": ("projector", "lm")}


class Projector(nn.Module):
    """Patch features ``(B, P, D)`` -> visual tokens ``(B, P, C)``, a learned position added."""

    def __init__(self, patch_dim: int, width: int, num_patches: int, kind: str = "mlp"):
        super().__init__()
        check_ints(minimum=1, patch_dim=patch_dim, width=width, num_patches=num_patches)
        self.kind = check_choice("kind", kind, PROJECTORS)
        if kind == "linear":
            self.net = nn.Linear(patch_dim, width)
        else:
            hidden = nn.Linear(patch_dim, width)
            self.net = nn.Sequential(hidden, nn.GELU(), nn.Linear(width, width))
        self.position = nn.Parameter(torch.zeros(num_patches, width))

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return self.net(patches) + self.position  # (B, P, C)


class VisionLanguageModel(nn.Module):
    """Frozen image encoder -> projector -> language model (:class:`mmlib.models.gpt.GPT`).

    ``encode(images)`` gives the frozen encoder's patch features once, so training can reuse
    them; ``forward(patches, idx, targets)`` gives the language model's logits for the tokens
    and, with targets, the loss. ``set_stage`` freezes all but the stage's parts.
    """

    def __init__(self, encoder: ImageEncoder, lm: GPT, projector: str = "mlp"):
        super().__init__()
        self.encoder = check_type("encoder", encoder, ImageEncoder)
        self.lm = check_type("lm", lm, GPT)
        require(lm.config.prefix_dim is None, "lm", "a GPT without prefix_dim", lm.config)
        check_choice("projector", projector, PROJECTORS)
        self.projector = Projector(
            encoder.patch_dim, lm.config.n_embd, encoder.num_patches, projector
        )
        self.set_stage("align")

    def set_stage(self, stage: str) -> str:
        """Let only the stage's parts train (``STAGES[stage]``); the encoder never does."""
        check_choice("stage", stage, STAGES)
        for part in ("encoder", "projector", "lm"):
            getattr(self, part).requires_grad_(part in STAGES[stage])
        self.stage = stage
        return stage

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 3, H, W)`` -> the frozen encoder's patch features ``(B, P, D)``."""
        return self.encoder.patches(images)

    def visual_tokens(self, patches: torch.Tensor) -> torch.Tensor:
        """Patch features ``(B, P, D)`` -> visual tokens ``(B, P, C)``."""
        shape = (None, self.encoder.num_patches, self.encoder.patch_dim)
        check_tensor("patches", patches, dtype="float", shape=shape)
        return self.projector(patches)

    def forward(
        self, patches: torch.Tensor, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits ``(B, T, V)`` for the tokens ``idx (B, T)`` after the image's visual tokens,
        and the cross-entropy against ``targets (B, T)`` (``-100`` skipped) when given."""
        return self.lm(idx, targets=targets, prefix_embeds=self.visual_tokens(patches))

    @torch.no_grad()
    def generate(
        self, patches: torch.Tensor, idx: torch.Tensor, max_new_tokens: int, **sampling
    ) -> torch.Tensor:
        """Extend ``idx (B, T)`` after the image's visual tokens -> ``(B, T + max_new_tokens)``;
        ``sampling`` is passed to :meth:`mmlib.models.gpt.GPT.generate` (``greedy``, ...)."""
        check_int("max_new_tokens", max_new_tokens, minimum=1)
        tokens = self.visual_tokens(patches)
        return self.lm.generate(idx, max_new_tokens, prefix_embeds=tokens, **sampling)
