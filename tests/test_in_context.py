"""The in-context namer (:mod:`mmlib.models.in_context`): shapes, causality, fixed name codes,
the masked loss and bad input."""

import pytest
import torch
import torch.nn.functional as F

from mmlib.models.in_context import (
    InContextNamer,
    attention_maps,
    fit_support_heads,
    naming_loss,
)
from mmlib.training.loop import train
from tests.bad_input import raises_naming


def _model(**kwargs):
    return InContextNamer(**({"feature_dim": 6, "num_names": 30, "max_pairs": 8} | kwargs))


def test_logits_score_every_name_at_every_pair():
    logits = _model()(torch.randn(5, 7, 6), torch.randint(30, (5, 7)))
    assert logits.shape == (5, 7, 30)


def test_the_logits_at_a_pair_see_the_pairs_before_and_its_object_but_not_its_name():
    torch.manual_seed(0)
    model, features, names = _model().eval(), torch.randn(2, 6, 6), torch.randint(30, (2, 6))
    base = model(features, names)
    later = names.clone()
    later[:, 3:] = (later[:, 3:] + 1) % 30  # name 3 and after: pairs 0-3 must not change
    assert torch.allclose(model(features, later)[:, :4], base[:, :4], atol=1e-6)
    assert not torch.allclose(model(features, later)[:, 4:], base[:, 4:])
    moved = features.clone()
    moved[:, 3] += 1.0  # object 3 changes the logits at pair 3 on, not before
    assert torch.allclose(model(moved, names)[:, :3], base[:, :3], atol=1e-6)
    assert not torch.allclose(model(moved, names)[:, 3], base[:, 3])


def test_the_name_codes_are_fixed_random_vectors_that_training_never_changes():
    model = _model(seed=3)
    assert "name_codes" not in dict(model.named_parameters())
    assert torch.equal(model.name_codes, _model(seed=3).name_codes)
    assert not torch.equal(model.name_codes, _model(seed=4).name_codes)
    before = model.name_codes.clone()
    mask = torch.ones(4, 5, dtype=torch.bool)
    batch = [(torch.randn(4, 5, 6), torch.randint(30, (4, 5)), mask)]
    train(model, lambda m, b: naming_loss(m, *b), batch, steps=3, lr=1e-2, device="cpu")
    assert torch.equal(model.name_codes, before)
    assert "name_codes" in model.state_dict()  # saved with the model: a checkpoint keeps them


def test_naming_loss_is_the_cross_entropy_at_the_masked_positions_only():
    torch.manual_seed(1)
    model, features, names = _model(), torch.randn(3, 5, 6), torch.randint(30, (3, 5))
    mask = torch.zeros(3, 5, dtype=torch.bool)
    mask[0, 2] = mask[2, 4] = True
    logits = model(features, names)
    expected = F.cross_entropy(torch.stack([logits[0, 2], logits[2, 4]]), names[[0, 2], [2, 4]])
    assert torch.allclose(naming_loss(model, features, names, mask), expected)


@pytest.mark.parametrize(
    ("features", "names", "error", "name"),
    [
        (torch.randn(2, 3, 5), torch.zeros(2, 3, dtype=torch.long), ValueError, "features"),
        (
            torch.zeros(2, 3, 6, dtype=torch.long),
            torch.zeros(2, 3, dtype=torch.long),
            TypeError,
            "features",
        ),
        (torch.randn(2, 9, 6), torch.zeros(2, 9, dtype=torch.long), ValueError, "features"),
        (torch.randn(2, 3, 6), torch.zeros(2, 4, dtype=torch.long), ValueError, "names"),
        (torch.randn(2, 3, 6), torch.zeros(2, 3), TypeError, "names"),
        (torch.randn(2, 3, 6), torch.full((2, 3), 30), ValueError, "names"),
        (torch.randn(2, 3, 6), torch.full((2, 3), -1), ValueError, "names"),
    ],
)
def test_bad_input_is_rejected_naming_the_argument(features, names, error, name):
    with raises_naming(error, name):
        _model()(features, names)


def test_bad_construction_and_masks_are_rejected():
    with raises_naming(ValueError, "num_names"):
        _model(num_names=0)
    with raises_naming(TypeError, "max_pairs"):
        _model(max_pairs=2.5)
    with raises_naming(ValueError, "seed"):
        _model(seed=-2)
    with raises_naming(ValueError, "n_embd"):
        _model(n_embd=30, n_head=4)
    model, features, names = _model(), torch.randn(2, 3, 6), torch.zeros(2, 3, dtype=torch.long)
    with raises_naming(TypeError, "mask"):
        naming_loss(model, features, names, torch.ones(2, 3))
    with raises_naming(ValueError, "mask"):
        naming_loss(model, features, names, torch.ones(2, 4, dtype=torch.bool))


def test_attention_maps_are_causal_rows_that_sum_to_one_and_rebuild_the_block():
    torch.manual_seed(2)
    model, features, names = _model().eval(), torch.randn(3, 4, 6), torch.randint(30, (3, 4))
    maps = attention_maps(model, features, names)
    assert len(maps) == 2 and maps[0].shape == (3, 4, 8, 8)
    assert torch.allclose(maps[1].sum(-1), torch.ones(3, 4, 8), atol=1e-6)
    assert (maps[0].triu(1) == 0).all()  # no token reads a later one
    block, x = model.blocks[0], model.tokens(features, names)  # the weights give the block's attn
    _, _, v = block.attn.c_attn(block.ln_1(x)).split(64, dim=2)
    v = v.view(3, 8, 4, 16).transpose(1, 2)
    mixed = (maps[0] @ v).transpose(1, 2).reshape(3, 8, 64)
    assert torch.allclose(block.attn.c_proj(mixed), block.attn(block.ln_1(x)), atol=1e-5)


def test_support_heads_fit_the_support_by_gradient_descent():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(5, 3, 8, generator=g)  # 5 episodes, 3 classes each
    classes = torch.tensor([0, 1, 2, 0, 1, 2]).expand(5, -1)
    support = centres.gather(1, classes[..., None].expand(-1, -1, 8)) + 0.1 * torch.randn(
        5, 6, 8, generator=g
    )
    weights, biases = fit_support_heads(support, classes, ways=3, steps=100, lr=0.5)
    assert weights.shape == (5, 3, 8) and biases.shape == (5, 3) and not weights.requires_grad
    queries = centres + 0.1 * torch.randn(5, 3, 8, generator=g)  # one new example per class
    scores = queries @ weights.transpose(1, 2) + biases[:, None]
    assert torch.equal(scores.argmax(-1), torch.arange(3).expand(5, -1))
    one_step, _ = fit_support_heads(support, classes, ways=3, steps=1, lr=0.5)
    logits = support @ torch.zeros(5, 3, 8).transpose(1, 2)  # the first step, by hand
    by_hand = (
        -0.5 / 6 * torch.einsum("esc,esf->ecf", logits.softmax(-1) - F.one_hot(classes, 3), support)
    )
    assert torch.allclose(one_step, by_hand, atol=1e-6)


def test_support_heads_bad_input():
    support, classes = torch.randn(2, 4, 3), torch.zeros(2, 4, dtype=torch.long)
    with raises_naming(ValueError, "support"):
        fit_support_heads(torch.randn(4, 3), classes, ways=2)
    with raises_naming(ValueError, "support"):
        fit_support_heads(torch.randn(2, 0, 3), torch.zeros(2, 0, dtype=torch.long), ways=2)
    with raises_naming(ValueError, "classes"):
        fit_support_heads(support, torch.full((2, 4), 2), ways=2)
    with raises_naming(ValueError, "classes"):
        fit_support_heads(support, torch.zeros(2, 5, dtype=torch.long), ways=2)
    with raises_naming(ValueError, "ways"):
        fit_support_heads(support, classes, ways=0)
    with raises_naming(TypeError, "steps"):
        fit_support_heads(support, classes, ways=2, steps=1.5)
