"""Few-shot naming episodes (:mod:`mmlib.data.episodes`): layout, fresh names, no leakage."""

import pytest
import torch

from mmlib.data.episodes import Episodes, make_episodes, nonce_names
from tests.bad_input import raises_naming

LABELS = torch.arange(600) % 12  # 12 classes, 50 objects each


def test_nonce_names_are_distinct_made_up_words_and_repeat_under_a_seed():
    names = nonce_names(500, seed=3)
    assert len(set(names)) == 500 and all(len(n) == 5 and n.isalpha() for n in names)
    assert names == nonce_names(500, seed=3) and names != nonce_names(500, seed=4)
    assert {"red", "circle", "small", "dax"}.isdisjoint(names)
    assert nonce_names(10, seed=3) == names[:10]  # a prefix: pools split by slicing


def test_an_episode_is_the_support_then_the_queries_each_class_named_by_one_fresh_name():
    ep = make_episodes(LABELS, torch.arange(100, 140), 300, ways=3, shots=2, queries=4, seed=0)
    assert ep.objects.shape == ep.names.shape == ep.classes.shape == (300, 10)
    assert ep.choices.shape == (300, 3)
    assert ep.is_query[:, :6].logical_not().all() and ep.is_query[:, 6:].all()
    support = ep.classes[:, :6].sort(1).values  # each class exactly `shots` times
    assert torch.equal(support, torch.tensor([0, 0, 1, 1, 2, 2]).expand(300, -1))
    assert torch.equal(ep.names, ep.choices.gather(1, ep.classes))  # class c is choices[c]
    for e in range(300):  # distinct names and distinct pool classes per episode
        assert len(set(ep.choices[e].tolist())) == 3
        pool_class = LABELS[ep.objects[e]]
        for c in range(3):  # one pool class per episode class, a different one per class
            assert len(set(pool_class[ep.classes[e] == c].tolist())) == 1
        assert len(set(pool_class.tolist())) == 3
    assert ep.names.min() >= 100 and ep.names.max() < 140


def test_names_are_drawn_afresh_so_no_name_is_tied_to_a_class():
    ep = make_episodes(LABELS, torch.arange(20), 2000, ways=4, shots=1, seed=1)
    pool_class = LABELS[ep.objects].flatten()
    counts = torch.zeros(20, 12)
    counts.index_put_(
        (ep.names.flatten(), pool_class), torch.ones(len(pool_class)), accumulate=True
    )
    share = counts / counts.sum(1, keepdim=True)  # for each name, the classes it named
    assert share.max() < 0.15  # about 1/12 each: a name says nothing about the class


def test_named_before_marks_the_positions_whose_class_came_earlier():
    ep = make_episodes(LABELS, torch.arange(10), 50, ways=3, shots=0, queries=8, seed=2)
    assert not ep.is_query.logical_not().any()  # no support: every position is a query
    for e in range(50):
        seen = set()
        for j, c in enumerate(ep.classes[e].tolist()):
            assert bool(ep.named_before[e, j]) == (c in seen)
            seen.add(c)
    with_support = make_episodes(LABELS, torch.arange(10), 50, ways=3, shots=1, queries=2)
    assert with_support.named_before[:, 3:].all()  # after one shot of each, every query


def test_train_and_test_pools_never_share_a_name():
    words = nonce_names(250)
    train_ids, test_ids = torch.arange(200), torch.arange(200, 250)
    train = make_episodes(LABELS, train_ids, 500, ways=4, shots=2, seed=0)
    test = make_episodes(LABELS, test_ids, 500, ways=4, shots=2, seed=0)
    assert set(train.names.unique().tolist()).isdisjoint(test.names.unique().tolist())
    assert {words[i] for i in test.names.unique().tolist()} <= set(words[200:])


def test_episodes_repeat_under_a_seed_and_index_like_a_batch():
    a = make_episodes(LABELS, torch.arange(30), 40, ways=5, shots=2, seed=7)
    b = make_episodes(LABELS, torch.arange(30), 40, ways=5, shots=2, seed=7)
    c = make_episodes(LABELS, torch.arange(30), 40, ways=5, shots=2, seed=8)
    assert all(torch.equal(getattr(a, f), getattr(b, f)) for f in Episodes.__dataclass_fields__)
    assert not torch.equal(a.objects, c.objects)
    part = a[torch.tensor([3, 1])]
    assert len(part) == 2 and torch.equal(part.names[1], a.names[1])
    assert len(a[5]) == 1 and len(a[:10]) == 10
    assert len(a[a.choices[:, 0] < 100]) == 40  # a bool mask, as for Scenes
    with raises_naming(TypeError, "index"):
        a["first"]
    with raises_naming(IndexError, "index"):
        a[40]


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"labels": LABELS.float()}, TypeError, "labels"),
        ({"labels": LABELS.view(2, -1)}, ValueError, "labels"),
        ({"name_ids": [1, 2, 3]}, TypeError, "name_ids"),
        ({"name_ids": torch.tensor([1, 1, 2, 3, 4])}, ValueError, "name_ids"),
        ({"ways": 13}, ValueError, "ways"),
        ({"ways": 6}, ValueError, "ways"),  # only 5 names
        ({"ways": 0}, ValueError, "ways"),
        ({"shots": -1}, ValueError, "shots"),
        ({"shots": 0, "queries": 0}, ValueError, "shots + queries"),
        ({"num_episodes": 2.0}, TypeError, "num_episodes"),
        ({"seed": -1}, ValueError, "seed"),
    ],
)
def test_bad_input_is_rejected_naming_the_argument(kwargs, error, name):
    args = {"labels": LABELS, "name_ids": torch.arange(5), "num_episodes": 4, "ways": 3}
    args |= {"shots": 1} | kwargs
    with raises_naming(error, name):
        make_episodes(args.pop("labels"), args.pop("name_ids"), args.pop("num_episodes"), **args)


@pytest.mark.parametrize(
    ("count", "seed", "error", "name"),
    [
        (0, 0, ValueError, "count"),
        (10**6, 0, ValueError, "count"),
        (5, -1, ValueError, "seed"),
        (5.0, 0, TypeError, "count"),
    ],
)
def test_nonce_names_bad_input(count, seed, error, name):
    with raises_naming(error, name):
        nonce_names(count, seed)
