"""Few-shot naming episodes: new words bound to objects inside one sequence.

An episode is a sequence of (object, name) pairs. It uses ``ways`` kinds of object (classes)
and gives each a *nonce* name drawn afresh for that episode ("this is a dax", the fast-binding
task of Frozen, Tsimpoukelli et al. 2021). First come ``shots`` examples of each class in a
shuffled order (the *support*), then ``queries`` more objects of the same classes, whose names
a model must say. Since the names are drawn anew for every episode, a name means nothing
across episodes: a model can only answer a query by finding its class among the pairs before
it, which is learning in context. Train and test episodes draw their names from disjoint pools
(:func:`nonce_names` with ``split``), so a test name was never seen in training.

Shapes: E episodes, L = ways * shots + queries positions, N objects in the pool.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mmlib.data.scenes import _row_index
from mmlib.validate import check_int, check_ints, check_tensor, require

__all__ = ["Episodes", "make_episodes", "nonce_names"]


_ONSETS = "bdfgklmnprstvz"  # consonants that start a syllable
_VOWELS = "aeiou"
_CODAS = "bdgklmnprstx"  # consonants that end a word


def nonce_names(count: int, seed: int = 0) -> list[str]:
    """``count`` distinct made-up words such as "dafek" or "molix", in an order set by ``seed``.

    Each is consonant-vowel-consonant-vowel-consonant, so none is one of the shapes world's
    words. Split the list to get disjoint pools: ``names[:200]`` to train, ``names[200:]`` to test.
    """
    total = (len(_ONSETS) * len(_VOWELS)) ** 2 * len(_CODAS)
    check_int("count", count, minimum=1)
    require(count <= total, "count", f"at most {total} (the distinct words)", count)
    check_int("seed", seed, minimum=0)
    pick = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:count]
    words = []
    for k in pick.tolist():
        k, coda = divmod(k, len(_CODAS))
        k, v2 = divmod(k, len(_VOWELS))
        k, c2 = divmod(k, len(_ONSETS))
        c1, v1 = divmod(k, len(_VOWELS))
        words.append(_ONSETS[c1] + _VOWELS[v1] + _ONSETS[c2] + _VOWELS[v2] + _CODAS[coda])
    return words


@dataclass
class Episodes:
    """E episodes of L positions each; index like :class:`~mmlib.data.scenes.Scenes` (an int, a
    slice, a list or an int or bool tensor).

    - ``objects``: ``(E, L) int64``, each position's object, an index into the pool's labels
    - ``names``: ``(E, L) int64``, each position's name id, from the name pool given
    - ``classes``: ``(E, L) int64``, each position's class within its episode, 0..ways-1
    - ``choices``: ``(E, ways) int64``, the episode's name ids; class c is called ``choices[:, c]``
    - ``is_query``: ``(E, L) bool``, the positions after the support
    - ``named_before``: ``(E, L) bool``, the position's class appeared earlier in the episode
      (only there can the name be known)
    """

    objects: torch.Tensor
    names: torch.Tensor
    classes: torch.Tensor
    choices: torch.Tensor
    is_query: torch.Tensor
    named_before: torch.Tensor

    def __len__(self) -> int:
        return len(self.objects)

    def __getitem__(self, index: int | slice | list | torch.Tensor) -> Episodes:
        rows = _row_index("index", index, len(self))  # the rows, checked as Scenes checks them
        return Episodes(*(getattr(self, f)[rows] for f in self.__dataclass_fields__))


def make_episodes(
    labels: torch.Tensor,
    name_ids: torch.Tensor,
    num_episodes: int,
    *,
    ways: int,
    shots: int,
    queries: int = 1,
    seed: int = 0,
) -> Episodes:
    """Draw ``num_episodes`` naming episodes from a pool of objects with class ``labels (N,)``.

    Each episode picks ``ways`` distinct classes of the pool and ``ways`` distinct names of
    ``name_ids (M,)``; then ``shots`` random objects of each class, shuffled, then ``queries``
    objects of classes drawn uniformly from the episode's ``ways``. Objects are drawn with
    replacement within a class. ``shots=0`` gives episodes of queries alone, where a class is
    named only from its second appearance on (the training layout: every position is a query).
    """
    check_tensor("labels", labels, ndim=1, dtype="integer")
    check_tensor("name_ids", name_ids, ndim=1, dtype="integer")
    check_ints(minimum=1, num_episodes=num_episodes, ways=ways)
    check_ints(minimum=0, shots=shots, queries=queries, seed=seed)
    require(shots + queries > 0, "shots + queries", "at least 1", shots + queries)
    present, counts = torch.unique(labels, return_counts=True)  # sorted classes of the pool
    require(ways <= len(present), "ways", f"<= the {len(present)} classes in labels", ways)
    require(ways <= len(name_ids), "ways", f"<= the {len(name_ids)} names in name_ids", ways)
    require(len(torch.unique(name_ids)) == len(name_ids), "name_ids", "distinct", name_ids)

    g = torch.Generator().manual_seed(seed)
    E, S = num_episodes, ways * shots
    classes = torch.rand(E, len(present), generator=g).argsort(1)[:, :ways]  # (E, ways) of present
    choices = name_ids[torch.rand(E, len(name_ids), generator=g).argsort(1)[:, :ways]]  # (E, ways)
    support = torch.arange(ways).repeat(shots).expand(E, S)  # (E, S): each class `shots` times
    support = support.gather(1, torch.rand(E, S, generator=g).argsort(1))  # shuffled
    asked = torch.randint(ways, (E, queries), generator=g)
    local = torch.cat([support, asked], dim=1)  # (E, L) class within the episode

    cls = classes.gather(1, local)  # (E, L) index into `present`
    by_class = labels.argsort(stable=True)  # the pool's objects grouped by class
    start = torch.cumsum(counts, 0) - counts
    pick = start[cls] + (torch.rand(cls.shape, generator=g) * counts[cls]).long()
    one_hot = torch.nn.functional.one_hot(local, ways)  # (E, L, ways)
    before = (one_hot.cumsum(1) - one_hot).gather(2, local.unsqueeze(2)).squeeze(2) > 0
    return Episodes(
        objects=by_class[pick],
        names=choices.gather(1, local),
        classes=local,
        choices=choices,
        is_query=(torch.arange(S + queries) >= S).expand(E, -1).clone(),
        named_before=before,
    )
