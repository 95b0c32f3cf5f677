"""A tiny decoder-only transformer in the spirit of minGPT/nanoGPT.

Causal self-attention through ``F.scaled_dot_product_attention``, pre-norm blocks, learned
positions, tied input/output embeddings, and a ten-line ``generate`` loop. Alone it is a plain
language model over any token vocabulary (chapter 6.2's image prior). It can also take *prefix
embeddings*, vectors already at its width that a projector made from another modality
(:mod:`mmlib.models.vlm`, the LLaVA recipe of chapter 6.1), placed before the tokens; the
tokens keep the positions they had in text-only training.

Shapes: B batch, P prefix length, T tokens, C = n_embd, nh heads, hs = C // nh.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mmlib.validate import (
    CheckedEmbedding,
    check_float,
    check_int,
    check_same_batch,
    check_tensor,
    check_type,
    require,
)

__all__ = ["GPT", "GPTConfig"]


@dataclass
class GPTConfig:
    """Sizes of a :class:`GPT`. ``block_size`` counts tokens (prefix embeddings take none).

    ``init_std``: the spread of the initial weights. GPT-2's 0.02 suits its width of 768
    (about 0.55 / sqrt(n_embd)); a model only a few dozen wide learns much faster from a larger
    one, since with 0.02 every attention score starts near zero (chapter 6.1 measures it).
    """

    vocab_size: int
    block_size: int
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64
    dropout: float = 0.0
    init_std: float = 0.02

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            check_int(name, getattr(self, name), minimum=1)
        require(self.n_embd % self.n_head == 0, "n_embd", "divisible by n_head", self.n_embd)
        check_float("dropout", self.dropout, low=0.0, high=1.0)
        check_float("init_std", self.init_std, low=1e-6)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position t sees only positions <= t."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)  # each (B, T, C)
        q, k, v = (z.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(  # (B, nh, T, hs)
            q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0
        )
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))  # (B, T, C)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(config.n_embd, 4 * config.n_embd),
            nn.GELU(),
            nn.Linear(4 * config.n_embd, config.n_embd),
            nn.Dropout(config.dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Decoder-only transformer: tokens ``(B, T)`` (+ prefix embeddings ``(B, P, C)``) -> logits."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = check_type("config", config, GPTConfig)
        self.wte = CheckedEmbedding(config.vocab_size, config.n_embd, argument="idx")
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying, as in GPT-2
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=self.config.init_std)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def _check_input(self, idx: torch.Tensor, prefix_embeds: torch.Tensor | None) -> int:
        """Check ``forward``'s input, cheaply (``wte`` reports ids out of range); return P."""
        check_tensor("idx", idx, ndim=2, dtype="integer")
        P = 0
        if prefix_embeds is not None:
            width = self.config.n_embd
            check_tensor("prefix_embeds", prefix_embeds, dtype="float", shape=(None, None, width))
            check_same_batch(idx=idx, prefix_embeds=prefix_embeds)
            P = prefix_embeds.shape[1]  # no positions of their own: the tokens keep 0..T-1
        room = self.config.block_size
        require(idx.shape[1] <= room, "idx", f"at most block_size = {room} tokens long", idx)
        return P

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        prefix_embeds: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits ``(B, T, vocab_size)`` for the token positions, and the mean cross-entropy
        against ``targets (B, T)`` (entries ``-100`` are ignored) when targets are given.

        ``prefix_embeds (B, P, n_embd)`` go in before the tokens as they are; the tokens keep
        positions 0..T-1.
        """
        P = self._check_input(idx, prefix_embeds)
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))  # (B, T, C)
        if prefix_embeds is not None:
            x = torch.cat([prefix_embeds, x], dim=1)  # (B, P + T, C)
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x[:, P:]))  # (B, T, V)
        loss = None
        if targets is not None:
            check_tensor("targets", targets, dtype="integer", shape=tuple(idx.shape))
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        return logits, loss

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        allowed: torch.Tensor | None = None,
        greedy: bool = False,
        generator: torch.Generator | None = None,
        prefix_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Extend ``idx (B, T)`` by ``max_new_tokens`` sampled tokens -> ``(B, T + new)``.

        ``allowed (vocab_size,)`` bool masks the logits so only those tokens can be produced
        (logits masking, as in DALLE-pytorch); ``greedy`` takes the argmax; ``generator`` makes
        sampling repeatable.
        """
        check_int("max_new_tokens", max_new_tokens, minimum=1)
        check_float("temperature", temperature, low=1e-6)
        if top_k is not None:
            check_int("top_k", top_k, minimum=1)
        if allowed is not None:
            check_tensor("allowed", allowed, shape=(self.config.vocab_size,), dtype=torch.bool)
        for _ in range(max_new_tokens):
            logits, _ = self(idx, prefix_embeds=prefix_embeds)
            logits = logits[:, -1] / temperature  # (B, V)
            if allowed is not None:
                logits = logits.masked_fill(~allowed.to(logits.device), float("-inf"))
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.shape[-1])).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            if greedy:
                nxt = logits.argmax(dim=-1, keepdim=True)
            else:
                probs = F.softmax(logits, dim=-1)
                nxt = torch.multinomial(probs.cpu(), 1, generator=generator).to(idx.device)
            idx = torch.cat([idx, nxt], dim=1)
        return idx
