"""Naming in context: a tiny causal transformer that learns new words from its prompt.

The prompt interleaves objects and names, ``[obj_0, name_0, obj_1, name_1, ...]``, as
Frozen (Tsimpoukelli et al. 2021) and Flamingo (Alayrac et al. 2022) interleave images and
text. At each object's token the model predicts that object's name. The names of an episode
are drawn afresh (:mod:`mmlib.data.episodes`), so the weights cannot store them: the model has
to find an earlier object like this one and copy the name that followed it, the job of the
*induction heads* of Olsson et al. (2022). No weight changes at test time; the examples in the
prompt are all the model gets, as in GPT-3's few-shot prompts (Brown et al. 2020).

Each name is a fixed random code, never trained (``name_codes``): a name then carries no meaning
that training could attach to it, and a name never seen in training is as good as any other.
The output scores every name by the dot product of the model's state with its code.

Shapes: B batch, L (object, name) pairs, F object features, C = n_embd, M names.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmlib.models.gpt import Block, GPTConfig
from mmlib.validate import check_int, check_ints, check_same_batch, check_tensor, require

__all__ = ["InContextNamer", "naming_loss"]


class InContextNamer(nn.Module):
    """Object features ``(B, L, F)`` and name ids ``(B, L)`` -> name logits ``(B, L, M)``.

    The logits at pair i come from object i's token, which sees the pairs before it and
    object i itself, never name i.
    """

    def __init__(
        self,
        feature_dim: int,
        num_names: int,
        max_pairs: int,
        n_embd: int = 64,
        n_layer: int = 2,
        n_head: int = 4,
        seed: int = 0,
    ):
        super().__init__()
        check_ints(minimum=1, feature_dim=feature_dim, num_names=num_names, max_pairs=max_pairs)
        check_int("seed", seed, minimum=0)
        config = GPTConfig(num_names, 2 * max_pairs, n_layer, n_head, n_embd, init_std=0.05)
        self.max_pairs = max_pairs
        self.object_proj = nn.Linear(feature_dim, n_embd)
        codes = torch.randn(num_names, n_embd, generator=torch.Generator().manual_seed(seed))
        self.register_buffer("name_codes", codes)  # (M, C): fixed, never trained
        self.wpe = nn.Embedding(2 * max_pairs, n_embd)
        self.blocks = nn.ModuleList(Block(config) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, n_embd)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=config.init_std)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def _check_input(self, features: torch.Tensor, names: torch.Tensor) -> None:
        width = self.object_proj.in_features
        check_tensor("features", features, dtype="float", shape=(None, None, width))
        check_tensor("names", names, dtype="integer", shape=tuple(features.shape[:2]))
        L = features.shape[1]
        require(L <= self.max_pairs, "features", f"at most max_pairs = {self.max_pairs} long", L)

    def forward(self, features: torch.Tensor, names: torch.Tensor) -> torch.Tensor:
        self._check_input(features, names)
        B, L, _ = features.shape
        objects = self.object_proj(features)  # (B, L, C)
        try:  # the lookup checks the ids' range, without a scan per step
            words = F.embedding(names, self.name_codes)  # (B, L, C)
        except IndexError:
            msg = f"names must hold name ids in [0, {len(self.name_codes)}), got {names.tolist()}"
            raise ValueError(msg[:300]) from None
        x = torch.stack([objects, words], dim=2).view(B, 2 * L, -1)  # obj_0, name_0, obj_1, ...
        x = x + self.wpe(torch.arange(2 * L, device=x.device))
        for block in self.blocks:
            x = block(x)
        at_objects = self.head(self.ln_f(x[:, 0::2]))  # (B, L, C): the states at object tokens
        return at_objects @ self.name_codes.T  # (B, L, M)


def naming_loss(
    model: InContextNamer, features: torch.Tensor, names: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Mean cross-entropy of the name at the positions where ``mask (B, L)`` is True: those whose
    class appeared earlier in the episode (``Episodes.named_before``); elsewhere no name could
    be known."""
    check_tensor("mask", mask, dtype=torch.bool)
    check_same_batch(features=features, mask=mask)
    require(mask.shape == names.shape, "mask", f"of shape {tuple(names.shape)}", mask)
    logits = model(features, names)  # (B, L, M)
    return F.cross_entropy(logits[mask], names[mask])
