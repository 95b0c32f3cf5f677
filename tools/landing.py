"""The landing page's figure: what a reader of the book builds, drawn by the book's own code.

    python -m tools.landing     # writes book/assets/landing.png (about half a minute, 2 cores)

Three panels: scenes of the shapes world with their captions (the data of every chapter); a
caption used as a search query and the gallery images a contrastive dual encoder ranks first
for it, with their cosine similarity (chapter 6.3); and pictures a flow-matching denoiser
draws for a caption it was never shown as a picture of (chapter 6.2: the shape-colour pair is
held out of its training). Every model is trained here from scratch with mmlib, seeded, on the
CPU, with the chapters' settings (the dual encoder on fewer pairs). The figure is not part of
any page's run, so it has no time budget; the PNG records the command that drew it.
``tests/test_landing.py`` checks the committed file and draws a quick version.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

ASSETS = Path(__file__).resolve().parents[1] / "book" / "assets"
QUERY = "a large blue square"  # searched for in a gallery of new scenes
PROMPT = "a large purple circle"  # drawn by the denoiser: a pair it never saw as a picture
HELD_OUT = (("circle", "purple"),)  # the shape-colour pairs kept out of the denoiser's data
COMMAND = "python -m tools.landing"


def search(query: str, steps: int, seed: int = 0, k: int = 4):
    """Train chapter 6.3's dual encoder and rank a gallery of new single-object scenes for
    ``query``: ``(images (k, 3, 32, 32), similarities (k,))``, best first."""
    import mmlib
    from mmlib.data.scenes import make_scenes
    from mmlib.data.tokenizer import Tokenizer
    from mmlib.training.finetune import predict
    from mmlib.training.pretrain import pretrain_dual_encoder

    mmlib.seed_everything(seed)
    pairs = make_scenes(4000, seed=1, num_objects=1)
    tokenizer = Tokenizer.from_texts(pairs.captions)
    dual, _ = pretrain_dual_encoder(
        pairs.images,
        pairs.captions,
        tokenizer,
        dim=64,
        width=4,
        steps=steps,
        batch_size=64,
        lr=5e-3,
        grad_clip=1.0,
        seed=seed,
        progress=False,
    )
    gallery = make_scenes(500, seed=2, num_objects=1)
    image_emb = predict(dual.encode_images, gallery.images)  # (500, 64), unit length
    ids, lengths = tokenizer.encode_batch([query])
    with torch.no_grad():
        query_emb = dual.encode_texts(ids, lengths).cpu()  # (1, 64)
    similarity = (query_emb @ image_emb.T).squeeze(0)  # (500,)
    best = similarity.topk(k).indices
    return gallery.images[best], similarity[best]


def generate(prompt: str, steps: int, seed: int = 0, n: int = 4) -> torch.Tensor:
    """Train chapter 6.2's flow-matching denoiser on centred single objects (without the pairs
    of ``HELD_OUT``) and draw ``n`` pictures of ``prompt``: ``(n, 3, 16, 16)`` in [0, 1]."""
    import mmlib
    from mmlib.data.scenes import centre_objects, make_scenes
    from mmlib.data.tokenizer import Tokenizer
    from mmlib.data.world import Combinations
    from mmlib.models.flow import FlowDenoiser, flow_loss, sample
    from mmlib.training.batches import TensorBatches
    from mmlib.training.loop import train

    mmlib.seed_everything(seed)
    scenes = centre_objects(
        make_scenes(
            4096, seed=1, num_objects=1, exclude=Combinations(("shape", "colour"), HELD_OUT)
        )
    )
    tokenizer = Tokenizer.from_texts(scenes.captions + [prompt])
    pixels = scenes.images.flatten(1) * 2 - 1  # (4096, 768) in [-1, 1]
    words = tokenizer.bag_of_words(scenes.captions)
    denoiser = FlowDenoiser(pixels.shape[1], tokenizer.vocab_size, hidden=256, depth=3)
    noise = torch.Generator().manual_seed(seed)
    train(
        denoiser,
        lambda model, batch: flow_loss(model, *batch, drop_prob=0.1, generator=noise),
        TensorBatches(pixels, words, batch_size=128, seed=seed),
        steps=steps,
        lr=2e-3,
        seed=seed,
        progress=False,
    )
    denoiser.eval()
    text = tokenizer.bag_of_words([prompt] * n)
    noise = torch.Generator().manual_seed(seed)
    out = sample(denoiser, text, steps=16, scale=2.0, clip=(-1.0, 1.0), generator=noise)
    return ((out + 1) / 2).view(n, 3, 16, 16)


def draw(scenes, retrieved, similarities, generated):
    """The figure: three panels of 2 x 2 pictures, each with a caption of 8 pt or more at the
    page's width (the figure is 7.5 in wide)."""
    import matplotlib.pyplot as plt

    from mmlib.book.plotting import use_book_style

    use_book_style()
    fig = plt.figure(figsize=(7.5, 3.3), layout="constrained")
    panels = fig.subfigures(1, 3)
    titles = (
        "The data: generated scenes\nand their captions",
        f'Search (6.3): "{QUERY}"\nthe gallery\'s top 4',
        f'Generation (6.2): "{PROMPT}"\n(a pair never seen in training)',
    )
    pictures = (
        list(zip(scenes.images[:4], scenes.captions[:4], strict=True)),
        [
            (im, f"similarity {s:.2f}")
            for im, s in zip(retrieved, similarities.tolist(), strict=True)
        ],
        [(im, f"sample {i + 1}") for i, im in enumerate(generated)],
    )
    for panel, title, items in zip(panels, titles, pictures, strict=True):
        panel.suptitle(title, fontsize=9)
        for ax, (image, caption) in zip(panel.subplots(2, 2).flat, items, strict=True):
            ax.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
            ax.set_xlabel(caption, fontsize=8, wrap=True)
            ax.set_xticks([])
            ax.set_yticks([])
    return fig


def write(out: Path = ASSETS / "landing.png", quick: bool = False) -> Path:
    """Train, draw and save the figure to ``out``; ``quick`` trains for a few steps only (for
    tests: the pictures then show little)."""
    from mmlib.data.scenes import make_scenes

    scenes = make_scenes(8, seed=0, num_objects=2)
    retrieved, similarities = search(QUERY, steps=5 if quick else 500)
    generated = generate(PROMPT, steps=5 if quick else 400)
    fig = draw(scenes, retrieved, similarities, generated)
    note = f"{COMMAND}{' (quick)' if quick else ''}: the book's own code, seed 0"
    fig.savefig(out, dpi=120, metadata={"Software": note})
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ASSETS / "landing.png")
    parser.add_argument("--quick", action="store_true", help="a few training steps (tests)")
    args = parser.parse_args(argv)
    print(f"wrote {write(args.out, args.quick)}")


if __name__ == "__main__":
    main()
