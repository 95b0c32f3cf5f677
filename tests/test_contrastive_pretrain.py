"""pretrain_dual_encoder: contrastive pretraining of a DualEncoder on image-caption pairs."""

import pytest
import torch

from mmlib.data.scenes import make_scenes
from mmlib.data.tokenizer import Tokenizer
from mmlib.models.contrastive import DualEncoder
from mmlib.training.pretrain import pretrain_dual_encoder
from tests.bad_input import raises_naming


@pytest.fixture(scope="module")
def pairs():
    scenes = make_scenes(48, seed=0, num_objects=1)
    return scenes.images, scenes.captions, Tokenizer.from_texts(scenes.captions)


def _pretrain(pairs, **kwargs):
    images, captions, tokenizer = pairs
    options = {"dim": 8, "width": 2, "steps": 4, "batch_size": 16, "device": "cpu"}
    return pretrain_dual_encoder(images, captions, tokenizer, progress=False, **options | kwargs)


def test_returns_a_trained_dual_encoder_in_eval_mode(pairs):
    model, history = _pretrain(pairs, eval_fn=lambda m: {"scale": float(m.scale())}, eval_every=2)
    assert isinstance(model, DualEncoder) and not model.training
    assert model.image_encoder.proj.out_features == 8
    assert len(history.loss) == 4 and history.steps == [2, 4]
    temperatures = [log["temperature"] for log in history.logs]
    assert temperatures[0] == pytest.approx(0.07, rel=1e-4)  # logged before the first update
    assert all(0.01 <= t <= 1.0 for t in temperatures)


def test_loss_falls_and_runs_repeat(pairs):
    first, history = _pretrain(pairs, steps=30, lr=1e-2, grad_clip=1.0)
    assert sum(history.loss[-5:]) < sum(history.loss[:5])
    again, _ = _pretrain(pairs, steps=30, lr=1e-2, grad_clip=1.0)
    for a, b in zip(first.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    other, _ = _pretrain(pairs, steps=30, lr=1e-2, grad_clip=1.0, seed=1)
    assert not torch.equal(first.logit_scale, other.logit_scale)


@pytest.mark.parametrize(
    ("change", "error", "name"),
    [
        ({"images": torch.zeros(48, 1, 32, 32)}, ValueError, "images"),
        ({"images": torch.full((48, 3, 32, 32), float("nan"))}, ValueError, "images"),
        ({"captions": "a red circle"}, TypeError, "captions"),
        ({"captions": [1] * 48}, TypeError, "captions"),
        ({"captions": ["a red circle"] * 3}, ValueError, "captions"),
        ({"tokenizer": "words"}, TypeError, "tokenizer"),
        ({"batch_size": 1}, ValueError, "batch_size"),
        ({"batch_size": 49}, ValueError, "batch_size"),
        ({"seed": -1}, ValueError, "seed"),
        ({"captions": [""] * 48}, ValueError, "captions"),
    ],
)
def test_rejects_bad_input(pairs, change, error, name):
    images, captions, tokenizer = pairs
    arguments = {"images": images, "captions": captions, "tokenizer": tokenizer, "batch_size": 16}
    with raises_naming(error, name):
        pretrain_dual_encoder(**arguments | change, steps=1)
