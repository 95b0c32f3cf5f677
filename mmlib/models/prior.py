"""DALL-E's second stage: one transformer over caption tokens followed by image tokens.

A caption's word ids and an image's VQ codes are joined into one sequence over a joint
vocabulary: ids ``[0, text_vocab)`` are words, ids ``[text_vocab, text_vocab + num_codes)`` are
image codes (code ``c`` becomes id ``text_vocab + c``). A decoder-only GPT learns to predict
every next token. As in DALL-E (Ramesh et al. 2021), the text part of the loss is weighted 1/8
and the image part 7/8: the point of the model is the image, the caption is given at sampling
time. The logits are masked by position, in training and in sampling: where the next token is a
word, every image id gets -inf, and where it is an image code, every word id does, so no
probability is ever spent on a token of the wrong kind. (This masking is not described in the
DALL-E paper; it is how the open-source re-implementation DALLE-pytorch does it.) Sampling
feeds the caption and draws the image tokens one by one.

Shapes: B batch, L = text_len caption positions, M = grid * grid image tokens, V = joint vocab.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mmlib.data.tokenizer import Tokenizer
from mmlib.data.world import IMAGE_SIZE
from mmlib.models.contrastive import DualEncoder
from mmlib.models.gpt import GPT, GPTConfig
from mmlib.models.vq import VQVAE
from mmlib.modes import evaluating
from mmlib.validate import (
    check_float,
    check_int,
    check_ints,
    check_strings,
    check_tensor,
    check_token_ids,
    check_type,
    require,
)

__all__ = ["ImagePrior", "centre_pad", "clip_rerank", "generate_images"]


def centre_pad(images: torch.Tensor, size: int = IMAGE_SIZE) -> torch.Tensor:
    """Put images ``(..., 3, S, S)`` in the middle of a black ``size x size`` canvas:
    ``(..., 3, size, size)``, the inverse of the crop in :func:`~mmlib.data.scenes.centre_objects`
    (for models such as :class:`mmlib.models.contrastive.DualEncoder` that take 32x32 images)."""
    check_tensor("images", images, dtype="float")
    square = images.ndim >= 3 and images.shape[-3] == 3 and images.shape[-1] == images.shape[-2]
    require(square, "images", "of shape (..., 3, S, S)", images)
    extra = check_int("size", size, minimum=1) - images.shape[-1]
    require(extra >= 0 and extra % 2 == 0, "size", f"{images.shape[-1]} + an even number", size)
    return F.pad(images, (extra // 2,) * 4)


def _check_captions(captions: object) -> list[str]:
    captions = check_strings("captions", captions)
    require(len(captions) > 0, "captions", "a non-empty list", captions)
    return captions


class ImagePrior(nn.Module):
    """A GPT over ``[caption tokens (L), image codes (M)]`` with DALL-E's loss weighting.

    ``tokenizer`` maps captions to word ids (padded with ``<pad>`` to ``text_len``);
    ``num_codes`` and ``grid`` describe the image tokenizer (a :class:`mmlib.models.vq.VQVAE`).
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        num_codes: int,
        grid: int,
        text_len: int,
        n_layer: int = 2,
        n_head: int = 4,
        n_embd: int = 64,
        text_weight: float = 1 / 8,
    ):
        super().__init__()
        check_type("tokenizer", tokenizer, Tokenizer, "mmlib Tokenizer")
        self.tokenizer = tokenizer
        self.num_codes = check_int("num_codes", num_codes, minimum=2)
        check_ints(minimum=1, grid=grid, text_len=text_len)
        self.grid, self.text_len = grid, text_len
        self.text_weight = check_float("text_weight", text_weight, low=0.0, high=1.0)
        self.text_vocab = tokenizer.vocab_size
        self.image_len = grid * grid
        self.gpt = GPT(
            GPTConfig(
                vocab_size=self.text_vocab + num_codes,
                block_size=text_len + self.image_len,
                n_layer=n_layer,
                n_head=n_head,
                n_embd=n_embd,
            )
        )
        self.gpt.wte.argument = "sequences"  # the ids it embeds are those of logits' sequences

    @property
    def vocab_size(self) -> int:
        return self.text_vocab + self.num_codes

    def logits_mask(self) -> torch.Tensor:
        """``(L + M, V) bool``: row ``t`` is True for the ids allowed as the token at position
        ``t``: word ids for the ``L`` caption positions, image-code ids for the ``M`` image
        positions."""
        is_image = torch.arange(self.vocab_size) >= self.text_vocab  # (V,)
        image_position = torch.arange(self.text_len + self.image_len) >= self.text_len
        return is_image.view(1, -1) == image_position.view(-1, 1)

    def _check_sequences(self, sequences: object) -> int:
        """Check token sequences of 2 to ``L + M`` ids each (dtype and shape only: the GPT's
        embedding reports ids out of range); return their length."""
        T = check_tensor("sequences", sequences, ndim=2, dtype="integer").shape[1]
        most = self.text_len + self.image_len
        require(2 <= T <= most, "sequences", f"2 to L + M = {most} ids long", sequences)
        return T

    def logits(self, sequences: torch.Tensor) -> torch.Tensor:
        """Masked next-token logits ``(B, T - 1, V)`` for ``sequences (B, T)``, ``T <= L + M``:
        entry ``t`` predicts token ``t + 1``, and ids not allowed there are ``-inf``."""
        T = self._check_sequences(sequences)
        logits, _ = self.gpt(sequences[:, :-1])  # (B, T - 1, V)
        allowed = self.logits_mask()[1:T].to(logits.device)  # (T - 1, V): for tokens 1 .. T-1
        return logits.masked_fill(~allowed, float("-inf"))

    def encode_captions(self, captions: Sequence[str]) -> torch.Tensor:
        """Captions -> word ids ``(B, L) int64``, padded with ``<pad>`` to ``text_len``."""
        captions = _check_captions(captions)
        ids, lengths = self.tokenizer.encode_batch(captions)
        most, longest = int(lengths.max()), captions[int(lengths.argmax())]
        require(most <= self.text_len, "captions", f"at most {self.text_len} tokens long", longest)
        return F.pad(ids, (0, self.text_len - ids.shape[1]), value=self.tokenizer.pad_id)

    def sequences(self, captions: Sequence[str], codes: torch.Tensor) -> torch.Tensor:
        """Joint sequences ``(B, L + M) int64``: word ids, then image codes shifted by the text
        vocabulary size. ``codes``: ``(B, grid, grid)`` from
        :meth:`mmlib.models.vq.VQVAE.encode`."""
        text = self.encode_captions(captions)
        check_tensor("codes", codes, dtype="integer", shape=(len(text), self.grid, self.grid))
        check_token_ids("codes", codes, self.num_codes, ndim=3)  # built once: a scan is fine
        image = codes.flatten(1).cpu() + self.text_vocab  # (B, M)
        return torch.cat([text, image], dim=1)

    def loss(self, sequences: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Weighted next-token loss on ``sequences (B, L + M)``:
        ``text_weight * CE(text) + (1 - text_weight) * CE(image)``; padding is not predicted.
        Also returns both cross-entropies as floats."""
        logits = self.logits(sequences)  # (B, L + M - 1, V), masked; checks sequences
        full = sequences.shape[1] == self.text_len + self.image_len
        require(full, "sequences", f"L + M = {self.text_len + self.image_len} ids long", sequences)
        targets = sequences[:, 1:]  # position t predicts token t + 1
        try:  # the last ids are only targets: cross_entropy reports them out of range
            per_token = F.cross_entropy(
                logits.flatten(0, 1), targets.flatten(), reduction="none"
            ).view_as(targets)  # (B, L + M - 1)
        except IndexError:
            raise ValueError(f"sequences must hold token ids in [0, {self.vocab_size})") from None
        text_part = per_token[:, : self.text_len - 1]  # predicting words 1 .. L-1
        real = (targets[:, : self.text_len - 1] != self.tokenizer.pad_id).float()
        text_loss = (text_part * real).sum() / real.sum().clamp(min=1.0)
        image_loss = per_token[:, self.text_len - 1 :].mean()  # predicting the M image codes
        loss = self.text_weight * text_loss + (1 - self.text_weight) * image_loss
        return loss, {"text": float(text_loss.detach()), "image": float(image_loss.detach())}

    @torch.no_grad()
    def generate(
        self,
        captions: Sequence[str],
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Sample image codes ``(B, grid, grid)`` for the captions, one token at a time, with
        word ids masked out at every image position (``top_k``: keep only the k likeliest)."""
        text = self.encode_captions(captions).to(self.gpt.wte.weight.device)
        out = self.gpt.generate(
            text,
            self.image_len,
            temperature=temperature,
            top_k=top_k,
            allowed=self.logits_mask()[self.text_len],  # every image row is the same
            generator=generator,
        )
        codes = out[:, self.text_len :] - self.text_vocab  # (B, M)
        return codes.view(-1, self.grid, self.grid)


@torch.no_grad()
def generate_images(
    prior: ImagePrior,
    vqvae: VQVAE,
    captions: Sequence[str],
    samples_per_caption: int = 1,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Images for each caption: ``(len(captions), samples_per_caption, 3, S, S)``, ``S =
    vqvae.image_size``, on the VQ-VAE's device.

    The prior samples codes, the VQ-VAE decodes them. ``seed`` makes the samples repeatable.
    """
    check_type("prior", prior, ImagePrior)
    check_type("vqvae", vqvae, VQVAE)
    want, got = (prior.num_codes, prior.grid), (vqvae.num_codes, vqvae.grid)
    require(got == want, "vqvae", f"made for the prior's (num_codes, grid) = {want}", got)
    captions = _check_captions(captions)
    check_int("samples_per_caption", samples_per_caption, minimum=1)
    check_int("seed", seed, minimum=0)
    repeated = [c for c in captions for _ in range(samples_per_caption)]
    generator = torch.Generator().manual_seed(seed)
    with evaluating(prior), evaluating(vqvae):
        codes = prior.generate(repeated, temperature, top_k, generator)
        images = vqvae.decode(codes.to(next(vqvae.parameters()).device))
    return images.view(len(captions), samples_per_caption, *images.shape[1:])


def _check_rerank(dual_encoder, tokenizer, captions, images) -> list[str]:
    """Check :func:`clip_rerank`'s arguments; return the captions as a list."""
    check_type("dual_encoder", dual_encoder, DualEncoder)
    check_type("tokenizer", tokenizer, Tokenizer, "mmlib Tokenizer")
    n = dual_encoder.text_encoder.vocab_size
    given = f"{tokenizer.vocab_size} ids"
    require(tokenizer.vocab_size == n, "tokenizer", f"the dual encoder's ({n} ids)", given)
    captions = _check_captions(captions)
    check_tensor("images", images, dtype="float", shape=(len(captions), None, 3, None, None))
    size, side = dual_encoder.image_encoder.image_size, images.shape[-1]
    ok = images.shape[-2] == side <= size and (size - side) % 2 == 0
    require(ok, "images", f"(C, N, 3, S, S) with S <= {size} and {size} - S even", images)
    return captions


@torch.no_grad()
def clip_rerank(
    dual_encoder: DualEncoder, tokenizer: Tokenizer, captions: Sequence[str], images: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """CLIP reranking, as DALL-E did: score every sample against its caption and keep the best.

    ``images``: ``(C, N, 3, S, S)`` from :func:`generate_images`, N samples for each of the C
    ``captions``; images smaller than the encoder's 32x32 are centred on a black canvas
    (:func:`centre_pad`). ``tokenizer`` must be the one the dual encoder was trained with.
    Returns ``best (C,) int64`` in ``[0, N)`` and the cosine similarities ``scores (C, N)``.
    """
    captions = _check_rerank(dual_encoder, tokenizer, captions, images)
    size = dual_encoder.image_encoder.image_size  # 32: images are centred on a canvas this big
    device = dual_encoder.logit_scale.device
    with evaluating(dual_encoder):
        ids, lengths = tokenizer.encode_batch(captions)
        text = dual_encoder.encode_texts(ids.to(device), lengths.to(device))  # (C, dim)
        C, N = images.shape[:2]
        canvas = centre_pad(images.flatten(0, 1), size).to(device)  # (C * N, 3, 32, 32)
        image = dual_encoder.encode_images(canvas).view(C, N, -1)  # (C, N, dim)
        scores = (image * text.unsqueeze(1)).sum(-1)  # (C, N) cosine similarity
    return scores.argmax(dim=1).cpu(), scores.cpu()
