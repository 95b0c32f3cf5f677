"""Export the book's trained models for the website's live widgets (ONNX Runtime Web).

Torch does not run in a browser, but a small model exported to ONNX runs in any browser with
ONNX Runtime Web (WebAssembly). ``make widgets`` (``python -m tools.web_export``) trains each
widget's model with its chapter's own cells, under the page's seed 0: the cells of the chapter
above the widget's ``<div class="mm-widget" data-widget="...">`` run in a kernel (as
``tools/run_notes.py`` runs a run-notes box), then an export cell hands the trained model to
this module. What a widget needs goes to ``book/assets/widgets/<name>/``, which the site serves
as ``_static/widgets/<name>/`` (the folder is built, not committed):

- search (chapter 6.3): the text encoder as ONNX, the tokenizer's vocabulary, the embeddings of
  the first :data:`GALLERY` images of the page's search index with the images themselves as one
  PNG, their captions, and ``reference.json``: PyTorch's token ids, embedding and top 8 for
  :data:`QUERIES`, which ``tests/site/test_widgets.py`` compares with what the browser computes.
- generate (chapter 6.2): the flow denoiser and the judge as ONNX, the vocabulary, what the
  sampler and the judge's abstain rule need (``meta.json``), and ``reference.json``: PyTorch's
  denoiser outputs for fixed inputs, and its samples and the judge's readings for fixed captions
  and seeds, drawn from the browser's own noise (:func:`browser_noise`).
- ask (chapter 6.1): the dialogue model's projector and GPT as ONNX (region features and a
  prompt -> the next token's logits), the region features and images of a few test scenes with
  their questions and captions, and ``reference.json``: PyTorch's prompt ids, next-token logits
  and greedy answers for the scenes' captions, questions and follow-ups.

The export checks the ONNX model against PyTorch with onnxruntime before it writes anything the
site uses.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import re
import shutil
import sys
import time
import warnings
from pathlib import Path

import nbformat
import torch

from tools.run_notes import commit, execute_above

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "book" / "assets" / "widgets"

#: Images of the search widget's gallery: the first of the page's 10,000-image index.
GALLERY = 3000
#: Largest difference allowed between an ONNX Runtime embedding and PyTorch's.
TOLERANCE = 1e-5
#: Queries whose results the browser must reproduce: the page's five, captions of every kind,
#: held-out pairs, and text the tokenizer must treat as Python does (case, punctuation, unknown
#: words, non-ASCII letters).
QUERIES = [
    "a small yellow triangle at the top",
    "a large blue square at the bottom",
    "a small purple circle on the left",
    "a red circle",
    "a purple circle",
    "a large green circle",
    "a small red square on the right",
    "a large orange triangle in the middle",
    "a small blue circle at the top",
    "a large purple square",
    "a yellow square",
    "a green triangle on the left",
    "an orange circle at the bottom",
    "A LARGE Red Triangle!",
    "blue, small, square",
    "square",
    "a small zebra circle",
    "a café-coloured circle",
    "the big red thing near the top",
    "a large  blue   triangle on the right",
]

_WIDGET = re.compile(r'<div class="mm-widget" data-widget="(\w+)"')


def widget_cell(nb, name: str) -> int:
    """The index of the markdown cell that holds widget ``name``'s ``<div>``."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and name in _WIDGET.findall(cell.source):
            return index
    raise ValueError(f'no cell holds <div class="mm-widget" data-widget="{name}">')


# ---------------------------------------------------------------- search (chapter 6.3)
def export_search(dual, tokenizer, scenes, index, out: Path) -> dict:
    """Write the search widget's files to ``out``: ``dual`` (a trained DualEncoder), its
    ``tokenizer``, the index ``scenes`` and their unit-length embeddings ``index (N, D)``.
    Returns the sizes written (bytes per file)."""
    import numpy as np
    import onnxruntime

    dual = dual.cpu().eval()
    out.mkdir(parents=True, exist_ok=True)
    gallery = index[:GALLERY].float().contiguous()  # (G, D)
    encoder = TextTower(dual).eval()
    onnx_path = out / "text_encoder.onnx"
    example = torch.tensor([tokenizer.encode("a small red circle")])
    words = torch.export.Dim("words", min=1, max=64)
    _export_onnx(encoder, (example,), onnx_path, ["tokens"], ["text_vector"], ({1: words},))
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    reference = {"queries": []}
    for query in QUERIES:
        ids = tokenizer.encode(query)
        tokens = torch.tensor([ids])
        with torch.no_grad():
            vector = encoder(tokens)[0]  # (D,)
        runtime = session.run(None, {"tokens": tokens.numpy()})[0][0]
        gap = float(np.abs(runtime - vector.numpy()).max())
        if gap > TOLERANCE:
            raise SystemExit(f"ONNX Runtime differs from PyTorch by {gap:.2e} on {query!r}")
        similarity = gallery @ vector  # (G,)
        top = similarity.topk(8)
        reference["queries"].append(
            {
                "query": query,
                "ids": ids,
                "vector": vector.tolist(),
                "top8": top.indices.tolist(),
                "top8_similarity": top.values.tolist(),
                "ninth_similarity": float(similarity.topk(9).values[-1]),
            }
        )
    columns = 50
    files = {
        "text_encoder.onnx": onnx_path.read_bytes(),
        "gallery.f32": gallery.numpy().astype("<f4").tobytes(),
        "gallery.png": _sheet_png(scenes.images[:GALLERY], columns),
        "vocab.json": _vocab_json(tokenizer),
        "captions.json": _json(scenes.captions[:GALLERY]),
        "reference.json": _json(reference),
        "meta.json": _json(
            {
                "count": len(gallery),
                "dim": gallery.shape[1],
                "columns": columns,
                "tile": scenes.images.shape[-1],
                "commit": commit(),
                "chapter": "chapters/06_3_search.ipynb",
            }
        ),
    }
    for name, data in files.items():
        (out / name).write_bytes(data)
    return {name: len(data) for name, data in files.items()}


def _export_onnx(
    model: torch.nn.Module,
    examples: tuple[torch.Tensor, ...],
    path: Path,
    inputs: list[str],
    outputs: list[str],
    dynamic: tuple[dict[int, object], ...],
) -> None:
    """``model`` to one ONNX file (the weights inside), the dimensions in ``dynamic`` free."""
    with warnings.catch_warnings():  # torch.export's notes on GRU internals, not ours to fix
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            examples,
            path,
            input_names=inputs,
            output_names=outputs,
            dynamic_shapes=dynamic,
            dynamo=True,
            external_data=False,
            verbose=False,
        )


class TextTower(torch.nn.Module):
    """``tokens (1, T)`` -> the unit-length text embedding ``(1, D)``: what a query needs."""

    def __init__(self, dual):
        super().__init__()
        self.dual = dual

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.dual.encode_texts(tokens)


# ---------------------------------------------------------------- generate (chapter 6.2)
#: What the generation widget's sampler does, as the page's cells call ``sample``.
SAMPLER = {"steps": 16, "scale": 2.0, "clip": [-1.0, 1.0], "samples": 4}
#: Seeds of the reference samples: each of :func:`reference_captions` at each seed.
GENERATE_SEEDS = [0, 1]


def reference_captions(captions: list[str], held_out: list[bool]) -> list[str]:
    """The captions of the reference samples: the first and last seen caption and held-out
    caption of the page, then the first held-out one as a reader might type it (capitals,
    a comma and a word the tokenizer does not know)."""
    seen = [c for c, h in zip(captions, held_out, strict=True) if not h]
    held = [c for c, h in zip(captions, held_out, strict=True) if h]
    if not seen or not held:
        raise ValueError("the page's captions must include seen and held-out ones")
    return [seen[0], seen[-1], held[0], held[-1], held[0].upper() + ", please"]


def browser_noise(seed: int, count: int) -> torch.Tensor:
    """The widget's standard normal noise: ``count`` float32 numbers from the seed, as
    ``book/assets/mmwidgets.js`` draws them (mulberry32, then Box-Muller pairs). PyTorch's own
    generator cannot run in a browser, so both sides use this small one."""
    mask = 0xFFFFFFFF
    state = seed & mask

    def uniform() -> float:  # mulberry32 (Tommy Ettinger), in unsigned 32-bit arithmetic
        nonlocal state
        state = (state + 0x6D2B79F5) & mask
        t = ((state ^ (state >> 15)) * (1 | state)) & mask
        t = ((t + (((t ^ (t >> 7)) * (61 | t)) & mask)) & mask) ^ t
        return ((t ^ (t >> 14)) & mask) / 4294967296

    values = []
    while len(values) < count:
        radius = math.sqrt(-2.0 * math.log(1.0 - uniform()))  # 1 - u lies in (0, 1]
        angle = 2.0 * math.pi * uniform()
        values += [radius * math.cos(angle), radius * math.sin(angle)]
    return torch.tensor(values[:count], dtype=torch.float32)


class JudgeLogits(torch.nn.Module):
    """``images (B, 3, S, S)`` -> the judge's logits, one tensor per attribute."""

    def __init__(self, judge):
        super().__init__()
        self.judge = judge

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits = self.judge(images)
        return tuple(logits[name] for name in self.judge.attributes)


def judge_reads(judge, images: torch.Tensor) -> list[dict]:
    """What ``judge`` reads in ``images (B, 3, S, S)`` in [0, 1]: per image the attribute
    indices, and whether it abstains (the page's abstain rule)."""
    read = judge.predict(images).tolist()
    abstains = judge.abstains(images).tolist()
    return [{"read": r, "abstains": a} for r, a in zip(read, abstains, strict=True)]


def export_generate(denoiser, tokenizer, judge, captions, held_out, out: Path) -> dict:
    """Write the generation widget's files to ``out``: ``denoiser`` (a trained FlowDenoiser on
    16x16 pixels in [-1, 1], conditioned on ``tokenizer.bag_of_words``), the page's calibrated
    ``judge``, and the page's ``captions`` with ``held_out`` (a bool per caption) for the
    widget's list of examples. Returns the sizes written (bytes per file)."""
    import numpy as np
    import onnxruntime

    from mmlib.data.tokenizer import Tokenizer
    from mmlib.data.world import ATTRIBUTES
    from mmlib.models.flow import MIN_GAP, sample

    denoiser, judge = denoiser.cpu().eval(), judge.cpu().eval()
    out.mkdir(parents=True, exist_ok=True)
    data_dim, vocab = denoiser.data_dim, tokenizer.vocab_size
    side = judge.image_size
    batch = torch.export.Dim("batch", min=1, max=256)
    rows = torch.Generator().manual_seed(0)
    x_t = torch.randn(4, data_dim, generator=rows).round(decimals=6)  # as reference.json keeps it
    t = torch.tensor([0.0, 0.3, 0.7, 0.95])
    cond = tokenizer.bag_of_words([captions[0], captions[-1], captions[1], "a red zebra"])
    drop = torch.tensor([False, False, True, False])
    _export_onnx(
        denoiser,
        (x_t, t, cond, drop),
        out / "denoiser.onnx",
        ["x_t", "t", "cond", "drop"],
        ["x1_hat"],
        ({0: batch}, {0: batch}, {0: batch}, {0: batch}),
    )
    images = torch.rand(3, 3, side, side, generator=rows)
    _export_onnx(
        JudgeLogits(judge),
        (images,),
        out / "judge.onnx",
        ["images"],
        list(judge.attributes),
        ({0: batch},),
    )
    with torch.no_grad():
        expected = denoiser(x_t, t, cond, drop)
        logits = JudgeLogits(judge)(images)
    runs = {
        name: onnxruntime.InferenceSession(str(out / name), providers=["CPUExecutionProvider"])
        for name in ("denoiser.onnx", "judge.onnx")
    }
    feeds = {"x_t": x_t, "t": t, "cond": cond, "drop": drop}
    gaps = []
    for rows in (slice(None), slice(0, 3)):  # the batch size is free (the widget runs 8)
        got = runs["denoiser.onnx"].run(None, {k: v[rows].numpy() for k, v in feeds.items()})
        gaps.append(float(np.abs(got[0] - expected[rows].numpy()).max()))
        got = runs["judge.onnx"].run(None, {"images": images[rows].numpy()})
        gaps += [float(np.abs(g - e[rows].numpy()).max()) for g, e in zip(got, logits, strict=True)]
    if max(gaps) > TOLERANCE:
        raise SystemExit(f"ONNX Runtime differs from PyTorch by {max(gaps):.2e} (generate)")

    n, shown = SAMPLER["samples"], dict(zip(captions, held_out.tolist(), strict=True))
    reference = {
        "denoise": {
            **{k: _rounded(v) for k, v in feeds.items()},
            "x1_hat": _rounded(expected),
        },
        "samples": [],
    }
    for caption in reference_captions(captions, held_out.tolist()):
        words = tokenizer.bag_of_words([caption] * n)
        for seed in GENERATE_SEEDS:
            noise = browser_noise(seed, n * data_dim).view(n, data_dim)
            clip = tuple(SAMPLER["clip"])
            x = sample(denoiser, words, SAMPLER["steps"], SAMPLER["scale"], clip=clip, noise=noise)
            pictures = ((x + 1) / 2).clamp(0, 1).view(n, 3, side, side)
            key = Tokenizer.normalise(caption)
            reference["samples"].append(
                {
                    "caption": caption,
                    "seed": seed,
                    "held_out": shown.get(key),  # None: not one of the page's 36 captions
                    "noise_head": noise[0, :8].tolist(),
                    "images": _rounded(pictures.flatten(1)),
                    "judge": judge_reads(judge, pictures),
                }
            )
    files = {
        "denoiser.onnx": (out / "denoiser.onnx").read_bytes(),
        "judge.onnx": (out / "judge.onnx").read_bytes(),
        "vocab.json": _vocab_json(tokenizer),
        "reference.json": _json(reference),
        "meta.json": _json(
            {
                **SAMPLER,
                "min_gap": MIN_GAP,
                "data_dim": data_dim,
                "image": [3, side, side],
                "vocab_size": vocab,
                "attributes": {name: list(ATTRIBUTES[name]) for name in judge.attributes},
                "judge": {"threshold": judge.threshold, "centres": judge.centres.tolist()},
                "captions": [{"caption": c, "held_out": h} for c, h in shown.items()],
                "commit": commit(),
                "chapter": "chapters/06_2_image_generation.ipynb",
            }
        ),
    }
    for name, data in files.items():
        (out / name).write_bytes(data)
    return {name: len(data) for name, data in files.items()}


# ---------------------------------------------------------------- ask (chapter 6.1)
#: Test scenes the question widget shows, from each of the page's two test sets.
ASK_SCENES = 8
#: New tokens the widget (and the reference) lets the model write: a caption, an answer.
ASK_NEW_TOKENS = {"caption": 12, "answer": 4}


class NextToken(torch.nn.Module):
    """Region features ``(1, 4, D)`` and a prompt ``(1, T)`` -> the next token's logits
    ``(1, V)``: one step of :meth:`VisualDialogueModel.answer_features`'s greedy decoding."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.model.talk(features, tokens)[0][:, -1]


def _concat(first, second):
    """Two batches of scenes as one, ``first``'s then ``second``'s."""
    import dataclasses

    joined = {}
    for field in dataclasses.fields(first):
        a, b = getattr(first, field.name), getattr(second, field.name)
        joined[field.name] = torch.cat([a, b]) if isinstance(a, torch.Tensor) else a + b
    return type(first)(**joined)


def ask_prompt(tokenizer, history, question: str, max_tokens: int):
    """The prompt's ids (earlier turns, the question, ``<bos>``), how many new tokens the model
    may write (:data:`ASK_NEW_TOKENS`, fewer where its context of ``max_tokens`` runs out) and
    the turns kept: the oldest are left out until the answer has room for a token."""
    from mmlib.data.dialogues import dialogue_ids

    wanted = ASK_NEW_TOKENS["caption" if question.strip() == "" else "answer"]
    history = list(history)
    while True:
        ids = dialogue_ids(tokenizer, history)[0] + tokenizer.encode(question) + [tokenizer.bos_id]
        room = max_tokens + 1 - len(ids)
        if room >= 1 or not history:
            return ids, min(wanted, room), history
        history = history[1:]


def export_ask(model, tokenizer, seen_scenes, held_scenes, out: Path) -> dict:
    """Write the question widget's files to ``out``: ``model`` (a trained VisualDialogueModel),
    its ``tokenizer``, and the page's test scenes of seen and held-out combinations, of which
    the first :data:`ASK_SCENES` of each are shown. Returns the sizes written (bytes per file)."""
    import numpy as np
    import onnxruntime

    from mmlib.data.tasks import canonical_captions, follow_ups

    model = model.cpu().eval()
    out.mkdir(parents=True, exist_ok=True)
    scenes = _concat(seen_scenes[:ASK_SCENES], held_scenes[:ASK_SCENES])
    held_out = [False] * ASK_SCENES + [True] * ASK_SCENES
    features = model.region_features(scenes.images)  # (S, 4, D)
    step = NextToken(model).eval()
    tokens = torch.export.Dim("tokens", min=1, max=model.max_tokens)
    example = torch.tensor([tokenizer.encode("what colour is the circle?") + [tokenizer.bos_id]])
    _export_onnx(
        step, (features[:1], example), out / "next_token.onnx", ["features", "tokens"],
        ["logits"], ({}, {1: tokens}),
    )  # fmt: skip
    session = onnxruntime.InferenceSession(
        str(out / "next_token.onnx"), providers=["CPUExecutionProvider"]
    )
    captions = canonical_captions(scenes)
    follow_index, follow_dialogues = follow_ups(scenes, seed=0)
    follow = {}  # scene -> its first two-turn dialogue
    for k, talk in zip(follow_index.tolist(), follow_dialogues, strict=True):
        follow.setdefault(k, talk)
    reference = []
    for k in range(len(scenes)):
        asks = [([], ""), *[([], q) for q, _ in scenes.qa[k][:3]]]
        if k in follow:
            (q1, _), (q2, _) = follow[k]
            first = model.answer_features(features[k : k + 1], [q1], tokenizer, max_new_tokens=4)
            asks.append(([(q1, first[0])], q2))
        for history, question in asks:
            ids, new, history = ask_prompt(tokenizer, history, question, model.max_tokens)
            if new < 1:
                raise SystemExit(f"the question {question!r} leaves no room for an answer")
            said = model.answer_features(
                features[k : k + 1], [question], tokenizer, [history], max_new_tokens=new
            )[0]
            prompt = torch.tensor([ids])
            with torch.no_grad():
                logits = step(features[k : k + 1], prompt)[0]
            got = session.run(
                None, {"features": features[k : k + 1].numpy(), "tokens": prompt.numpy()}
            )
            gap = float(np.abs(got[0][0] - logits.numpy()).max())
            if gap > TOLERANCE:
                raise SystemExit(f"ONNX Runtime differs from PyTorch by {gap:.2e} (ask)")
            reference.append(
                {
                    "scene": k,
                    "history": history,
                    "question": question,
                    "ids": ids,
                    "new_tokens": new,
                    "logits": _rounded(logits),
                    "answer": said,
                }
            )
    files = {
        "next_token.onnx": (out / "next_token.onnx").read_bytes(),
        "features.f32": features.numpy().astype("<f4").tobytes(),
        "scenes.png": _sheet_png(scenes.images, columns=len(scenes)),  # one row of tiles
        "vocab.json": _vocab_json(tokenizer),
        "reference.json": _json(reference),
        "meta.json": _json(
            {
                "scenes": [
                    {
                        "held_out": h,
                        "caption": c,
                        "qa": [list(pair) for pair in qa],
                        "follow_up": [list(pair) for pair in follow.get(k, [])],
                    }
                    for k, (h, c, qa) in enumerate(zip(held_out, captions, scenes.qa, strict=True))
                ],
                "tile": scenes.images.shape[-1],
                "features": list(features.shape[1:]),
                "max_tokens": model.max_tokens,
                "new_tokens": ASK_NEW_TOKENS,
                "commit": commit(),
                "chapter": "chapters/06_1_dialogue.ipynb",
            }
        ),
    }
    for name, data in files.items():
        (out / name).write_bytes(data)
    return {name: len(data) for name, data in files.items()}


def _vocab_json(tokenizer) -> bytes:
    """The tokenizer for the browser: its words in id order and the special tokens' ids (the
    split into words is mmwidgets.js's, the same as mmlib.data.tokenizer.split_words)."""
    special = {
        f"{name}_id": getattr(tokenizer, f"{name}_id") for name in ("pad", "bos", "eos", "unk")
    }
    return _json({"tokens": list(tokenizer.tokens), **special})


def _sheet_png(images: torch.Tensor, columns: int) -> bytes:
    """Images ``(N, 3, S, S)`` in [0, 1] as one PNG, ``columns`` tiles to a row (the widgets cut
    tile ``k`` out at row ``k // columns``, column ``k % columns``)."""
    from PIL import Image
    from torchvision.utils import make_grid

    pixels = (images.clamp(0, 1) * 255).round().byte()
    sheet = make_grid(pixels, nrow=columns, padding=0)  # (3, rows * S, columns * S), black fill
    png = io.BytesIO()
    Image.fromarray(sheet.permute(1, 2, 0).numpy()).save(png, format="PNG", optimize=True)
    return png.getvalue()


def _rounded(values: torch.Tensor):
    """A tensor as nested lists, floats to 6 decimals (a hundredth of the tests' 1e-4)."""
    if values.is_floating_point():
        return torch.round(values.double(), decimals=6).tolist()
    return values.tolist()


def _json(value) -> bytes:
    return (json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


WIDGETS = {
    # name: (chapter, the export cell run after the cells above the widget)
    "ask": (
        "chapters/06_1_dialogue.ipynb",
        "from tools.web_export import export_ask\n"
        "sizes = export_ask(model, tokenizer, test_seen, test_held, OUT)",
    ),
    "generate": (
        "chapters/06_2_image_generation.ipynb",
        "from tools.web_export import export_generate\n"
        "sizes = export_generate(denoiser, tokenizer, judge, captions, is_held_out, OUT)",
    ),
    "search": (
        "chapters/06_3_search.ipynb",
        "from tools.web_export import export_search\n"
        "sizes = export_search(dual, tokenizer, index_scenes, index, OUT)",
    ),
}


def export(name: str, out_root: Path = ASSETS, kernel: str = "mmbook-cpu") -> dict:
    """Train widget ``name``'s model with its chapter's cells and export it; the sizes."""
    chapter, code = WIDGETS[name]
    path = ROOT / chapter
    nb = nbformat.read(path, as_version=4)
    out = out_root / name
    tmp = out_root / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    setup = (
        f"import sys\nfrom pathlib import Path\n\nsys.path.insert(0, {str(ROOT)!r})\n"
        f"OUT = Path({str(tmp)!r})"
    )
    sizes = execute_above(nb, path, widget_cell(nb, name), [setup, code], 0, kernel, "sizes")
    if not sizes:
        raise SystemExit(f"{chapter}: the export of widget {name!r} wrote nothing")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)  # the site never sees a half-written folder
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=sorted(WIDGETS), help="widgets to export")
    parser.add_argument("--out", type=Path, default=ASSETS)
    parser.add_argument("--kernel", default="mmbook-cpu")
    args = parser.parse_args(argv)
    for name in args.names:
        if name not in WIDGETS:
            parser.error(f"no widget {name!r}: {sorted(WIDGETS)}")
        start = time.perf_counter()
        sizes = export(name, args.out, args.kernel)
        total = sum(sizes.values())
        print(f"widget {name}: {total / 1e6:.2f} MB in {time.perf_counter() - start:.0f} s")
        for file, size in sorted(sizes.items()):
            print(f"  {file}: {size / 1e3:.1f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
