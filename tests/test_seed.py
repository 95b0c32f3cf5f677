"""mmlib/seed.py: one call makes a run repeatable."""

import pytest
import torch

import mmlib
from tests.bad_input import raises_naming


def test_seed_everything_repeats_draws():
    g = mmlib.seed_everything(3)
    a = torch.rand(3), torch.randint(0, 100, (3,), generator=g)
    g = mmlib.seed_everything(3)
    b = torch.rand(3), torch.randint(0, 100, (3,), generator=g)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(
    "seed, error", [(1.5, TypeError), (True, TypeError), (-1, ValueError), (2**32, ValueError)]
)
def test_seed_rejects_bad_seeds(seed, error):
    with raises_naming(error, "seed"):
        mmlib.seed_everything(seed)
