"""The LLaVA recipe in miniature: projector shapes, what each stage trains, answer-only loss,
the visual tokens' place before the text, and bad input."""

import pytest
import torch
import torch.nn.functional as F

from mmlib.data.dialogues import IGNORE, encode_dialogues
from mmlib.data.tokenizer import Tokenizer
from mmlib.encoders import ImageEncoder
from mmlib.models.gpt import GPT, GPTConfig
from mmlib.models.vlm import PROJECTORS, STAGES, Projector, VisionLanguageModel
from tests.bad_input import raises_naming

TURNS = [
    [("what colour is the circle ?", "red"), ("what shape is on the left ?", "circle")],
    [("", "a small blue square on the right")],
]


def tiny(projector="mlp"):
    torch.manual_seed(0)
    tokenizer = Tokenizer.from_texts([t for turns in TURNS for turn in turns for t in turn])
    lm = GPT(GPTConfig(vocab_size=tokenizer.vocab_size, block_size=24, n_head=2, n_embd=16))
    return VisionLanguageModel(ImageEncoder(dim=8, width=4), lm, projector), tokenizer


@pytest.mark.parametrize("kind", PROJECTORS)
def test_projector_maps_each_patch_to_the_model_width(kind):
    projector = Projector(patch_dim=12, width=16, num_patches=16, kind=kind)
    tokens = projector(torch.randn(3, 16, 12))
    assert tokens.shape == (3, 16, 16)
    layers = [m for m in projector.net.modules() if isinstance(m, torch.nn.Linear)]
    assert len(layers) == (1 if kind == "linear" else 2)  # LLaVA: one; LLaVA-1.5: two


def test_shapes_of_encode_forward_and_generate():
    model, tokenizer = tiny()
    idx, targets = encode_dialogues(tokenizer, TURNS)
    patches = model.encode(torch.rand(2, 3, 32, 32))
    assert patches.shape == (2, 16, 16) and not patches.requires_grad  # 4x4 patches, 4 * width
    logits, loss = model(patches, idx, targets)
    assert logits.shape == (*idx.shape, tokenizer.vocab_size) and loss.ndim == 0
    out = model.generate(patches, idx[:, :3], 4, greedy=True)
    assert out.shape == (2, 7) and torch.equal(out[:, :3], idx[:, :3])


def _changed_by_one_step(stage):
    """Names of the parts whose weights one Adam step over all parameters changes."""
    model, tokenizer = tiny()
    assert model.set_stage(stage) == stage and model.stage == stage
    idx, targets = encode_dialogues(tokenizer, TURNS)
    patches = model.encode(torch.rand(2, 3, 32, 32))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model(patches, idx, targets)[1].backward()
    optimizer.step()
    params = dict(model.named_parameters())
    changed = {n.split(".")[0] for n, p in params.items() if not torch.equal(p, before[n])}
    with_grad = {n.split(".")[0] for n, p in params.items() if p.grad is not None}
    return changed, with_grad


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_trains_only_its_parts(stage):
    changed, with_grad = _changed_by_one_step(stage)
    assert changed == with_grad == set(STAGES[stage])  # the encoder never; the lm in "instruct"


def test_the_loss_counts_answer_tokens_only():
    model, tokenizer = tiny()
    idx, targets = encode_dialogues(tokenizer, TURNS)
    patches = model.encode(torch.rand(2, 3, 32, 32))
    logits, loss = model(patches, idx, targets)
    answer = targets != IGNORE
    assert 0 < answer.sum() < answer.numel()
    by_hand = F.cross_entropy(logits[answer], targets[answer])
    torch.testing.assert_close(loss, by_hand)
    words = tokenizer.decode(idx[0][: int((targets[0] != IGNORE).nonzero()[0]) + 1].tolist())
    assert "colour" in words  # the first answer follows its question, which the loss skips


def test_visual_tokens_come_first_and_the_text_keeps_its_positions():
    model, tokenizer = tiny()
    idx, _ = encode_dialogues(tokenizer, TURNS)
    patches = model.encode(torch.rand(2, 3, 32, 32))
    seen = {}
    hook = model.lm.blocks[0].register_forward_hook(lambda m, args, out: seen.update(x=args[0]))
    model(patches, idx)
    hook.remove()
    T, lm = idx.shape[1], model.lm
    torch.testing.assert_close(seen["x"][:, :16], model.visual_tokens(patches))
    text = lm.wte(idx) + lm.wpe(torch.arange(T))  # positions 0..T-1, as in text-only training
    torch.testing.assert_close(seen["x"][:, 16:], text)


def test_bad_input():
    model, tokenizer = tiny()
    idx, _ = encode_dialogues(tokenizer, TURNS)
    patches = model.encode(torch.rand(2, 3, 32, 32))
    lm = model.lm
    with raises_naming(ValueError, "stage"):
        model.set_stage("pretrain")
    with raises_naming(ValueError, "projector"):
        VisionLanguageModel(ImageEncoder(dim=8, width=4), lm, "conv")
    with raises_naming(TypeError, "encoder"):
        VisionLanguageModel(lm, lm)
    with raises_naming(TypeError, "lm"):
        VisionLanguageModel(ImageEncoder(), ImageEncoder())
    with_prefix = GPT(GPTConfig(vocab_size=9, block_size=8, prefix_dim=5))
    with raises_naming(ValueError, "lm"):
        VisionLanguageModel(ImageEncoder(), with_prefix)
    with raises_naming(ValueError, "patches"):
        model(patches[:, :8], idx)  # 8 of the 16 patches
    with raises_naming(ValueError, "patches"):
        model(torch.rand(2, 3, 32, 32), idx)  # images where patch features belong
    with raises_naming(ValueError, "images"):
        model.encode(torch.rand(2, 3, 16, 16))
    with pytest.raises(ValueError, match="batch sizes"):
        model(patches[:1], idx)
    with raises_naming(ValueError, "max_new_tokens"):
        model.generate(patches, idx, 0)
    with raises_naming(ValueError, "idx"):
        model(patches, torch.zeros(2, 25, dtype=torch.long))  # block_size is 24
