"""Seeding: one call makes a run repeatable on a given machine."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from mmlib.validate import check_int, require


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's ``random``, NumPy and torch (CPU and every CUDA device).

    Returns a CPU ``torch.Generator`` seeded with the same value, for code that wants
    its own stream (data loaders, samplers).
    """
    check_int("seed", seed, minimum=0)
    require(seed < 2**32, "seed", "in [0, 2**32)", seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def book_seed(default: int = 0) -> int:
    """The seed of this run of a chapter: ``default``, or ``MMBOOK_SEED`` when it is set.

    ``make bands`` sets ``MMBOOK_SEED`` to run a chapter under several seeds and measure the
    range of its headline results (:mod:`mmlib.book.results`). A reader may set it too.
    """
    value = os.environ.get("MMBOOK_SEED", "").strip()
    if not value:
        return default
    require(value.isdigit(), "MMBOOK_SEED", "a whole number >= 0", repr(value))
    return int(value)
