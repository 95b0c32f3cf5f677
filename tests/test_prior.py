"""The image prior (DALL-E's transformer): centred scenes, joint sequences, causal and logits
masking, loss weighting, conditioning, sampling determinism, CLIP reranking, bad input."""

import pytest
import torch

import mmlib
from mmlib.data.scenes import centre_objects, make_scenes
from mmlib.data.tokenizer import Tokenizer
from mmlib.models.contrastive import DualEncoder
from mmlib.models.prior import ImagePrior, centre_pad, clip_rerank, generate_images
from mmlib.models.vq import VQVAE
from mmlib.training.batches import TensorBatches
from mmlib.training.loop import train
from tests.bad_input import raises_naming

CAPTIONS = ["a small red circle", "a large blue square", "a small green triangle"]


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer.from_texts(CAPTIONS + ["a large cyan circle"])


def make_prior(tokenizer, **kw):
    mmlib.seed_everything(0)
    options = dict(num_codes=8, grid=2, text_len=4, n_layer=2, n_head=2, n_embd=32) | kw
    return ImagePrior(tokenizer, **options).eval()


def test_centre_objects():
    scenes = make_scenes(64, seed=1, num_objects=1)
    centred = centre_objects(scenes)
    assert centred.images.shape == (64, 3, 16, 16) and len(centred) == 64
    assert all(c.count(" ") == 3 and c.startswith("a ") for c in centred.captions)  # no position
    assert bool((centred.attributes[:, 0, 3] == -1).all())
    assert torch.equal(centred.attributes[:, 0, :3], scenes.attributes[:, 0, :3])
    assert bool(((centred.centres[:, 0] - 8.0).abs() <= 0.5).all())
    # the object's bounding box sits in the middle, and nothing of it was cut off
    mass = centred.images.sum(1)  # (N, 16, 16)
    for profile in (mass.sum(1), mass.sum(2)):  # (N, 16) along x, along y
        inside = (profile > 0.05).float() * torch.arange(16.0)
        first = torch.where(profile > 0.05, inside, torch.tensor(99.0)).min(1).values
        middle = (first + inside.max(1).values + 1) / 2
        assert float((middle - 8).abs().max()) <= 1.0
    assert torch.allclose(mass.sum((1, 2)), scenes.images.sum((1, 2, 3)))
    assert centre_objects(scenes, size=24).images.shape == (64, 3, 24, 24)


def test_centre_pad_inverts_the_crop():
    images = torch.rand(2, 5, 3, 16, 16)
    padded = centre_pad(images)
    assert padded.shape == (2, 5, 3, 32, 32)
    assert torch.equal(padded[..., 8:24, 8:24], images)
    assert float(padded.sum()) == pytest.approx(float(images.sum()), rel=1e-5)


def test_sequences_and_logits_mask(tokenizer):
    prior = make_prior(tokenizer)
    codes = torch.randint(0, 8, (3, 2, 2))
    seq = prior.sequences(CAPTIONS, codes)
    assert seq.shape == (3, 4 + 4) and seq.dtype == torch.int64
    assert bool((seq[:, :4] < prior.text_vocab).all())
    assert torch.equal(seq[:, 4:] - prior.text_vocab, codes.flatten(1))
    assert prior.encode_captions(["a circle"]).tolist()[0][2:] == [tokenizer.pad_id] * 2
    mask = prior.logits_mask()
    assert mask.shape == (8, prior.vocab_size) and mask.dtype == torch.bool
    assert bool(mask[:4, : prior.text_vocab].all()) and not bool(mask[:4, prior.text_vocab :].any())
    assert bool(mask[4:, prior.text_vocab :].all()) and not bool(mask[4:, : prior.text_vocab].any())


def test_a_future_token_never_influences_the_past(tokenizer):
    prior = make_prior(tokenizer)
    seq = prior.sequences(CAPTIONS, torch.randint(0, 8, (3, 2, 2)))
    for k in range(1, seq.shape[1] - 1):
        changed = seq.clone()
        changed[:, k:] = torch.where(  # a different token of the same kind at k and after
            changed[:, k:] >= prior.text_vocab,
            prior.text_vocab + (changed[:, k:] - prior.text_vocab + 1) % 8,
            (changed[:, k:] + 1) % prior.text_vocab,
        )
        before, after = prior.logits(seq), prior.logits(changed)
        assert torch.equal(before[:, :k], after[:, :k])  # entry t sees tokens 0..t only
        finite = torch.isfinite(before[:, k])
        assert not torch.allclose(before[:, k][finite], after[:, k][finite])  # it could fail


def test_logits_masking_in_training_and_sampling(tokenizer):
    prior = make_prior(tokenizer)
    seq = prior.sequences(CAPTIONS, torch.randint(0, 8, (3, 2, 2)))
    logits = prior.logits(seq)  # (3, 7, V): entry t predicts token t + 1
    word, image = slice(0, prior.text_vocab), slice(prior.text_vocab, None)
    assert bool(torch.isinf(logits[:, :3, image]).all())  # next token is a word
    assert bool(torch.isfinite(logits[:, :3, word]).all())
    assert bool(torch.isinf(logits[:, 3:, word]).all())  # next token is an image code
    assert bool(torch.isfinite(logits[:, 3:, image]).all())
    g = torch.Generator().manual_seed(0)
    drawn = torch.multinomial(logits.softmax(-1).flatten(0, 1), 200, replacement=True, generator=g)
    drawn = drawn.view(3, 7, 200)
    assert bool((drawn[:, :3] < prior.text_vocab).all())  # text positions: never an image code
    assert bool((drawn[:, 3:] >= prior.text_vocab).all())  # image positions: never a word
    # sampling: without the mask the untrained model does produce words at image positions
    text = prior.encode_captions(CAPTIONS * 20)
    g = torch.Generator().manual_seed(0)
    unmasked = prior.gpt.generate(text, 4, generator=g)[:, 4:]
    assert bool((unmasked < prior.text_vocab).any())
    codes = prior.generate(CAPTIONS * 20, generator=torch.Generator().manual_seed(0))
    assert codes.shape == (60, 2, 2) and 0 <= int(codes.min()) and int(codes.max()) < 8


def test_loss_weighting_and_padding(tokenizer):
    seq = make_prior(tokenizer).sequences(
        ["a circle", *CAPTIONS[1:]], torch.randint(0, 8, (3, 2, 2))
    )
    losses = {}
    for weight in (0.0, 1 / 8, 1.0):
        prior = make_prior(tokenizer, text_weight=weight)
        loss, parts = prior.loss(seq)
        losses[weight] = loss.item()
        assert loss.item() == pytest.approx(weight * parts["text"] + (1 - weight) * parts["image"])
    assert losses[0.0] == pytest.approx(parts["image"]) and losses[1.0] == pytest.approx(
        parts["text"]
    )
    # the padded positions of "a circle" are not predicted: changing the pad logits' targets
    # to another pad changes nothing, and the text loss equals the mean over real words only
    logits = prior.logits(seq)
    ce = torch.nn.functional.cross_entropy(
        logits[:, :3].flatten(0, 1), seq[:, 1:4].flatten(), reduction="none"
    ).view(3, 3)
    real = seq[:, 1:4] != tokenizer.pad_id
    assert parts["text"] == pytest.approx((ce[real].sum() / real.sum()).item(), rel=1e-5)


def test_the_prior_learns_to_condition_on_the_caption(tokenizer):
    prior = make_prior(tokenizer).train()
    codes = torch.stack([torch.full((2, 2), 5), torch.full((2, 2), 2), torch.tensor([[1, 7]] * 2)])
    seq = prior.sequences(CAPTIONS * 8, codes.repeat(8, 1, 1))
    train(prior, lambda m, b: m.loss(b), TensorBatches(seq, batch_size=24), steps=60, lr=1e-2,
          progress=False)  # fmt: skip
    sampled = prior.eval().generate(CAPTIONS, temperature=0.1, generator=torch.Generator())
    assert torch.equal(sampled, codes)


def test_generate_images_shapes_and_determinism(tokenizer):
    prior = make_prior(tokenizer, num_codes=16, grid=4)
    mmlib.seed_everything(0)
    vqvae = VQVAE(num_codes=16, code_dim=8).eval()
    images = generate_images(prior, vqvae, CAPTIONS, samples_per_caption=2, seed=3)
    assert images.shape == (3, 2, 3, 16, 16)
    assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0
    again = generate_images(prior, vqvae, CAPTIONS, samples_per_caption=2, seed=3)
    other = generate_images(prior, vqvae, CAPTIONS, samples_per_caption=2, seed=4)
    assert torch.equal(images, again) and not torch.equal(images, other)
    assert not prior.training and not vqvae.training
    codes = prior.generate(CAPTIONS, generator=torch.Generator().manual_seed(3))
    assert codes.shape == (3, 4, 4)
    with raises_naming(ValueError, "vqvae"):
        generate_images(prior, VQVAE(num_codes=8), CAPTIONS)
    with raises_naming(TypeError, "prior"):
        generate_images(vqvae, vqvae, CAPTIONS)
    with raises_naming(TypeError, "vqvae"):
        generate_images(prior, prior, CAPTIONS)
    with raises_naming(ValueError, "samples_per_caption"):
        generate_images(prior, vqvae, CAPTIONS, samples_per_caption=0)
    with raises_naming(ValueError, "temperature"):
        generate_images(prior, vqvae, CAPTIONS, temperature=0.0)
    with raises_naming(ValueError, "top_k"):
        generate_images(prior, vqvae, CAPTIONS, top_k=0)


def test_clip_rerank_picks_the_highest_cosine(tokenizer):
    mmlib.seed_everything(0)
    dual = DualEncoder(tokenizer.vocab_size, dim=16, width=4).train()
    images = torch.rand(3, 5, 3, 16, 16)
    best, scores = clip_rerank(dual, tokenizer, CAPTIONS, images)
    assert best.shape == (3,) and scores.shape == (3, 5) and dual.training
    with torch.no_grad():
        dual.eval()
        ids, lengths = tokenizer.encode_batch(CAPTIONS)
        text = dual.encode_texts(ids, lengths)
        image = dual.encode_images(centre_pad(images.flatten(0, 1))).view(3, 5, -1)
    assert torch.allclose(scores, torch.einsum("cnd,cd->cn", image, text), atol=1e-6)
    assert torch.equal(best, scores.argmax(1))
    flipped, _ = clip_rerank(dual, tokenizer, CAPTIONS, images.flip(1))
    assert torch.equal(flipped, 4 - best)  # it follows the images, not their order
    with raises_naming(TypeError, "dual_encoder"):
        clip_rerank(tokenizer, tokenizer, CAPTIONS, images)
    with raises_naming(ValueError, "tokenizer"):
        clip_rerank(dual, Tokenizer.from_texts(["a b"]), CAPTIONS, images)
    with raises_naming(ValueError, "images"):
        clip_rerank(dual, tokenizer, CAPTIONS, images[:2])
    with raises_naming(ValueError, "images"):
        clip_rerank(dual, tokenizer, CAPTIONS, torch.rand(3, 5, 3, 15, 15))


def test_bad_input(tokenizer):
    scenes = make_scenes(4, seed=0, num_objects=2)
    with raises_naming(ValueError, "scenes"):
        centre_objects(scenes)
    with raises_naming(TypeError, "scenes"):
        centre_objects(scenes.images)
    with raises_naming(ValueError, "size"):
        centre_objects(make_scenes(4, seed=0, num_objects=1), size=15)
    with raises_naming(ValueError, "images"):
        centre_pad(torch.rand(2, 1, 16, 16))
    with raises_naming(ValueError, "size"):
        centre_pad(torch.rand(2, 3, 16, 16), size=8)
    with raises_naming(ValueError, "size"):
        centre_pad(torch.rand(2, 3, 16, 16), size=19)  # not centred: 3 pixels to share
    with raises_naming(ValueError, "images"):
        centre_pad(torch.rand(16, 16))
    with raises_naming(TypeError, "tokenizer"):
        ImagePrior("tokenizer", 8, 2, 4)
    with raises_naming(ValueError, "text_weight"):
        ImagePrior(tokenizer, 8, 2, 4, text_weight=2.0)
    with raises_naming(ValueError, "num_codes"):
        ImagePrior(tokenizer, 1, 2, 4)
    prior = make_prior(tokenizer)
    with raises_naming(TypeError, "captions"):
        prior.encode_captions("a small red circle")
    with raises_naming(ValueError, "captions"):
        prior.encode_captions([])
    with raises_naming(TypeError, "captions"):
        prior.encode_captions(["a circle", 3])
    with raises_naming(ValueError, "captions"):
        prior.encode_captions(["a small red circle on the left"])
    with raises_naming(ValueError, "codes"):
        prior.sequences(CAPTIONS, torch.zeros(3, 3, 3, dtype=torch.long))
    with raises_naming(ValueError, "codes"):
        prior.sequences(CAPTIONS, torch.full((3, 2, 2), 8))
    with raises_naming(TypeError, "codes"):
        prior.sequences(CAPTIONS, torch.zeros(3, 2, 2))
    with raises_naming(ValueError, "sequences"):
        prior.loss(torch.zeros(2, 5, dtype=torch.long))
    with raises_naming(ValueError, "sequences"):
        prior.logits(torch.zeros(2, 9, dtype=torch.long))  # longer than L + M = 8
    with raises_naming(TypeError, "sequences"):
        prior.logits(torch.zeros(2, 8))
    # ids out of range: no scan per step, the embedding (or, for the last column, which is
    # only a target, the cross-entropy) reports them, naming sequences
    with raises_naming(ValueError, "sequences"):
        prior.logits(torch.full((2, 8), prior.vocab_size))
    good = prior.sequences(CAPTIONS, torch.zeros(3, 2, 2, dtype=torch.long))
    for column, bad in ((0, -1), (5, prior.vocab_size), (7, prior.vocab_size), (7, -1)):
        seq = good.clone()
        seq[:, column] = bad
        with raises_naming(ValueError, "sequences"):
            prior.loss(seq)
