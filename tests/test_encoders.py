"""mmlib.encoders: the image encoder's pool-before-ReLU order and channels-last memory, the
text encoder's checked embedding, and the errors bad input gets."""

import pytest
import torch
import torch.nn.functional as F

from mmlib.encoders import ImageEncoder, TextEncoder
from mmlib.validate import CheckedEmbedding
from tests.bad_input import raises_naming


def _reference_patches(encoder: ImageEncoder, images: torch.Tensor) -> torch.Tensor:
    """The textbook order, conv -> ReLU -> pool, in the default memory format."""
    x = images
    for conv in [m for m in encoder.features if isinstance(m, torch.nn.Conv2d)]:
        x = F.max_pool2d(F.relu(conv(x)), 2)
    return x.flatten(2).transpose(1, 2)


def test_pooling_before_relu_gives_the_same_values_and_gradients():
    torch.manual_seed(0)
    encoder = ImageEncoder(dim=16, width=4)
    images = torch.rand(6, 3, 32, 32) - 0.5
    ours = encoder.patches(images)
    reference = _reference_patches(encoder, images)
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-6)
    weight = encoder.features[0].weight
    (g_ours,) = torch.autograd.grad(ours.square().sum(), weight)
    (g_reference,) = torch.autograd.grad(reference.square().sum(), weight)
    torch.testing.assert_close(g_ours, g_reference, rtol=1e-4, atol=1e-6)


def test_patches_keep_their_logical_layout():
    encoder = ImageEncoder(dim=16, width=4)
    patches = encoder.patches(torch.rand(2, 3, 32, 32))
    assert patches.shape == (2, 16, 16)  # (B, 4x4 grid, 4 * width)
    assert encoder(torch.rand(2, 3, 32, 32)).shape == (2, 16)


def test_text_encoder_embedding_is_a_plain_embedding_underneath():
    """Same RNG use, weights and state_dict keys as nn.Embedding: old checkpoints still load."""
    torch.manual_seed(0)
    plain = torch.nn.Embedding(9, 32, padding_idx=0)
    torch.manual_seed(0)
    encoder = TextEncoder(9)
    assert isinstance(encoder.embedding, CheckedEmbedding)
    assert torch.equal(encoder.embedding.weight, plain.weight)
    assert "embedding.weight" in encoder.state_dict()
    encoder.embedding.load_state_dict(plain.state_dict())


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"dim": 0}, ValueError, "dim"),
        ({"width": 1.5}, TypeError, "width"),
        ({"image_size": 4}, ValueError, "image_size"),
        ({"image_size": 12}, ValueError, "image_size"),
    ],
)
def test_image_encoder_rejects_bad_arguments(kwargs, error, name):
    with raises_naming(error, name):
        ImageEncoder(**kwargs)


def test_image_encoder_rejects_bad_images():
    encoder = ImageEncoder(dim=8, width=2)
    with raises_naming(TypeError, "images"):
        encoder(None)
    with raises_naming(ValueError, "images"):
        encoder(torch.rand(2, 3, 16, 16))
    with raises_naming(TypeError, "images"):
        encoder(torch.zeros(2, 3, 32, 32, dtype=torch.long))


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"vocab_size": 1}, ValueError, "vocab_size"),
        ({"vocab_size": 9.0}, TypeError, "vocab_size"),
        ({"dim": 0}, ValueError, "dim"),
        ({"embed_dim": 0}, ValueError, "embed_dim"),
        ({"hidden_dim": 0}, ValueError, "hidden_dim"),
    ],
)
def test_text_encoder_rejects_bad_arguments(kwargs, error, name):
    with raises_naming(error, name):
        TextEncoder(**({"vocab_size": 9} | kwargs))


def test_text_encoder_rejects_bad_tokens_and_lengths():
    encoder, tokens = TextEncoder(9, dim=4), torch.ones(2, 4, dtype=torch.long)
    with raises_naming(TypeError, "tokens"):
        encoder(tokens.float())
    with raises_naming(ValueError, "tokens"):
        encoder(tokens[0])
    with raises_naming(ValueError, "tokens"):
        encoder(tokens + 8)  # id 9 is out of [0, 9): the lookup says so
    with raises_naming(ValueError, "tokens"):
        encoder(tokens - 2)
    with raises_naming(TypeError, "lengths"):
        encoder(tokens, torch.tensor([1.0, 2.0]))
    with raises_naming(ValueError, "lengths"):
        encoder(tokens, torch.tensor([1, 2, 3]))
    for bad in ([0, 2], [5, 2]):
        with raises_naming(ValueError, "lengths"):
            encoder(tokens, torch.tensor(bad))
