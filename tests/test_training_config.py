"""mmlib/training/config.py: a run's options, checked once when they are set."""

import dataclasses

import pytest

from mmlib.training.config import TrainConfig
from tests.bad_input import raises_naming


def test_defaults_and_total_steps():
    config = TrainConfig(steps=30)
    assert (config.lr, config.scheduler, config.seed, config.grad_clip) == (1e-3, "cosine", 0, None)
    assert config.total([1, 2, 3]) == 30
    assert TrainConfig(epochs=4).total([1, 2, 3]) == 12
    assert TrainConfig(epochs=4).total(iter([1])) is None  # no len()


def test_replace_checks_again_and_swaps_steps_for_epochs():
    config = TrainConfig(steps=30, lr=0.1)
    assert config.replace(epochs=2) == TrainConfig(epochs=2, lr=0.1)
    assert config.replace(lr=0.5).steps == 30
    with raises_naming(ValueError, "lr"):
        config.replace(lr=-1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.lr = 0.2


@pytest.mark.parametrize(
    ("options", "error", "name"),
    [
        ({}, ValueError, "steps"),
        ({"steps": 3, "epochs": 2}, ValueError, "epochs"),
        ({"steps": 0}, ValueError, "steps"),
        ({"steps": 2.0}, TypeError, "steps"),
        ({"steps": 2, "lr": float("inf")}, ValueError, "lr"),
        ({"steps": 2, "weight_decay": -1}, ValueError, "weight_decay"),
        ({"steps": 2, "scheduler": "step"}, ValueError, "scheduler"),
        ({"steps": 2, "grad_clip": 0}, ValueError, "grad_clip"),
        ({"steps": 2, "seed": 2**32}, ValueError, "seed"),
        ({"steps": 2, "seed": -1}, ValueError, "seed"),
        ({"steps": 2, "seed": 1.0}, TypeError, "seed"),
        ({"steps": 2, "lr": "0.1"}, TypeError, "lr"),
        ({"steps": 2, "weight_decay": "0"}, TypeError, "weight_decay"),
        ({"steps": 2, "grad_clip": "1"}, TypeError, "grad_clip"),
        ({"epochs": 2.5}, TypeError, "epochs"),
        ({"steps": 2, "eval_every": 1.5}, TypeError, "eval_every"),
        ({"steps": 2, "eval_every": 0}, ValueError, "eval_every"),
        ({"steps": 2, "progress": "yes"}, TypeError, "progress"),
        ({"steps": 2, "desc": None}, TypeError, "desc"),
        ({"steps": 2, "ddp": 1}, TypeError, "ddp"),
        ({"steps": 2, "stpes": 3}, TypeError, "stpes"),
    ],
)
def test_bad_options_are_named(options, error, name):
    with raises_naming(error, name):
        TrainConfig(**options)
