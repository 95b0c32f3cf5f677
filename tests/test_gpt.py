"""The tiny GPT: shapes, causality, conditioning on prefix embeddings, sampling, bad input."""

import torch

from mmlib.models.gpt import GPT, GPTConfig
from tests.bad_input import raises_naming


def tiny(**kw):
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=11, block_size=12, n_layer=2, n_head=2, n_embd=16, **kw)).eval()


def test_shapes_and_loss():
    model = tiny()
    idx = torch.randint(0, 11, (3, 7))
    logits, loss = model(idx)
    assert logits.shape == (3, 7, 11) and loss is None
    targets = idx.clone()
    targets[:, :2] = -100
    _, loss = model(idx, targets=targets)
    assert loss.ndim == 0 and torch.isfinite(loss)


def test_a_future_token_never_influences_the_past():
    model = tiny()
    idx = torch.randint(0, 11, (2, 8))
    prefix = torch.randn(2, 3, 16)
    changed = idx.clone()
    changed[:, 5] = (changed[:, 5] + 1) % 11
    with torch.no_grad():
        a, _ = model(idx, prefix_embeds=prefix)
        b, _ = model(changed, prefix_embeds=prefix)
    assert torch.allclose(a[:, :5], b[:, :5], atol=1e-6)  # positions before 5 unchanged
    assert not torch.allclose(a[:, 5:], b[:, 5:], atol=1e-6)  # position 5 onwards may change


def test_prefix_conditions_every_position():
    model = tiny()
    idx = torch.randint(0, 11, (1, 4))
    with torch.no_grad():
        a, _ = model(idx, prefix_embeds=torch.randn(1, 2, 16))
        b, _ = model(idx, prefix_embeds=torch.randn(1, 2, 16))
    assert not torch.allclose(a[:, 0], b[:, 0], atol=1e-6)


def test_sampling_is_repeatable_and_respects_the_mask():
    model = tiny()
    start = torch.zeros(4, 1, dtype=torch.long)
    allowed = torch.zeros(11, dtype=torch.bool)
    allowed[5:9] = True
    out1 = model.generate(start, 6, allowed=allowed, generator=torch.Generator().manual_seed(1))
    out2 = model.generate(start, 6, allowed=allowed, generator=torch.Generator().manual_seed(1))
    assert out1.shape == (4, 7) and torch.equal(out1, out2)
    assert bool(((out1[:, 1:] >= 5) & (out1[:, 1:] < 9)).all())
    greedy = model.generate(start, 3, greedy=True, top_k=2)
    assert torch.equal(greedy, model.generate(start, 3, greedy=True, top_k=2))


def test_init_std_sets_the_spread_of_the_initial_weights():
    for std in (0.02, 0.1):
        model = tiny(init_std=std)
        attention = model.blocks[0].attn.c_attn.weight
        weights = torch.cat([model.wte.weight.flatten(), attention.flatten()])
        assert abs(weights.std().item() - std) < 0.1 * std
        assert model.blocks[0].attn.c_attn.bias.abs().max() == 0
    assert GPTConfig(vocab_size=5, block_size=4).init_std == 0.02  # GPT-2's value by default


def test_bad_input():
    with raises_naming(ValueError, "init_std"):
        GPTConfig(vocab_size=5, block_size=4, init_std=0)
    with raises_naming(ValueError, "n_embd"):
        GPTConfig(vocab_size=5, block_size=4, n_head=3, n_embd=16)
    with raises_naming(TypeError, "config"):
        GPT({"vocab_size": 5})
    model = tiny()
    for bad in (11, -1):  # no scan per step: the embedding's IndexError, named
        with raises_naming(ValueError, "idx"):
            model(torch.tensor([[0, bad]]))
    with raises_naming(TypeError, "idx"):
        model(torch.zeros(1, 2))
    with raises_naming(ValueError, "idx"):
        model(torch.zeros(2, dtype=torch.long))
    with raises_naming(ValueError, "idx"):  # too long
        model(torch.zeros(1, 13, dtype=torch.long))
    for name in ("idx", "prefix_embeds"):  # batch sizes differ: both are named
        with raises_naming(ValueError, name):
            model(torch.zeros(1, 2, dtype=torch.long), prefix_embeds=torch.zeros(2, 1, 16))
    with raises_naming(ValueError, "targets"):
        model(torch.zeros(1, 2, dtype=torch.long), targets=torch.zeros(1, 3, dtype=torch.long))
    with raises_naming(ValueError, "max_new_tokens"):
        model.generate(torch.zeros(1, 1, dtype=torch.long), 0)
    with raises_naming(ValueError, "top_k"):
        model.generate(torch.zeros(1, 1, dtype=torch.long), 1, top_k=0)
    with raises_naming(ValueError, "allowed"):
        model.generate(torch.zeros(1, 1, dtype=torch.long), 1, allowed=torch.ones(3, dtype=bool))


def test_checked_embedding_keeps_the_state_dict():
    model = tiny()
    assert isinstance(model.wte, torch.nn.Embedding) and model.lm_head.weight is model.wte.weight
    assert "wte.weight" in model.state_dict()


def test_prefix_embeds_go_in_as_they_are():
    model = tiny()
    idx = torch.randint(0, 11, (2, 12))  # the whole block_size: embeds take no positions
    embeds = torch.randn(2, 3, 16)
    logits, _ = model(idx, prefix_embeds=embeds)
    assert logits.shape == (2, 12, 11)
    changed = embeds.clone()
    changed[1, 0] += 1.0
    other, _ = model(idx, prefix_embeds=changed)
    torch.testing.assert_close(other[0], logits[0])  # one image's tokens never see another's
    assert not torch.equal(other[1], logits[1])
    out = model.generate(idx[:, :4], 3, prefix_embeds=embeds, greedy=True)
    assert out.shape == (2, 7)
    with raises_naming(ValueError, "prefix_embeds"):
        model(idx, prefix_embeds=torch.randn(2, 3, 15))  # not the model's width
    with raises_naming(ValueError, "idx"):
        model(torch.randint(0, 11, (2, 13)), prefix_embeds=embeds)
