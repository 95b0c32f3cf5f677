"""mmlib/training/batches.py: moving batches to a device, cutting them per process, and
TensorBatches, mini-batches of in-memory tensors."""

from collections import namedtuple

import pytest
import torch

from mmlib.training.batches import TensorBatches, shard_batch, to_device
from tests.bad_input import raises_naming


def test_to_device_keeps_the_structure():
    Pair = namedtuple("Pair", "image text")
    batch = {"pair": Pair(torch.ones(2), "a caption"), "ids": [torch.zeros(3, dtype=torch.long)]}
    moved = to_device(batch, torch.device("cpu"))
    assert isinstance(moved["pair"], Pair) and moved["pair"].text == "a caption"
    assert torch.equal(moved["pair"].image, torch.ones(2))
    assert isinstance(moved["ids"], list) and moved["ids"][0].dtype == torch.long
    assert to_device((torch.ones(1), 3), "cpu")[1] == 3
    with raises_naming(TypeError, "device"):
        to_device(torch.ones(1), 0)
    with raises_naming(ValueError, "device"):
        to_device(torch.ones(1), "tpu")


def test_tensor_batches_cover_every_row_and_repeat_by_epoch():
    x = torch.arange(10)
    batches = TensorBatches(x, x * 2, batch_size=4, seed=5)
    assert len(batches) == 3
    epoch0 = list(batches)
    assert [len(b[0]) for b in epoch0] == [4, 4, 2]
    assert sorted(torch.cat([b[0] for b in epoch0]).tolist()) == list(range(10))
    assert all(torch.equal(a * 2, b) for a, b in epoch0)  # rows stay paired
    epoch1 = torch.cat([b[0] for b in batches])
    assert not torch.equal(torch.cat([b[0] for b in epoch0]), epoch1)
    batches.set_epoch(0)
    assert torch.equal(torch.cat([b[0] for b in batches]), torch.cat([b[0] for b in epoch0]))
    again = TensorBatches(x, x * 2, batch_size=4, seed=5)
    assert torch.equal(torch.cat([b[0] for b in again]), torch.cat([b[0] for b in epoch0]))


def test_tensor_batches_in_order_and_drop_last():
    x = torch.arange(10)
    ordered = list(TensorBatches(x, batch_size=4, shuffle=False))
    assert isinstance(ordered[0], torch.Tensor)  # one tensor in, tensors out
    assert [b.tolist() for b in ordered] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    dropped = TensorBatches(x, batch_size=4, shuffle=False, drop_last=True)
    assert len(dropped) == 2 and [len(b) for b in dropped] == [4, 4]
    assert len(TensorBatches(x, batch_size=5)) == 2


@pytest.mark.parametrize(
    "tensors, options, error, name",
    [
        ((), {}, ValueError, "tensors"),
        (([1, 2],), {}, TypeError, "tensors[0]"),
        ((torch.tensor(1.0),), {}, ValueError, "tensors[0]"),
        ((torch.zeros(0, 2),), {}, ValueError, "tensors[0]"),
        ((torch.zeros(4), torch.zeros(5)), {}, ValueError, "tensors[1]"),
        ((torch.zeros(4),), {"batch_size": 0}, ValueError, "batch_size"),
        ((torch.zeros(4),), {"shuffle": 1}, TypeError, "shuffle"),
        ((torch.zeros(4),), {"drop_last": None}, TypeError, "drop_last"),
        ((torch.zeros(4),), {"seed": -2}, ValueError, "seed"),
        ((torch.zeros(4),), {"batch_size": 5, "drop_last": True}, ValueError, "batch_size"),
    ],
)
def test_tensor_batches_reject_bad_input(tensors, options, error, name):
    options = {"batch_size": 2, **options}
    with raises_naming(error, name):
        TensorBatches(*tensors, **options)


def test_shard_batch_slices_every_tensor():
    x = torch.arange(8)
    batch = {"x": x, "pair": (x * 10, "text")}
    second = shard_batch(batch, rank=1, world_size=2)
    assert second["x"].tolist() == [4, 5, 6, 7] and second["pair"][0].tolist() == [40, 50, 60, 70]
    assert second["pair"][1] == "text"
    with raises_naming(ValueError, "batch"):
        shard_batch(batch, rank=0, world_size=3)
    with raises_naming(ValueError, "rank"):
        shard_batch(batch, rank=2, world_size=2)
    with raises_naming(ValueError, "world_size"):
        shard_batch(batch, rank=0, world_size=0)
    with raises_naming(TypeError, "rank"):
        shard_batch(batch, rank="0", world_size=2)
