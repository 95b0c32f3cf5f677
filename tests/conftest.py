"""Fixtures shared by several test files."""

import numpy as np
import pytest
import torch

from mmlib.data.scenes import make_scenes
from mmlib.data.tasks import canonical_captions
from mmlib.data.tokenizer import Tokenizer
from mmlib.models.dialogue import VisualDialogueModel

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


@pytest.fixture(scope="session")
def dialogue_world():
    """``(scenes, tokenizer)``: 40 scenes and a tokenizer for their questions, answers and
    canonical captions (the dialogue tests of data, model and scores share it)."""
    scenes = make_scenes(40, seed=0)
    texts = [t for qa in scenes.qa for pair in qa for t in pair] + canonical_captions(scenes)
    texts += ["and the"]
    return scenes, Tokenizer.from_texts(texts)


@pytest.fixture
def tiny_dialogue_model(dialogue_world):
    """A fresh, seeded, small :class:`VisualDialogueModel` for ``dialogue_world``'s tokenizer,
    in eval mode."""
    torch.manual_seed(0)
    vocab_size = dialogue_world[1].vocab_size
    return VisualDialogueModel(
        vocab_size, n_embd=16, n_layer=2, n_head=2, width=4, max_tokens=30
    ).eval()


def _numpy_fusion_problem(seed, batch=6, text_dim=5, image_dim=4, classes=3):
    rng = np.random.default_rng(seed)
    text = rng.normal(size=(batch, text_dim))
    image = rng.normal(size=(batch, image_dim))
    return text, image, rng.integers(0, classes, size=batch)


@pytest.fixture
def fusion_problem():
    """``fusion_problem(seed)`` -> ``(text (6, 5), image (6, 4), labels (6,))`` as float64 NumPy
    arrays and int labels in [0, 3): the from-scratch MLP tests' toy late-fusion problem."""
    return _numpy_fusion_problem
