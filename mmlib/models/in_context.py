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

__all__ = ["InContextNamer", "attention_maps", "fit_support_heads", "naming_loss"]


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
        self.object_norm = nn.LayerNorm(n_embd)  # object tokens at the scale of the name codes
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

    def tokens(self, features: torch.Tensor, names: torch.Tensor) -> torch.Tensor:
        """The prompt as the first block reads it: ``(B, 2L, C)``, positions added."""
        self._check_input(features, names)
        B, L, _ = features.shape
        objects = self.object_norm(self.object_proj(features))  # (B, L, C)
        try:  # the lookup checks the ids' range, without a scan per step
            words = F.embedding(names, self.name_codes)  # (B, L, C)
        except IndexError:
            msg = f"names must hold name ids in [0, {len(self.name_codes)}), got {names.tolist()}"
            raise ValueError(msg[:300]) from None
        x = torch.stack([objects, words], dim=2).view(B, 2 * L, -1)  # obj_0, name_0, obj_1, ...
        return x + self.wpe(torch.arange(2 * L, device=x.device))

    def forward(self, features: torch.Tensor, names: torch.Tensor) -> torch.Tensor:
        x = self.tokens(features, names)  # (B, 2L, C)
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


@torch.no_grad()
def attention_maps(
    model: InContextNamer, features: torch.Tensor, names: torch.Tensor
) -> list[torch.Tensor]:
    """Each block's attention weights, ``(B, nh, 2L, 2L)`` per block: row t says how much token t
    takes from each token up to it (the rows sum to 1). Recomputed from the blocks' own
    weights, as ``F.scaled_dot_product_attention`` does not return them."""
    x, maps = model.tokens(features, names), []
    for block in model.blocks:
        B, T, C = x.shape
        nh = block.attn.n_head
        q, k, _ = block.attn.c_attn(block.ln_1(x)).split(C, dim=2)
        q, k = (z.view(B, T, nh, C // nh).transpose(1, 2) for z in (q, k))  # (B, nh, T, hs)
        scores = q @ k.transpose(-2, -1) / (C // nh) ** 0.5  # (B, nh, T, T)
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        maps.append(scores.masked_fill(~causal, float("-inf")).softmax(-1))
        x = block(x)
    return maps


def fit_support_heads(
    support: torch.Tensor,
    classes: torch.Tensor,
    ways: int,
    steps: int = 50,
    lr: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fine-tuning instead of prompting: one linear classifier per episode, fitted by gradient
    descent (w <- w - lr * dE/dw, E the mean cross-entropy over the episode's support) to that
    episode's support alone.

    ``support (E, S, F)`` features and their ``classes (E, S)`` in 0..ways-1 -> weights
    ``(E, ways, F)`` and biases ``(E, ways)``, all episodes fitted at once; score queries with
    ``features @ weights.transpose(1, 2) + biases[:, None]``. Weights start at zero.
    """
    check_tensor("support", support, ndim=3, dtype="float")
    check_tensor("classes", classes, dtype="integer", shape=tuple(support.shape[:2]))
    check_ints(minimum=1, ways=ways, steps=steps)
    require(support.shape[1] > 0, "support", "at least one example per episode", support)
    low, high = int(classes.min()), int(classes.max())  # once, before the loop
    require(low >= 0 and high < ways, "classes", f"in [0, {ways})", f"{low} to {high}")
    E, S, F_ = support.shape
    weights = torch.zeros(E, ways, F_, device=support.device, requires_grad=True)
    biases = torch.zeros(E, ways, device=support.device, requires_grad=True)
    for _ in range(steps):
        with torch.enable_grad():
            logits = support @ weights.transpose(1, 2) + biases[:, None]  # (E, S, ways)
            # each episode's mean loss over its support; summed, so that each episode's weights
            # get the gradient of their own episode's loss
            loss = F.cross_entropy(logits.flatten(0, 1), classes.flatten(), reduction="sum") / S
            grad_w, grad_b = torch.autograd.grad(loss, (weights, biases))
        with torch.no_grad():
            weights -= lr * grad_w
            biases -= lr * grad_b
    return weights.detach(), biases.detach()
