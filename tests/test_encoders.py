"""mmlib.encoders: the image encoder's pool-before-ReLU order and channels-last memory."""

import torch
import torch.nn.functional as F

from mmlib.encoders import ImageEncoder


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
