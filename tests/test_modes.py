"""mmlib/modes.py: ``with evaluating(model)`` switches to eval mode without gradients, and back."""

import pytest
import torch
from torch import nn

from mmlib.modes import evaluating
from tests.bad_input import raises_naming


def model():
    return nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))


@pytest.mark.parametrize("training", [True, False])
def test_eval_mode_inside_and_the_previous_mode_after(training):
    net = model().train(training)
    with evaluating(net) as inside:
        assert inside is net and not net.training and not net[1].training
        assert not torch.is_grad_enabled()
        x = torch.ones(2, 3)
        assert torch.equal(net(x), net(x))  # dropout is off
    assert net.training is training and torch.is_grad_enabled()


def test_the_mode_is_restored_when_the_block_fails():
    net = model().train()
    with pytest.raises(RuntimeError, match="boom"), evaluating(net):
        raise RuntimeError("boom")
    assert net.training


def test_a_non_module_is_named():
    with raises_naming(TypeError, "model"), evaluating("net"):
        pass
