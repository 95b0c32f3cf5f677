"""``with evaluating(model):`` — evaluation mode for a block, the previous mode restored after.

``model.eval()`` switches dropout off and makes batch norm use its running statistics; code
that evaluates in the middle of training must switch back afterwards, even when it fails.
Gradients stay off inside the block too (``torch.no_grad()``), as evaluation needs none.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from mmlib.validate import check_type

__all__ = ["evaluating"]


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Run the block with ``model.eval()`` and no gradients; restore the model's mode after."""
    check_type("model", model, nn.Module, "torch.nn.Module")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)
