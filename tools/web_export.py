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

The export checks the ONNX model against PyTorch with onnxruntime before it writes anything the
site uses.
"""

from __future__ import annotations

import argparse
import io
import json
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
    from PIL import Image

    from mmlib.data.tokenizer import _WORD

    dual = dual.cpu().eval()
    out.mkdir(parents=True, exist_ok=True)
    gallery = index[:GALLERY].float().contiguous()  # (G, D)
    encoder = TextTower(dual).eval()
    onnx_path = out / "text_encoder.onnx"
    example = torch.tensor([tokenizer.encode("a small red circle")])
    with warnings.catch_warnings():  # torch.export's notes on GRU internals, not ours to fix
        warnings.simplefilter("ignore")
        _export_onnx(encoder, example, onnx_path)
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
    images = (scenes.images[:GALLERY].clamp(0, 1) * 255).round().byte()  # (G, 3, H, W)
    columns, size = 50, images.shape[-1]
    rows = -(-len(images) // columns)
    sheet = torch.zeros(3, rows * size, columns * size, dtype=torch.uint8)
    for k, image in enumerate(images):
        r, c = divmod(k, columns)
        sheet[:, r * size : (r + 1) * size, c * size : (c + 1) * size] = image
    png = io.BytesIO()
    Image.fromarray(sheet.permute(1, 2, 0).numpy()).save(png, format="PNG", optimize=True)
    files = {
        "text_encoder.onnx": onnx_path.read_bytes(),
        "gallery.f32": gallery.numpy().astype("<f4").tobytes(),
        "gallery.png": png.getvalue(),
        "vocab.json": _json(
            {"tokens": tokenizer.tokens, "unk_id": tokenizer.unk_id, "pattern": _WORD.pattern}
        ),
        "captions.json": _json(scenes.captions[:GALLERY]),
        "reference.json": _json(reference),
        "meta.json": _json(
            {
                "count": len(gallery),
                "dim": gallery.shape[1],
                "columns": columns,
                "tile": size,
                "commit": commit(),
                "chapter": "chapters/06_3_search.ipynb",
            }
        ),
    }
    for name, data in files.items():
        (out / name).write_bytes(data)
    return {name: len(data) for name, data in files.items()}


def _export_onnx(model: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    """``model (1, T) tokens -> (1, D)`` to one ONNX file, the number of words free."""
    torch.onnx.export(
        model,
        (example,),
        path,
        input_names=["tokens"],
        output_names=["text_vector"],
        dynamic_shapes={"tokens": {1: torch.export.Dim("words", min=1, max=64)}},
        dynamo=True,
        external_data=False,  # one file: the weights inside the model
        verbose=False,
    )


class TextTower(torch.nn.Module):
    """``tokens (1, T)`` -> the unit-length text embedding ``(1, D)``: what a query needs."""

    def __init__(self, dual):
        super().__init__()
        self.dual = dual

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.dual.encode_texts(tokens)


def _json(value) -> bytes:
    return (json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


WIDGETS = {
    # name: (chapter, the export cell run after the cells above the widget)
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
