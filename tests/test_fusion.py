"""Fusion classifiers (text, image, early, late) and the joint-space helpers."""

import pytest
import torch
import torch.nn.functional as F

from mmlib.encoders import ImageEncoder, TextEncoder
from mmlib.evaluation.metrics import best_threshold, count_parameters
from mmlib.models.contrastive import DualEncoder, pair_similarity
from mmlib.models.fusion import MODES, FusionClassifier, classification_loss
from tests.bad_input import raises_naming
from tests.conftest import VOCAB


def small(mode, **kw):
    torch.manual_seed(0)
    return FusionClassifier(mode, VOCAB, num_classes=3, dim=8, width=4, hidden=16, **kw)


@pytest.mark.parametrize("mode", MODES)
def test_shapes_and_feature_sizes(mode, batch):
    images, tokens, lengths = batch
    model = small(mode)
    assert model(images, tokens, lengths).shape == (5, 3)
    expected = {"text": 8, "image": 8, "early": 8, "late": 16}[mode]
    assert model.fused_features(images, tokens, lengths).shape == (5, expected)


def test_modes_build_only_the_encoders_they_use():
    assert (
        isinstance(small("text").text_encoder, TextEncoder) and small("text").image_encoder is None
    )
    assert small("image").text_encoder is None
    assert isinstance(small("image").image_encoder, ImageEncoder)
    early = small("early", text_channels=5)
    assert early.image_encoder.features[0].in_channels == 3 + 5
    assert early.text_encoder.proj.out_features == 5


def test_unimodal_models_ignore_the_other_input(batch):
    images, tokens, lengths = batch
    text, image = small("text"), small("image")
    with torch.no_grad():
        assert torch.equal(text(images, tokens, lengths), text(None, tokens, lengths))
        assert torch.equal(text(images, tokens, lengths), text(images.flip(0), tokens, lengths))
        assert torch.equal(image(images, tokens, lengths), image(images, None))


@pytest.mark.parametrize("mode", ["early", "late"])
def test_fused_models_depend_on_both_inputs(mode, batch):
    images, tokens, lengths = batch
    model = small(mode)
    with torch.no_grad():
        out = model(images, tokens, lengths)
        other_images = model(images.flip(0), tokens, lengths)
        other_tokens = model(images, tokens.flip(0), lengths.flip(0))
    assert not torch.allclose(out, other_images)
    assert not torch.allclose(out, other_tokens)


@pytest.mark.parametrize("mode", MODES)
def test_batch_independent_and_deterministic(mode, batch):
    images, tokens, lengths = batch
    model = small(mode)
    with torch.no_grad():
        together = model(images, tokens, lengths)
        alone = torch.cat(
            [model(images[k : k + 1], tokens[k : k + 1], lengths[k : k + 1]) for k in range(5)]
        )
        again = small(mode)(images, tokens, lengths)
    assert torch.allclose(together, alone, atol=1e-5)
    assert torch.equal(together, again)


def test_late_fusion_learns_a_task_that_needs_both_inputs():
    """Label = (image is blue) XOR (first word is 2): neither input alone says anything."""
    g = torch.Generator().manual_seed(0)
    colour = torch.randint(0, 2, (64,), generator=g)
    word = torch.randint(0, 2, (64,), generator=g)
    rgb = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])[colour]  # red or blue
    images = rgb.view(-1, 3, 1, 1).expand(-1, 3, 32, 32).contiguous()
    tokens = torch.stack([word + 1, torch.full_like(word, 3)], dim=1)
    labels = colour ^ word
    torch.manual_seed(0)
    model = FusionClassifier("late", 4, dim=8, width=2, hidden=16)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(40):
        loss = F.cross_entropy(model(images, tokens), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        assert (model(images, tokens).argmax(1) == labels).float().mean() > 0.95


def test_bad_arguments(batch):
    images, tokens, lengths = batch
    with raises_naming(ValueError, "mode"):
        FusionClassifier("middle", VOCAB)
    with raises_naming(TypeError, "vocab_size"):
        FusionClassifier("late", 20.0)
    with raises_naming(ValueError, "num_classes"):
        FusionClassifier("late", VOCAB, num_classes=1)
    for name in ("dim", "width", "hidden", "text_channels"):
        with raises_naming(ValueError, name):
            FusionClassifier("early", VOCAB, **{name: 0})
    model = small("late")
    with raises_naming(ValueError, "images"):
        model(images[:, :1], tokens, lengths)
    with raises_naming(TypeError, "images"):
        model(None, tokens, lengths)
    with raises_naming(TypeError, "tokens"):
        model(images, None)
    with raises_naming(ValueError, "tokens"):
        model(images, tokens + VOCAB, lengths)
    with raises_naming(ValueError, "tokens"):
        model(images[:4], tokens, lengths)
    with raises_naming(ValueError, "tokens"):
        small("early")(images[:4], tokens, lengths)
    with raises_naming(ValueError, "lengths"):
        model(images, tokens, lengths + 10)
    early = small("early")
    with raises_naming(ValueError, "images"):
        early(images[:, :, :16], tokens, lengths)
    with raises_naming(TypeError, "tokens"):
        early(images, None)
    with raises_naming(TypeError, "tokens"):
        early(images, tokens.float(), lengths)
    with raises_naming(TypeError, "vocab_size"):
        FusionClassifier("image", 20.0)
    assert small("text")(None, tokens, lengths).shape == (5, 3)  # text mode ignores images
    with raises_naming(TypeError, "images"):
        small("image")(None, None)


def test_count_parameters():
    layer = torch.nn.Linear(3, 4)
    assert count_parameters(layer) == 16
    model = small("late")
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())
    with raises_naming(TypeError, "module"):
        count_parameters("not a module")


def test_pair_similarity_is_the_diagonal(batch):
    images, tokens, lengths = batch
    torch.manual_seed(0)
    dual = DualEncoder(VOCAB, dim=8, width=4)
    scores = pair_similarity(dual, images, tokens, lengths)
    with torch.no_grad():
        logits = dual(images, tokens, lengths) / dual.scale()
    assert scores.shape == (5,)
    assert torch.allclose(scores, logits.diagonal(), atol=1e-5)
    assert float(scores.abs().max()) <= 1 + 1e-5
    with raises_naming(TypeError, "model"):
        pair_similarity(small("late"), images, tokens, lengths)
    with raises_naming(ValueError, "images"):
        pair_similarity(dual, images[:, :, :16, :16], tokens, lengths)
    with raises_naming(ValueError, "tokens"):
        pair_similarity(dual, images[:3], tokens, lengths)
    with raises_naming(ValueError, "images"):  # an evaluation scans the values once
        pair_similarity(dual, images * float("nan"), tokens, lengths)
    with raises_naming(ValueError, "tokens"):
        pair_similarity(dual, images, tokens[0], lengths)


def test_best_threshold():
    scores = torch.tensor([0.1, 0.4, 0.35, 0.8, 0.9, 0.2])
    labels = torch.tensor([0, 0, 1, 1, 1, 0])
    threshold, acc = best_threshold(scores, labels)
    assert threshold == pytest.approx(0.8) and acc == pytest.approx(5 / 6)
    predicted = (scores >= threshold).long()
    assert (predicted == labels).float().mean().item() == pytest.approx(acc)
    separable = torch.tensor([0, 0, 1, 1])
    threshold, acc = best_threshold(torch.tensor([0.1, 0.2, 0.6, 0.7]), separable)
    assert threshold == pytest.approx(0.6) and acc == 1.0


def test_best_threshold_agrees_with_scikit_learn_and_breaks_ties_high():
    """On random scores, with and without ties, the accuracy is the best that scikit-learn's
    ROC thresholds reach, the threshold reaches it, and no higher threshold does."""
    from sklearn.metrics import roc_curve

    g = torch.Generator().manual_seed(0)
    for trial in range(300):
        n = int(torch.randint(2, 60, (1,), generator=g))
        labels = torch.randint(0, 2, (n,), generator=g)
        labels[:2] = torch.tensor([0, 1])
        scores = torch.rand(n, generator=g)
        if trial % 2:  # few distinct values: many ties
            scores = torch.randint(0, 6, (n,), generator=g).float() / 5
        threshold, acc = best_threshold(scores, labels)
        fpr, tpr, _ = roc_curve(labels.numpy(), scores.double().numpy())
        positives = int(labels.sum())
        best = max(tpr * positives + (1 - fpr) * (n - positives)) / n
        assert acc == pytest.approx(best, abs=1e-12)
        assert ((scores >= threshold).long() == labels).float().mean().item() == pytest.approx(acc)
        higher = scores[scores > threshold].unique()
        assert all(((scores >= t).long() == labels).float().mean() < acc - 1e-9 for t in higher)
    assert best_threshold(torch.tensor([0.5, 0.5]), torch.tensor([0, 1])) == (float("inf"), 0.5)


def test_best_threshold_bad_arguments():
    scores, labels = torch.tensor([0.1, 0.9]), torch.tensor([0, 1])
    with raises_naming(TypeError, "scores"):
        best_threshold(labels, labels)
    with raises_naming(ValueError, "scores"):
        best_threshold(torch.tensor([0.1, float("nan")]), labels)
    with raises_naming(TypeError, "labels"):
        best_threshold(scores, scores)
    with raises_naming(ValueError, "labels"):
        best_threshold(scores, torch.tensor([1, 1]))
    with raises_naming(ValueError, "labels"):
        best_threshold(scores, torch.tensor([0, 2]))
    with raises_naming(ValueError, "labels"):
        best_threshold(scores, torch.tensor([0, 1, 1]))


def test_classification_loss_is_cross_entropy_of_the_logits(batch):
    model = small("late")
    labels = torch.tensor([0, 2, 1, 1, 0])
    expected = F.cross_entropy(model(*batch), labels)
    torch.testing.assert_close(classification_loss(model, (*batch, labels)), expected)
    with raises_naming(TypeError, "batch"):
        classification_loss(model, batch)
    with raises_naming(TypeError, "batch"):
        classification_loss(model, labels)
    with raises_naming(TypeError, "labels"):
        classification_loss(model, (*batch, labels.float()))
