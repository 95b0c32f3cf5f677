"""Encoders and the CLIP-style dual encoder and loss."""

import math

import torch
import torch.nn.functional as F

from mmlib.encoders import ImageEncoder, TextEncoder
from mmlib.models.contrastive import DualEncoder, caption_ids, clip_loss
from tests.bad_input import raises_naming


def test_encoder_shapes(batch):
    images, tokens, lengths = batch
    image_encoder = ImageEncoder(dim=24, width=4)
    assert image_encoder(images).shape == (5, 24)
    assert image_encoder.patches(images).shape == (5, 16, 16)
    text_encoder = TextEncoder(vocab_size=20, dim=24)
    assert text_encoder(tokens, lengths).shape == (5, 24)
    assert text_encoder.states(tokens).shape == (5, 6, 64)


def test_text_encoder_ignores_padding_after_length():
    torch.manual_seed(0)
    encoder = TextEncoder(vocab_size=20, dim=8)
    tokens = torch.randint(1, 20, (2, 6))
    padded = tokens.clone()
    padded[:, 3:] = 0
    lengths = torch.tensor([3, 3])
    assert torch.allclose(encoder(tokens, lengths), encoder(padded, lengths))
    assert torch.allclose(encoder(tokens[:, :3]), encoder(tokens, lengths))


def test_encoders_are_batch_independent(batch):
    images, tokens, lengths = batch
    model = DualEncoder(vocab_size=20, dim=16, width=4)
    with torch.no_grad():
        together = model.encode_images(images), model.encode_texts(tokens, lengths)
        alone_img = torch.cat([model.encode_images(images[k : k + 1]) for k in range(5)])
        alone_txt = torch.cat(
            [model.encode_texts(tokens[k : k + 1], lengths[k : k + 1]) for k in range(5)]
        )
    assert torch.allclose(together[0], alone_img, atol=1e-6)
    assert torch.allclose(together[1], alone_txt, atol=1e-6)


def test_dual_encoder_logits_are_scaled_cosines(batch):
    images, tokens, lengths = batch
    model = DualEncoder(vocab_size=20, dim=16, width=4)
    with torch.no_grad():
        logits = model(images, tokens, lengths)
    assert logits.shape == (5, 5)
    assert math.isclose(float(model.scale().detach()), 1 / 0.07, rel_tol=1e-5)
    assert float(logits.abs().max()) <= 1 / 0.07 + 1e-4
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
        assert math.isclose(float(model.scale()), 100.0, rel_tol=1e-5)


def test_clip_loss_without_duplicates_is_symmetric_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(4, 4)
    labels = torch.arange(4)
    expected = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
    assert torch.allclose(clip_loss(logits), expected)
    assert torch.allclose(clip_loss(logits, caption_ids(["a", "b", "c", "d"])), expected)


def test_duplicate_captions_are_not_negatives():
    """Two examples share a caption. Scoring both pairs equally is optimal with soft targets;
    hard (diagonal) targets would keep pushing the duplicate pair apart."""
    ids = caption_ids(["red circle", "red circle", "blue square"])
    assert ids.tolist() == [0, 0, 1]
    base = torch.tensor([[10.0, 10.0, -10.0], [10.0, 10.0, -10.0], [-10.0, -10.0, 10.0]])
    soft_logits = base.clone().requires_grad_()
    clip_loss(soft_logits, ids).backward()
    hard_logits = base.clone().requires_grad_()
    clip_loss(hard_logits).backward()
    assert float(soft_logits.grad.abs().max()) < 1e-6
    assert float(hard_logits.grad[0, 1]) > 0.1  # gradient descent would lower a true match


def test_bad_input():
    with raises_naming(ValueError, "logits"):
        clip_loss(torch.zeros(2, 3))
    with raises_naming(ValueError, "ids"):
        clip_loss(torch.zeros(2, 2), torch.tensor([0, 1, 2]))
    with raises_naming(TypeError, "captions"):
        caption_ids("abc")
    with raises_naming(ValueError, "tokens"):
        DualEncoder(vocab_size=9, dim=4, width=2)(torch.rand(2, 3, 32, 32), torch.ones(3, 4).long())
    with raises_naming(ValueError, "image_size"):
        ImageEncoder(image_size=12)
    with raises_naming(ValueError, "lengths"):
        TextEncoder(9)(torch.ones(2, 4).long(), torch.tensor([0, 2]))
    with raises_naming(ValueError, "init_temperature"):
        DualEncoder(9, init_temperature=5.0)
    with raises_naming(TypeError, "init_temperature"):
        DualEncoder(9, init_temperature="cold")
    with raises_naming(TypeError, "logits"):
        clip_loss(torch.zeros(2, 2, dtype=torch.long))
    with raises_naming(ValueError, "logits"):
        clip_loss(torch.zeros(2))
    with raises_naming(TypeError, "ids"):
        clip_loss(torch.zeros(2, 2), torch.tensor([0.0, 1.0]))
    with raises_naming(TypeError, "captions"):
        caption_ids(["a", 3])
    dual = DualEncoder(vocab_size=9, dim=4, width=2)
    with raises_naming(TypeError, "images"):
        dual(None, torch.ones(2, 4).long())
    with raises_naming(ValueError, "tokens"):
        dual(torch.rand(2, 3, 32, 32), torch.full((2, 4), 9))
