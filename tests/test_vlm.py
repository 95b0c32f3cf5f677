"""The projector of a vision-language model: shapes per kind, its learned positions, bad input.
The stages that train it are tested with :class:`VisualDialogueModel` (test_dialogue_model)."""

import pytest
import torch

from mmlib.models.vlm import PROJECTORS, Projector
from tests.bad_input import raises_naming


@pytest.mark.parametrize("kind", PROJECTORS)
def test_projector_maps_each_patch_to_the_model_width(kind):
    projector = Projector(patch_dim=12, width=16, num_patches=16, kind=kind)
    tokens = projector(torch.randn(3, 16, 12))
    assert tokens.shape == (3, 16, 16)
    layers = [m for m in projector.net.modules() if isinstance(m, torch.nn.Linear)]
    assert len(layers) == (1 if kind == "linear" else 2)  # LLaVA: one; LLaVA-1.5: two


def test_each_patch_gets_its_own_learned_position():
    projector = Projector(patch_dim=4, width=8, num_patches=3, kind="linear")
    with torch.no_grad():
        projector.position.copy_(torch.arange(24.0).view(3, 8))
    same = torch.ones(1, 3, 4)  # the same feature at every patch
    tokens = projector(same)
    assert torch.allclose(tokens - projector.net(same), projector.position)
    assert not torch.allclose(tokens[0, 0], tokens[0, 1])


def test_positions_start_at_zero_or_at_the_given_spread():
    assert torch.equal(Projector(4, 8, 3).position.detach(), torch.zeros(3, 8))
    torch.manual_seed(0)
    spread = float(Projector(4, 64, 64, position_std=0.5).position.detach().std())
    assert 0.45 < spread < 0.55


def test_bad_input():
    with raises_naming(ValueError, "kind"):
        Projector(4, 8, 3, kind="conv")
    with raises_naming(ValueError, "num_patches"):
        Projector(4, 8, 0)
    with raises_naming(TypeError, "width"):
        Projector(4, 8.0, 3)
    with raises_naming(ValueError, "position_std"):
        Projector(4, 8, 3, position_std=-0.1)
