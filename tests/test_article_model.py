"""The article's listing fails as printed; the fixed modules run and are batch independent."""

import pytest
import torch

from mmlib.models import article_listing
from mmlib.models.article_model import FusionModule, ImageModule, MultiModalModel, TextModule
from tests.bad_input import raises_naming

B, T = 4, 7  # batch and sequence length differ on purpose: B == T can hide layout bugs


def batch_independent(forward, *inputs, atol=1e-5):
    with torch.no_grad():
        together = forward(*inputs)
        alone = torch.cat([forward(*(x[k : k + 1] for x in inputs)) for k in range(B)])
    return torch.allclose(together, alone, atol=atol)


@pytest.fixture
def inputs():
    torch.manual_seed(0)
    return torch.randint(0, 10_000, (B, T)), torch.rand(B, 3, 32, 32)


def test_printed_listing_fails_at_cat(inputs):
    with pytest.raises(RuntimeError, match="same number of dimensions"):
        article_listing.MultiModalModel()(*inputs)


def test_printed_text_module_mixes_the_batch(inputs):
    """With the cat 'fixed' by taking the last step, the GRU still reads the batch as time."""
    text = article_listing.TextModule()
    assert not batch_independent(lambda x: text(x)[:, -1], inputs[0])


def test_fixed_model_shapes_and_batch_independence(inputs):
    model = MultiModalModel().eval()
    assert model(*inputs).shape == (B, 512)
    assert batch_independent(model, *inputs)
    assert batch_independent(model.text_module, inputs[0])


def test_parameter_count_matches_the_articles_sizes():
    model = MultiModalModel()
    expected = (
        10_000 * 256  # embedding
        + 3 * (256 * 512 + 512 * 512 + 2 * 512)  # GRU: 3 gates, input + hidden weights, 2 biases
        + 64 * 3 * 3 * 3
        + 64  # conv
        + 64 * 32 * 32 * 512
        + 512  # image linear
        + 1024 * 512
        + 512  # fusion
    )
    assert sum(p.numel() for p in model.parameters()) == expected


def test_lengths_read_state_after_last_real_token():
    torch.manual_seed(0)
    text = TextModule(vocab_size=50, embed_dim=8, hidden_dim=16).eval()
    short = torch.randint(1, 50, (1, 3))
    padded = torch.cat([short, torch.zeros(1, 4, dtype=torch.long)], dim=1)
    with torch.no_grad():
        assert torch.allclose(text(short), text(padded, torch.tensor([3])), atol=1e-6)
        assert not torch.allclose(text(short), text(padded), atol=1e-6)


def test_head_gives_logits(inputs):
    assert MultiModalModel(num_classes=2)(*inputs).shape == (B, 2)


@pytest.mark.parametrize(
    "call, error, name",
    [
        (lambda m: m(torch.rand(B, T), torch.rand(B, 3, 32, 32)), TypeError, "tokens"),
        # ids out of range: no scan per step, the embedding's IndexError, named
        (lambda m: m(torch.full((B, T), 10_000), torch.rand(B, 3, 32, 32)), ValueError, "tokens"),
        (lambda m: m(torch.full((B, T), -1), torch.rand(B, 3, 32, 32)), ValueError, "tokens"),
        (lambda m: m(torch.randint(0, 9, (B, T)), torch.rand(B, 1, 32, 32)), ValueError, "images"),
        (lambda m: m(torch.randint(0, 9, (B, T)), torch.rand(B, 3, 28, 28)), ValueError, "images"),
        (
            lambda m: m(torch.randint(0, 9, (B, T)), torch.rand(B + 1, 3, 32, 32)),
            ValueError,
            "image",  # batch sizes must match
        ),
        (lambda m: m(torch.randint(0, 9, (B,)), torch.rand(B, 3, 32, 32)), ValueError, "text"),
        (lambda m: m(torch.randint(0, 9, (0, T)), torch.rand(0, 3, 32, 32)), ValueError, "text"),
        (
            lambda m: m(torch.randint(0, 9, (B, T)), torch.randint(0, 9, (B, 3, 32, 32))),
            TypeError,
            "images",
        ),
        (
            lambda m: m(
                torch.randint(0, 9, (B, T)), torch.rand(B, 3, 32, 32), torch.tensor([9] * B)
            ),
            ValueError,
            "lengths",
        ),
        (
            lambda m: m(
                torch.randint(0, 9, (B, T)), torch.rand(B, 3, 32, 32), torch.tensor([0] * B)
            ),
            ValueError,
            "lengths",
        ),
        (
            lambda m: m(torch.randint(0, 9, (B, T)), torch.rand(B, 3, 32, 32), torch.tensor([1])),
            ValueError,
            "lengths",  # batch sizes must match: tokens and lengths are named
        ),
        (
            lambda m: m(torch.randint(0, 9, (B, T)), torch.rand(B, 3, 32, 32), torch.tensor([1])),
            ValueError,
            "tokens",
        ),
    ],
)
def test_bad_input_is_named(call, error, name):
    with raises_naming(error, name):
        call(MultiModalModel(vocab_size=10_000))


def test_bad_sizes_and_fusion_input():
    with raises_naming(TypeError, "vocab_size"):
        TextModule(vocab_size=10.5)
    with raises_naming(ValueError, "hidden_dim"):
        TextModule(hidden_dim=0)
    with raises_naming(ValueError, "num_classes"):
        MultiModalModel(num_classes=0)
    with raises_naming(ValueError, "text"):
        FusionModule()(torch.rand(2, 256), torch.rand(2, 512))
    with raises_naming(ValueError, "image_size"):
        ImageModule(image_size=0)
    with raises_naming(ValueError, "out_dim"):
        ImageModule(out_dim=0)


def test_the_checked_embedding_keeps_the_padding_row():
    torch.manual_seed(0)
    text = TextModule(vocab_size=50, embed_dim=8, hidden_dim=16)
    assert text.embedding.padding_idx == 0 and not text.embedding.weight[0].any()
    assert isinstance(text.embedding, torch.nn.Embedding)


def test_features_are_what_the_head_reads(inputs):
    torch.manual_seed(0)
    model = MultiModalModel(num_classes=2).eval()
    with torch.no_grad():
        fused = model.features(*inputs)
        assert fused.shape == (B, 512)
        assert torch.equal(model.head(fused), model(*inputs))


def test_features_check_their_inputs(inputs):
    text, image = inputs[:2]
    with raises_naming(ValueError, "text"):
        MultiModalModel().features(text[0], image)
