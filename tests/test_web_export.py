"""tools/web_export.py: what the live widgets load, checked without a browser."""

import json

import nbformat
import numpy as np
import pytest
import torch

from mmlib.data.scenes import make_scenes
from mmlib.data.tasks import canonical_captions
from mmlib.data.tokenizer import Tokenizer
from mmlib.data.world import COLOURS, SHAPES, SIZES
from mmlib.models.contrastive import DualEncoder
from mmlib.models.dialogue import VisualDialogueModel
from mmlib.models.flow import FlowDenoiser, sample
from mmlib.models.judge import AttributeJudge
from mmlib.training.finetune import predict
from tools.web_export import (
    ASK_NEW_TOKENS,
    ASK_SCENES,
    GENERATE_SEEDS,
    QUERIES,
    ROOT,
    SAMPLER,
    WIDGETS,
    ask_prompt,
    browser_noise,
    export_ask,
    export_generate,
    export_search,
    reference_captions,
    widget_cell,
)

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


# ---------------------------------------------------------------- generate
def test_browser_noise_is_seeded_and_standard_normal():
    a, b = browser_noise(3, 20_001), browser_noise(3, 20_001)
    assert a.dtype == torch.float32 and a.shape == (20_001,) and torch.equal(a, b)
    assert not torch.equal(a[:100], browser_noise(4, 100))
    assert abs(float(a.mean())) < 0.03 and abs(float(a.std()) - 1) < 0.03
    assert torch.equal(browser_noise(3, 7), a[:7])  # a shorter draw is the start of a longer one


def test_reference_captions_need_seen_and_held_out_ones():
    captions = ["a small red circle", "a large blue square"]
    chosen = reference_captions(captions, [False, True])
    assert chosen[:4] == [captions[0], captions[0], captions[1], captions[1]]
    assert chosen[4] != chosen[4].lower()  # as a reader might type it
    with pytest.raises(ValueError, match="held-out"):
        reference_captions(captions, [False, False])


@pytest.fixture(scope="module")
def generate_export(tmp_path_factory):
    torch.manual_seed(0)
    objects = torch.cartesian_prod(torch.arange(3), torch.arange(6), torch.arange(2))
    captions = [f"a {SIZES[z]} {COLOURS[c]} {SHAPES[s]}" for s, c, z in objects.tolist()]
    tokenizer = Tokenizer.from_texts(captions)
    denoiser = FlowDenoiser(3 * 16 * 16, tokenizer.vocab_size, hidden=32, depth=2).eval()
    judge = AttributeJudge().eval()
    judge.centres, judge.threshold = torch.rand(len(COLOURS), 3), 0.3  # as calibrate() sets them
    held_out = torch.arange(len(captions)) % 5 == 0
    out = tmp_path_factory.mktemp("generate")
    sizes = export_generate(denoiser, tokenizer, judge, captions, held_out, out)
    return out, sizes, denoiser, tokenizer, judge, captions, held_out


def test_export_writes_what_the_generation_widget_loads(generate_export):
    out, sizes, denoiser, tokenizer, judge, captions, held_out = generate_export
    assert set(sizes) == {p.name for p in out.iterdir()}
    meta = json.loads((out / "meta.json").read_text())
    assert meta["data_dim"] == denoiser.data_dim and meta["vocab_size"] == tokenizer.vocab_size
    assert meta["image"] == [3, 16, 16] and list(meta["attributes"]) == list(judge.attributes)
    assert [c["caption"] for c in meta["captions"]] == captions
    assert [c["held_out"] for c in meta["captions"]] == held_out.tolist()
    assert meta["judge"]["threshold"] == judge.threshold
    assert {k: meta[k] for k in SAMPLER} == SAMPLER


def test_onnx_denoiser_and_judge_are_pytorchs_at_any_batch_size(generate_export):
    out, _, denoiser, tokenizer, judge, captions, _ = generate_export
    session = onnxruntime.InferenceSession(str(out / "denoiser.onnx"))
    for batch in (1, 8):
        x = torch.randn(batch, denoiser.data_dim)
        t, drop = torch.rand(batch), torch.arange(batch) % 2 == 1
        cond = tokenizer.bag_of_words(captions[:batch])
        with torch.no_grad():
            expected = denoiser(x, t, cond, drop)
        feeds = {"x_t": x, "t": t, "cond": cond, "drop": drop}
        got = session.run(None, {k: v.numpy() for k, v in feeds.items()})[0]
        assert np.abs(got - expected.numpy()).max() < 1e-5
    session = onnxruntime.InferenceSession(str(out / "judge.onnx"))
    images = torch.rand(5, 3, 16, 16)
    with torch.no_grad():
        expected = judge(images)
    got = session.run(None, {"images": images.numpy()})
    for name, logits in zip(judge.attributes, got, strict=True):
        assert np.abs(logits - expected[name].numpy()).max() < 1e-5


def test_reference_samples_are_pytorchs_from_the_browsers_noise(generate_export):
    out, _, denoiser, tokenizer, judge, captions, held_out = generate_export
    reference = json.loads((out / "reference.json").read_text())
    cases = reference["samples"]
    expected = reference_captions(captions, held_out.tolist())
    assert [(c["caption"], c["seed"]) for c in cases] == [
        (c, s) for c in expected for s in GENERATE_SEEDS
    ]
    assert {c["held_out"] for c in cases} == {False, True, None}  # None: not a page caption
    n = SAMPLER["samples"]
    for case in cases[:3]:
        noise = browser_noise(case["seed"], n * denoiser.data_dim).view(n, -1)
        assert torch.allclose(noise[0, :8], torch.tensor(case["noise_head"]))
        words = tokenizer.bag_of_words([case["caption"]] * n)
        x = sample(
            denoiser, words, SAMPLER["steps"], SAMPLER["scale"], clip=(-1.0, 1.0), noise=noise
        )
        images = ((x + 1) / 2).clamp(0, 1)
        assert torch.allclose(images, torch.tensor(case["images"]).float(), atol=1e-6)
        read = judge.predict(images.view(n, 3, 16, 16)).tolist()
        assert [r["read"] for r in case["judge"]] == read
    fixed = reference["denoise"]
    with torch.no_grad():
        x1_hat = denoiser(
            torch.tensor(fixed["x_t"]).float(),
            torch.tensor(fixed["t"]).float(),
            torch.tensor(fixed["cond"]).float(),
            torch.tensor(fixed["drop"]),
        )
    assert torch.allclose(x1_hat, torch.tensor(fixed["x1_hat"]).float(), atol=1e-5)


# ---------------------------------------------------------------- ask
def test_ask_prompt_is_the_chat_template_and_leaves_out_old_turns():
    tokenizer = Tokenizer.from_texts(["what colour is the circle?", "red and the square? blue"])
    ids, new, kept = ask_prompt(tokenizer, [], "what colour is the circle?", max_tokens=20)
    assert ids == tokenizer.encode("what colour is the circle?") + [tokenizer.bos_id]
    assert new == ASK_NEW_TOKENS["answer"] and kept == []
    _, new, _ = ask_prompt(tokenizer, [], "  ", max_tokens=20)
    assert new == ASK_NEW_TOKENS["caption"]
    turn = [("what colour is the circle?", "red")]
    ids, new, kept = ask_prompt(tokenizer, turn, "and the square?", max_tokens=20)
    q, a = (tokenizer.encode(t) for t in turn[0])
    assert ids[: len(q) + len(a) + 2] == q + [tokenizer.bos_id] + a + [tokenizer.eos_id]
    assert kept == turn and new == ASK_NEW_TOKENS["answer"]
    ids, new, kept = ask_prompt(tokenizer, turn, "and the square?", max_tokens=8)
    assert kept == [] and ids == tokenizer.encode("and the square?") + [tokenizer.bos_id]
    assert new == min(ASK_NEW_TOKENS["answer"], 8 + 1 - len(ids))


@pytest.fixture(scope="module")
def ask_export(tmp_path_factory):
    torch.manual_seed(0)
    seen, held = make_scenes(12, seed=2), make_scenes(12, seed=3)
    texts = [t for s in (seen, held) for qa in s.qa for pair in qa for t in pair]
    texts += canonical_captions(seen) + canonical_captions(held) + ["and the square?"]
    tokenizer = Tokenizer.from_texts(texts)
    model = VisualDialogueModel(tokenizer.vocab_size, max_tokens=20).eval()
    out = tmp_path_factory.mktemp("ask")
    sizes = export_ask(model, tokenizer, seen, held, out)
    return out, sizes, model, tokenizer, seen, held


def test_export_writes_what_the_question_widget_loads(ask_export):
    out, sizes, model, tokenizer, seen, held = ask_export
    assert set(sizes) == {p.name for p in out.iterdir()}
    meta = json.loads((out / "meta.json").read_text())
    assert [s["held_out"] for s in meta["scenes"]] == [False] * ASK_SCENES + [True] * ASK_SCENES
    assert meta["scenes"][ASK_SCENES]["caption"] == canonical_captions(held[:1])[0]
    assert meta["max_tokens"] == model.max_tokens and meta["new_tokens"] == ASK_NEW_TOKENS
    places, dim = meta["features"]
    features = np.fromfile(out / "features.f32", dtype="<f4").reshape(-1, places, dim)
    expected = model.region_features(
        torch.cat([seen.images[:ASK_SCENES], held.images[:ASK_SCENES]])
    )
    assert np.allclose(features, expected.numpy())


def test_onnx_step_and_reference_answers_are_pytorchs(ask_export):
    out, _, model, tokenizer, seen, held = ask_export
    session = onnxruntime.InferenceSession(str(out / "next_token.onnx"))
    features = np.fromfile(out / "features.f32", dtype="<f4").reshape(2 * ASK_SCENES, 4, -1)
    reference = json.loads((out / "reference.json").read_text())
    assert any(case["history"] for case in reference)  # follow-ups, after the model's answer
    for case in reference[:12]:
        scene = torch.from_numpy(features[case["scene"] : case["scene"] + 1].copy())
        prompt = torch.tensor([case["ids"]])
        with torch.no_grad():
            logits = model.talk(scene, prompt)[0][0, -1]
        got = session.run(None, {"features": scene.numpy(), "tokens": prompt.numpy()})[0][0]
        assert np.abs(got - logits.numpy()).max() < 1e-5
        assert np.allclose(case["logits"], logits.numpy(), atol=1e-5)
        said = model.answer_features(
            scene,
            [case["question"]],
            tokenizer,
            [case["history"]],
            max_new_tokens=case["new_tokens"],
        )
        assert said == [case["answer"]]


def test_sheet_png_puts_tile_k_at_row_k_div_columns_and_column_k_mod_columns():
    import io

    from PIL import Image

    from tools.web_export import _sheet_png

    images = torch.rand(7, 3, 4, 4)
    sheet = np.array(Image.open(io.BytesIO(_sheet_png(images, columns=3))))
    assert sheet.shape == (3 * 4, 3 * 4, 3)  # 3 rows of 3 tiles, the last row one tile
    pixels = (images.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    for k in range(7):
        r, c = divmod(k, 3)
        assert (sheet[r * 4 : (r + 1) * 4, c * 4 : (c + 1) * 4] == pixels[k]).all(), k
    assert (sheet[8:, 4:] == 0).all()  # the empty places stay black
