"""The in-context namer (:mod:`mmlib.models.in_context`): shapes, causality, fixed name codes,
the masked loss and bad input."""

import pytest
import torch
import torch.nn.functional as F

from mmlib.models.in_context import InContextNamer, naming_loss
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
