"""The attribute judge: shapes, accuracy bookkeeping, learning from real scenes, bad input."""

import pytest
import torch

import mmlib
from mmlib.data.scenes import centre_objects, make_scenes
from mmlib.models.judge import AttributeJudge, attribute_accuracy, object_colour
from mmlib.training.batches import TensorBatches
from mmlib.training.loop import train
from tests.bad_input import raises_naming


def test_shapes():
    mmlib.seed_everything(0)
    judge = AttributeJudge()
    logits = judge(torch.rand(5, 3, 16, 16))
    assert {k: tuple(v.shape) for k, v in logits.items()} == {
        "shape": (5, 3),
        "colour": (5, 6),
        "size": (5, 2),
    }
    predicted = judge.predict(torch.rand(5, 3, 16, 16))
    assert predicted.shape == (5, 3) and predicted.dtype == torch.int64
    targets = torch.tensor([[0, 1, 0, 2]] * 5)
    judge4 = AttributeJudge(("shape", "colour", "size", "position"), image_size=32)
    loss, parts = judge4.loss(torch.rand(5, 3, 32, 32), targets)
    assert loss.ndim == 0 and set(parts) == {"shape", "colour", "size", "position"}
    assert loss.item() == pytest.approx(sum(parts.values()), rel=1e-5)


def test_attribute_accuracy():
    predicted = torch.tensor([[0, 1, 0], [2, 5, 1], [1, 1, 1], [0, 0, 0]])
    targets = torch.tensor([[0, 1, 0], [2, 4, 1], [1, 1, 0], [1, 0, 0]])
    scores = attribute_accuracy(predicted, targets)
    assert scores == pytest.approx({"shape": 0.75, "colour": 0.75, "size": 0.75, "all": 0.25})
    by_two = attribute_accuracy(predicted[:, :2], targets[:, :2], ("shape", "colour"))
    assert by_two == pytest.approx({"shape": 0.75, "colour": 0.75, "all": 0.5})


def test_the_judge_learns_real_scenes():
    real = centre_objects(make_scenes(1024, seed=7, num_objects=1))
    fresh = centre_objects(make_scenes(300, seed=8, num_objects=1))
    mmlib.seed_everything(0)
    judge = AttributeJudge()
    batches = TensorBatches(real.images, real.attributes[:, 0, :3], batch_size=128)
    train(judge, lambda m, b: m.loss(*b), batches, steps=60, lr=8e-3, progress=False)
    scores = attribute_accuracy(judge.predict(fresh.images), fresh.attributes[:, 0, :3])
    assert scores["colour"] >= 0.95 and scores["size"] >= 0.95 and scores["all"] >= 0.8


def _trained_judge():
    real = centre_objects(make_scenes(1024, seed=7, num_objects=1))
    mmlib.seed_everything(0)
    judge = AttributeJudge()
    batches = TensorBatches(real.images, real.attributes[:, 0, :3], batch_size=128)
    train(judge, lambda m, b: m.loss(*b), batches, steps=60, lr=8e-3, progress=False)
    return judge.eval()


def _recolour(images: torch.Tensor, rgb: tuple[float, float, float]) -> torch.Tensor:
    """The objects of ``images`` painted in one flat colour (the background stays black)."""
    inside = images.amax(dim=1, keepdim=True) > 0.3
    return torch.where(inside, torch.tensor(rgb).view(1, 3, 1, 1), images)


def test_object_colour_reads_the_object_not_the_background():
    images = torch.zeros(2, 3, 16, 16)
    images[0, :, 4:12, 4:12] = torch.tensor([0.7, 0.25, 0.9]).view(3, 1, 1)
    images[1, :, 6:10, 6:10] = torch.tensor([0.2, 0.8, 0.2]).view(3, 1, 1)
    images[1, :, 5, 6:10] = 0.1  # a dim rim is not part of the core
    assert object_colour(images) == pytest.approx(torch.tensor([[0.7, 0.25, 0.9], [0.2, 0.8, 0.2]]))
    assert object_colour(torch.zeros(1, 3, 8, 8)).tolist() == [[0.0, 0.0, 0.0]]


def test_the_judge_abstains_on_colours_no_real_scene_has():
    judge = _trained_judge()
    with pytest.raises(RuntimeError, match="calibrate"):  # a state, not an argument
        judge.abstains(torch.rand(2, 3, 16, 16))
    fresh = centre_objects(make_scenes(600, seed=8, num_objects=1))
    threshold = judge.calibrate(fresh.images, keep=0.99)
    assert threshold == judge.threshold > 0 and judge.centres.shape == (6, 3)
    assert judge.abstains(fresh.images).float().mean() <= 0.02  # keeps 99% of real images
    purple = fresh.images[fresh.attributes[:, 0, 1] == 4]  # purple objects
    pink, magenta = _recolour(purple, (1.0, 0.45, 0.75)), _recolour(purple, (0.95, 0.15, 0.85))
    assert (judge.predict(magenta)[:, 1] == 4).float().mean() > 0.8  # closed set: "purple"
    assert judge.abstains(pink).all() and judge.abstains(magenta).all()
    assert not judge.abstains(_recolour(purple, (0.7, 0.25, 0.9))).any()  # purple itself
    assert judge.colour_distance(purple).shape == (len(purple),)


def test_bad_input_to_the_abstain_rule():
    judge = AttributeJudge()
    images = torch.rand(4, 3, 16, 16)
    for keep in (0, 0.0, 1.5, -0.1):
        with raises_naming(ValueError, "keep"):
            judge.calibrate(images, keep=keep)
    with raises_naming(TypeError, "keep"):
        judge.calibrate(images, keep="all")
    with raises_naming(ValueError, "images"):
        judge.calibrate(torch.zeros(2, 3, 16, 16))  # reads at most one colour: not every colour
    with raises_naming(ValueError, "attributes"):  # without colour: nothing to calibrate
        AttributeJudge(("shape", "size")).calibrate(images)
    with pytest.raises(RuntimeError, match="calibrate"):  # a state, not an argument
        judge.colour_distance(images)
    with raises_naming(ValueError, "core"):
        object_colour(images, core=0.0)
    with raises_naming(TypeError, "core"):
        object_colour(images, core="all")
    with raises_naming(ValueError, "images"):  # evaluation, once: NaN is looked for
        object_colour(torch.full((1, 3, 8, 8), float("nan")))
    with raises_naming(TypeError, "images"):
        object_colour([[0.0]])


def test_bad_input():
    with raises_naming(TypeError, "attributes"):
        AttributeJudge("shape")
    with raises_naming(ValueError, "attributes"):
        AttributeJudge(("shape", "texture"))
    with raises_naming(ValueError, "attributes"):
        AttributeJudge(("shape", "shape"))
    with raises_naming(ValueError, "image_size"):
        AttributeJudge(image_size=18)
    with raises_naming(TypeError, "width"):
        AttributeJudge(width=1.5)
    judge = AttributeJudge()
    with raises_naming(ValueError, "images"):
        judge(torch.rand(2, 3, 32, 32))
    with raises_naming(TypeError, "images"):
        judge.predict([[0.0]])
    images = torch.rand(2, 3, 16, 16)
    # no scan per step: cross_entropy's IndexError, named
    for bad in ([[0, 6, 0], [0, 0, 0]], [[0, 0, 0], [-1, 0, 0]]):  # only 6 colours: 0..5
        with raises_naming(ValueError, "targets"):
            judge.loss(images, torch.tensor(bad))
    with raises_naming(ValueError, "targets"):
        judge.loss(images, torch.zeros(2, 2, dtype=torch.long))
    with raises_naming(TypeError, "targets"):
        judge.loss(images, torch.zeros(2, 3))
    with raises_naming(ValueError, "targets"):  # batch sizes differ
        judge.loss(images, torch.zeros(3, 3, dtype=torch.long))
    with raises_naming(TypeError, "images"):
        judge.loss([[0.0]], torch.zeros(1, 3, dtype=torch.long))
    with raises_naming(TypeError, "attributes"):
        AttributeJudge(())
    with raises_naming(ValueError, "predicted"):
        attribute_accuracy(torch.zeros(2, 3, dtype=torch.long), torch.zeros(3, 3, dtype=torch.long))
    with raises_naming(ValueError, "predicted"):
        attribute_accuracy(torch.full((2, 3), -1), torch.zeros(2, 3, dtype=torch.long))
    with raises_naming(ValueError, "targets"):
        attribute_accuracy(torch.zeros(2, 3, dtype=torch.long), torch.tensor([[0, 6, 0]] * 2))
