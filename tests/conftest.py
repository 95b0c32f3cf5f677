"""Fixtures shared by several test files."""

import pytest
import torch

VOCAB = 20  # token ids of the `batch` fixture lie in [1, VOCAB)


@pytest.fixture
def batch():
    """An image-text batch: ``images (5, 3, 32, 32)``, ``tokens (5, 6)`` in [1, VOCAB),
    ``lengths (5,)`` with one caption of a single token and two of full length."""
    g = torch.Generator().manual_seed(0)
    images = torch.rand(5, 3, 32, 32, generator=g)
    tokens = torch.randint(1, VOCAB, (5, 6), generator=g)
    lengths = torch.tensor([6, 3, 4, 1, 6])
    return images, tokens, lengths
