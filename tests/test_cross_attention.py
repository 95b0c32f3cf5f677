"""Cross-attention fusion and the relational questions it is measured on."""

import pytest
import torch

from mmlib.data.scenes import make_scenes
from mmlib.data.tasks import relation_questions
from mmlib.data.world import COLOURS, RELATIONS, SHAPES, SIZES
from mmlib.models.cross_attention import CrossAttentionClassifier, token_mask
from tests.bad_input import raises_naming
from tests.conftest import VOCAB


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(300, seed=0, num_objects=2)


def small(**kw):
    torch.manual_seed(0)
    return CrossAttentionClassifier(VOCAB, num_classes=3, dim=8, width=4, heads=2, hidden=16, **kw)


def _named(name, objects):
    """Which of the two objects a name like 'the small red circle' refers to."""
    words = name.split()[1:]
    return [
        k
        for k, o in enumerate(objects)
        if words[-2:] == [COLOURS[o[1]], SHAPES[o[0]]]
        and (len(words) == 2 or words[0] == SIZES[o[2]])
    ]


@pytest.mark.parametrize("relations", [RELATIONS, ("left of",), ("above", "below")])
def test_relation_answers_agree_with_the_object_centres(scenes, relations):
    index, questions, answers = relation_questions(scenes, seed=0, relations=relations)
    assert len(index) == len(questions) == len(answers) > 100
    assert answers.dtype == torch.long and set(answers.tolist()) == {0, 1}
    assert 0.35 < answers.float().mean().item() < 0.65
    for i, question, answer in zip(index.tolist(), questions, answers.tolist(), strict=True):
        asked = next(r for r in relations if f" {r} " in question)
        name_a, name_b = question[len("is ") : -1].split(f" {asked} ")
        objects = scenes.attributes[i].tolist()
        (a,), (b,) = _named(name_a, objects), _named(name_b, objects)  # exactly one each
        assert a != b
        (xa, ya), (xb, yb) = scenes.centres[i, a].tolist(), scenes.centres[i, b].tolist()
        truth = {"left of": xb - xa, "right of": xa - xb, "above": yb - ya, "below": ya - yb}
        assert abs(truth[asked]) >= 8  # asked only along an axis that separates the objects
        assert (truth[asked] > 0) == bool(answer)


def test_relation_questions_are_deterministic(scenes):
    first, second = relation_questions(scenes, seed=3), relation_questions(scenes, seed=3)
    assert torch.equal(first[0], second[0]) and first[1] == second[1]
    assert first[1] != relation_questions(scenes, seed=4)[1]


def test_relation_questions_bad_input(scenes):
    with raises_naming(TypeError, "scenes"):
        relation_questions(scenes.images)
    with raises_naming(ValueError, "scenes"):
        relation_questions(make_scenes(10, seed=0))
    with raises_naming(ValueError, "relations"):
        relation_questions(scenes, relations=("near",))
    with raises_naming(TypeError, "relations"):
        relation_questions(scenes, relations="left of")
    with raises_naming(ValueError, "seed"):
        relation_questions(scenes, seed=-1)


def test_token_mask():
    mask = token_mask(torch.tensor([2, 4, 1]), 4, 3)
    assert mask.tolist() == [
        [True, True, False, False],
        [True, True, True, True],
        [True, False, False, False],
    ]
    assert token_mask(None, 3, 2).all() and token_mask(None, 3, 2).shape == (2, 3)
    with raises_naming(ValueError, "lengths"):
        token_mask(torch.tensor([0, 2]), 4, 2)
    with raises_naming(ValueError, "lengths"):
        token_mask(torch.tensor([5, 2]), 4, 2)
    with raises_naming(ValueError, "lengths"):
        token_mask(torch.tensor([1, 2, 3]), 4, 2)
    with raises_naming(TypeError, "lengths"):
        token_mask(torch.tensor([1.0, 2.0]), 4, 2)
    with raises_naming(ValueError, "num_tokens"):
        token_mask(None, 0, 2)
    with raises_naming(TypeError, "batch"):
        token_mask(None, 4, 2.0)


def test_shapes_and_attention_rows_sum_to_one(batch):
    images, tokens, lengths = batch
    model = small().eval()
    assert model(images, tokens, lengths).shape == (5, 3)
    assert model(images, tokens).shape == (5, 3)
    weights = model.attention_weights(images, tokens, lengths)
    assert weights.shape == (5, tokens.shape[1], 16)
    torch.testing.assert_close(weights.sum(-1), torch.ones(5, tokens.shape[1]))


def test_padding_after_the_last_token_changes_nothing(batch):
    images, tokens, lengths = batch
    model = small().eval()
    padded = torch.cat([tokens, torch.zeros(5, 3, dtype=torch.long)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(images, tokens, lengths), model(images, padded, lengths))


def test_the_answer_depends_on_where_things_are(batch):
    images, tokens, lengths = batch
    model = small().eval()
    with torch.no_grad():
        assert not torch.allclose(
            model(images, tokens, lengths), model(images.flip(3), tokens, lengths)
        )


def test_batch_independence_and_determinism(batch):
    images, tokens, lengths = batch
    model = small().eval()
    with torch.no_grad():
        together = model(images, tokens, lengths)
        alone = torch.cat(
            [model(images[k : k + 1], tokens[k : k + 1], lengths[k : k + 1]) for k in range(5)]
        )
        torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)
        assert torch.equal(together, small().eval()(images, tokens, lengths))


def test_gradients_reach_both_encoders(batch):
    images, tokens, lengths = batch
    model = small()
    model(images, tokens, lengths).sum().backward()
    assert model.image_encoder.features[0].weight.grad.abs().sum() > 0
    assert model.text_encoder.embedding.weight.grad.abs().sum() > 0
    assert model.position.grad.abs().sum() > 0


def test_bad_input(batch):
    images, tokens, lengths = batch
    model = small()
    with raises_naming(ValueError, "images"):
        model(images[:, :1], tokens, lengths)
    with raises_naming(TypeError, "tokens"):
        model(images, tokens.float(), lengths)
    with raises_naming(ValueError, "tokens"):
        model(images, tokens + VOCAB, lengths)
    with raises_naming(ValueError, "tokens"):
        model.attention_weights(images, tokens - VOCAB, lengths)
    with raises_naming(ValueError, "tokens"):
        model(images, tokens[0], lengths)
    with raises_naming(TypeError, "images"):
        model(None, tokens, lengths)
    with raises_naming(ValueError, "lengths"):
        model(images, tokens, lengths * 0)
    with raises_naming(ValueError, "tokens"):
        model(images[:4], tokens, lengths)
    with raises_naming(ValueError, "lengths"):
        model(images, tokens, lengths[:4])
    with raises_naming(ValueError, "dim"):
        CrossAttentionClassifier(VOCAB, dim=10, heads=4)
    with raises_naming(TypeError, "width"):
        CrossAttentionClassifier(VOCAB, width=2.0)
    with raises_naming(ValueError, "num_classes"):
        CrossAttentionClassifier(VOCAB, num_classes=1)
    with raises_naming(ValueError, "vocab_size"):
        CrossAttentionClassifier(1)
    for name in ("heads", "hidden"):
        with raises_naming(ValueError, name):
            CrossAttentionClassifier(VOCAB, **{name: 0})
