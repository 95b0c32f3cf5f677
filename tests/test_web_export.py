"""tools/web_export.py: what the live widgets load, checked without a browser."""

import json

import nbformat
import numpy as np
import pytest
import torch

from mmlib.data.scenes import make_scenes
from mmlib.data.tokenizer import Tokenizer
from mmlib.models.contrastive import DualEncoder
from mmlib.training.finetune import predict
from tools.web_export import QUERIES, ROOT, WIDGETS, export_search, widget_cell

onnxruntime = pytest.importorskip("onnxruntime")


def test_each_widget_has_its_cell_in_its_chapter():
    for name, (chapter, _) in WIDGETS.items():
        nb = nbformat.read(ROOT / chapter, as_version=4)
        cell = widget_cell(nb, name)
        assert nb.cells[cell].cell_type == "markdown"
        assert any(c.cell_type == "code" for c in nb.cells[:cell])  # the cells that train it


def test_widget_cell_names_the_missing_widget():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("no widget here")])
    with pytest.raises(ValueError, match='data-widget="search"'):
        widget_cell(nb, "search")


def test_the_queries_cover_what_the_browser_tokenizer_must_match():
    assert len(QUERIES) >= 20
    assert any(q != q.lower() for q in QUERIES)  # capitals
    assert any(not q.isascii() for q in QUERIES)  # a non-ASCII letter
    assert any("," in q or "!" in q for q in QUERIES)  # punctuation
    assert any("  " in q for q in QUERIES)  # runs of spaces


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    scenes = make_scenes(60, seed=1, num_objects=1)
    tokenizer = Tokenizer.from_texts(scenes.captions)
    dual = DualEncoder(tokenizer.vocab_size, dim=16, width=4).eval()
    index = predict(dual.encode_images, scenes.images)
    out = tmp_path_factory.mktemp("search")
    sizes = export_search(dual, tokenizer, scenes, index, out)
    return out, sizes, dual, tokenizer, index


def test_export_writes_what_the_search_widget_loads(exported):
    out, sizes, _, tokenizer, index = exported
    assert set(sizes) == {p.name for p in out.iterdir()}
    meta = json.loads((out / "meta.json").read_text())
    assert meta["count"] == len(index) and meta["dim"] == index.shape[1]
    gallery = np.fromfile(out / "gallery.f32", dtype="<f4").reshape(meta["count"], meta["dim"])
    assert np.array_equal(gallery, index.numpy())
    vocab = json.loads((out / "vocab.json").read_text())
    assert vocab["tokens"] == list(tokenizer.tokens) and vocab["unk_id"] == tokenizer.unk_id
    assert len(json.loads((out / "captions.json").read_text())) == meta["count"]


def test_onnx_text_encoder_is_pytorchs_and_the_reference_is_its_top_8(exported):
    out, _, dual, tokenizer, index = exported
    session = onnxruntime.InferenceSession(str(out / "text_encoder.onnx"))
    reference = json.loads((out / "reference.json").read_text())["queries"]
    assert [case["query"] for case in reference] == QUERIES
    for case in reference:
        assert case["ids"] == tokenizer.encode(case["query"])
        tokens = torch.tensor([case["ids"]])
        with torch.no_grad():
            expected = dual.encode_texts(tokens)[0]
        got = session.run(None, {"tokens": tokens.numpy()})[0][0]
        assert np.abs(got - expected.numpy()).max() < 1e-5
        assert torch.allclose(torch.tensor(case["vector"]), expected)
        assert case["top8"] == (index @ expected).topk(8).indices.tolist()
