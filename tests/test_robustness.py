"""Modality dropout and the late-fusion classifier that uses it."""

import pytest
import torch

from mmlib.evaluation.metrics import count_parameters
from mmlib.evaluation.robustness import DropoutFusionClassifier, drop_modalities
from mmlib.models.fusion import FusionClassifier
from tests.bad_input import raises_naming

VOCAB = 20


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(6, 3, 32, 32, generator=g)
    tokens = torch.randint(1, VOCAB, (6, 5), generator=g)
    lengths = torch.tensor([5, 2, 3, 1, 5, 4])
    return images, tokens, lengths


def small(p_drop=0.0):
    torch.manual_seed(0)
    return DropoutFusionClassifier(VOCAB, 4, dim=8, width=2, hidden=16, p_drop=p_drop)


def test_drop_modalities_shares_and_never_both():
    image, text = torch.ones(20_000, 3), torch.ones(20_000, 5)
    g = torch.Generator().manual_seed(0)
    kept_image, kept_text = drop_modalities(image, text, 0.4, generator=g)
    no_image = (kept_image.sum(1) == 0).float()
    no_text = (kept_text.sum(1) == 0).float()
    assert abs(no_image.mean().item() - 0.2) < 0.01
    assert abs(no_text.mean().item() - 0.2) < 0.01
    assert (no_image * no_text).sum() == 0  # never both
    # a row is either all kept or all zero, never rescaled
    assert set(kept_image.unique().tolist()) == {0.0, 1.0}
    assert set(kept_text.unique().tolist()) == {0.0, 1.0}


def test_drop_modalities_extremes_and_repeatability():
    image, text = torch.randn(50, 3), torch.randn(50, 4)
    same = drop_modalities(image, text, 0.0)
    assert same[0] is image and same[1] is text
    all_dropped = drop_modalities(image, text, 1.0, generator=torch.Generator().manual_seed(1))
    lost = (all_dropped[0].abs().sum(1) == 0) ^ (all_dropped[1].abs().sum(1) == 0)
    assert bool(lost.all())  # p=1: every row loses exactly one modality
    a = drop_modalities(image, text, 0.5, generator=torch.Generator().manual_seed(3))
    b = drop_modalities(image, text, 0.5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_drop_modalities_passes_gradients_to_kept_rows():
    image = torch.randn(40, 3, requires_grad=True)
    text = torch.randn(40, 2, requires_grad=True)
    out_image, out_text = drop_modalities(image, text, 0.5, torch.Generator().manual_seed(0))
    (out_image.sum() + out_text.sum()).backward()
    assert torch.equal(image.grad, (out_image != 0).float())
    assert torch.equal(text.grad, (out_text != 0).float())


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"image_features": [[1.0]]}, TypeError, "image_features"),
        ({"image_features": torch.ones(4)}, ValueError, "image_features"),
        ({"text_features": torch.ones(4, 2, dtype=torch.long)}, TypeError, "text_features"),
        ({"text_features": torch.ones(3, 2)}, ValueError, "text_features"),
        ({"p": 1.5}, ValueError, "p"),
        ({"p": "half"}, TypeError, "p"),
        ({"generator": 3}, TypeError, "generator"),
    ],
)
def test_drop_modalities_rejects_bad_input(kwargs, error, name):
    args = {"image_features": torch.ones(4, 3), "text_features": torch.ones(4, 2), "p": 0.5}
    with raises_naming(error, name):
        drop_modalities(**(args | kwargs))


def test_classifier_shapes_and_missing_modalities(batch):
    images, tokens, lengths = batch
    model = small().eval()
    assert model(images, tokens, lengths).shape == (6, 4)
    assert model(None, tokens, lengths).shape == (6, 4)
    assert model(images, None).shape == (6, 4)
    # a missing modality is exactly zero features: the same as a head over [0, text]
    text = model.text_encoder(tokens, lengths)
    expected = model.head(torch.cat([text, torch.zeros_like(text)], dim=1))
    torch.testing.assert_close(model(None, tokens, lengths), expected)
    image = model.image_encoder(images)
    expected = model.head(torch.cat([torch.zeros_like(image), image], dim=1))
    torch.testing.assert_close(model(images, None), expected)


def test_classifier_drops_only_in_training(batch):
    images, tokens, lengths = batch
    model = small(p_drop=1.0)
    model.eval()
    full = model(images, tokens, lengths)
    torch.manual_seed(0)
    model.train()
    dropped = model(images, tokens, lengths)
    assert not torch.allclose(full, dropped)  # p=1: every row lost one modality
    image_only, text_only = model(images, None), model(None, tokens, lengths)
    for row in range(6):  # each row equals its image-only or its text-only output
        assert torch.allclose(dropped[row], image_only[row]) or torch.allclose(
            dropped[row], text_only[row]
        )
    assert small(p_drop=0.0).train()(images, tokens, lengths).shape == (6, 4)


def test_classifier_is_late_fusion_when_nothing_is_dropped(batch):
    late = FusionClassifier("late", VOCAB, num_classes=4, dim=8, width=2, hidden=16)
    model = small(p_drop=0.5)
    assert count_parameters(model) == count_parameters(late)
    late.load_state_dict(model.state_dict())  # the same parameters, under the same names
    model.eval(), late.eval()
    torch.testing.assert_close(model(*batch), late(*batch))
    assert "p_drop=0.25" in repr(small(p_drop=0.25))


def test_classifier_rejects_bad_input(batch):
    images, tokens, lengths = batch
    model = small()
    with raises_naming(ValueError, "images or tokens"):
        model(None, None)
    with raises_naming(ValueError, "tokens"):
        model(images[:3], tokens, lengths)
    with raises_naming(TypeError, "tokens"):
        model(images, tokens.float(), lengths)
    with raises_naming(ValueError, "images"):
        model(images[:, :1], tokens, lengths)
    with raises_naming(ValueError, "images"):
        model(images[:, :1], None)
    with raises_naming(TypeError, "tokens"):
        model(None, tokens.float(), lengths)
    with raises_naming(ValueError, "lengths"):
        model(None, tokens, lengths + 10)
    with raises_naming(TypeError, "p_drop"):
        DropoutFusionClassifier(VOCAB, 4, p_drop="some")
    with raises_naming(ValueError, "p_drop"):
        DropoutFusionClassifier(VOCAB, 4, p_drop=2.0)
    with raises_naming(ValueError, "num_classes"):
        DropoutFusionClassifier(VOCAB, 1)
