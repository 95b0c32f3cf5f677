// Live widgets: the book's trained models run in the reader's browser (html_js_files in
// _config.yml). A page asks for one with <div class="mm-widget" data-widget="NAME">, whose text
// is what a reader sees where the widget cannot run. The models are ONNX files exported from
// the chapters' own training runs (tools/web_export.py, `make widgets`); ONNX Runtime Web, copied
// from npm at build time, runs them in WebAssembly, offline. tests/site/test_widgets.py checks
// the browser's answers against PyTorch's.
(() => {
  "use strict";
  const STATIC = new URL(".", document.currentScript.src).href; // .../_static/
  const api = (window.mmWidgets = {});

  document.addEventListener("DOMContentLoaded", () => {
    for (const root of document.querySelectorAll(".mm-widget[data-widget]")) {
      const setup = { search: setupSearch }[root.dataset.widget];
      if (setup) setup(root);
    }
  });

  // ONNX Runtime Web, loaded once per page, only on pages with a widget.
  let runtime = null;
  function loadRuntime() {
    runtime ??= new Promise((resolve, reject) => {
      const tag = document.createElement("script");
      tag.src = `${STATIC}ort/ort.wasm.min.js`;
      tag.onload = () => {
        const ort = window.ort;
        ort.env.wasm.wasmPaths = `${STATIC}ort/`;
        ort.env.wasm.numThreads = 1; // no cross-origin isolation on a static site: one thread
        ort.env.logLevel = "error";
        resolve(ort);
      };
      tag.onerror = () => reject(new Error("ONNX Runtime Web did not load"));
      document.head.append(tag);
    });
    return runtime;
  }

  async function fetchOk(url) {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return response;
  }

  function element(tag, attributes = {}, text = "") {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    if (text) node.textContent = text;
    return node;
  }

  // Why a widget cannot run here ("" when its own text says it), or null. From a file:// page
  // the browser refuses to fetch the model, and the widget's text asks for `make serve`.
  function cannotRun() {
    if (typeof WebAssembly !== "object") return "This browser cannot run WebAssembly.";
    if (location.protocol === "file:") return "";
    return null;
  }

  // ------------------------------------------------------------ the tokenizer (mmlib.data.tokenizer)
  // Python's \w is a letter, a digit of any script, or "_"; \p{L}\p{N}_ is the same in JavaScript.
  const WORD = /[\p{L}\p{N}_]+|[^\p{L}\p{N}_\s]/gu;

  const vocabularies = new WeakMap(); // vocab.json -> Map(word -> id)
  function tokenize(vocab, text) {
    if (!vocabularies.has(vocab)) {
      vocabularies.set(vocab, new Map(vocab.tokens.map((token, id) => [token, id])));
    }
    const ids = vocabularies.get(vocab);
    return (text.toLowerCase().match(WORD) || []).map((word) => ids.get(word) ?? vocab.unk_id);
  }

  // ------------------------------------------------------------ search (chapter 6.3)
  function setupSearch(root) {
    const why = cannotRun();
    if (why !== null) {
      if (why) root.querySelector(".mm-fallback")?.append(` ${why}`);
      root.dataset.state = "unavailable";
      return;
    }
    const base = `${STATIC}widgets/search/`;
    const form = element("form", { class: "mm-live", role: "search" });
    const label = element("label", { for: "mm-search-query" }, "Caption to search for");
    const input = element("input", {
      id: "mm-search-query",
      type: "search",
      autocomplete: "off",
      spellcheck: "false",
      value: root.dataset.query || "a small purple circle on the left",
      disabled: "",
    });
    const button = element("button", { type: "submit", disabled: "" }, "Search");
    const status = element("p", { class: "mm-status", role: "status" }, "Loading the model…");
    const results = element("ol", { class: "mm-results", "aria-label": "The 8 closest images" });
    form.append(label, input, button);
    root.querySelector(".mm-fallback")?.setAttribute("hidden", "");
    root.append(form, status, results);
    root.dataset.state = "loading";

    const started = performance.now();
    const ready = (async () => {
      const [ort, meta, vocab, captions, gallery, sheet] = await Promise.all([
        loadRuntime(),
        fetchOk(`${base}meta.json`).then((r) => r.json()),
        fetchOk(`${base}vocab.json`).then((r) => r.json()),
        fetchOk(`${base}captions.json`).then((r) => r.json()),
        fetchOk(`${base}gallery.f32`).then((r) => r.arrayBuffer()),
        new Promise((resolve, reject) => {
          const image = new Image();
          image.onload = () => resolve(image);
          image.onerror = () => reject(new Error("gallery.png did not load"));
          image.src = `${base}gallery.png`;
        }),
      ]);
      const session = await ort.InferenceSession.create(`${base}text_encoder.onnx`, {
        executionProviders: ["wasm"],
      });
      return { ort, meta, vocab, captions, vectors: new Float32Array(gallery), sheet, session };
    })();

    let queue = Promise.resolve(); // one run of the session at a time
    async function embed(text) {
      const { ort, vocab, session } = await ready;
      const ids = tokenize(vocab, text);
      if (ids.length === 0) return null;
      const tokens = new ort.Tensor("int64", BigInt64Array.from(ids, BigInt), [1, ids.length]);
      const output = queue.then(() => session.run({ tokens }));
      queue = output.catch(() => null);
      return (await output).text_vector.data; // Float32Array (dim,), unit length
    }

    // The k gallery images closest to `vector`, best first: [{id, similarity}].
    async function rank(vector, k = 8) {
      const { meta, vectors } = await ready;
      const scores = new Float32Array(meta.count);
      for (let i = 0; i < meta.count; i++) {
        let dot = 0;
        for (let d = 0; d < meta.dim; d++) dot += vectors[i * meta.dim + d] * vector[d];
        scores[i] = dot;
      }
      const order = Array.from(scores.keys()).sort((a, b) => scores[b] - scores[a] || a - b);
      return order.slice(0, k).map((id) => ({ id, similarity: scores[id] }));
    }

    // Draw the results; the milliseconds from the query (`start`) to this drawing.
    function show({ meta, captions, sheet }, top, query, start) {
      results.replaceChildren(
        ...top.map(({ id, similarity }) => {
          const item = element("li", { "data-id": String(id) });
          const canvas = element("canvas", {
            width: String(meta.tile),
            height: String(meta.tile),
            role: "img",
            "aria-label": captions[id],
          });
          const [row, column] = [Math.floor(id / meta.columns), id % meta.columns];
          const [x, y, tile] = [column * meta.tile, row * meta.tile, meta.tile];
          canvas.getContext("2d").drawImage(sheet, x, y, tile, tile, 0, 0, tile, tile);
          const score = element("span", { class: "mm-score" }, similarity.toFixed(2));
          score.title = "cosine similarity to the query";
          item.append(canvas, score);
          return item;
        }),
      );
      const ms = performance.now() - start;
      status.textContent =
        `Top 8 of ${meta.count.toLocaleString("en")} scenes for “${query}” ` +
        `(similarity under each), ${ms.toFixed(0)} ms in this browser.`;
      return ms;
    }

    let latest = 0;
    async function search() {
      const query = input.value.trim();
      const mine = ++latest;
      const start = performance.now();
      const vector = await embed(query);
      if (mine !== latest) return; // a newer query is on its way
      if (vector === null) {
        results.replaceChildren();
        status.textContent = "Type a caption, for example “a large red square at the top”.";
        root.dataset.state = "ready";
        return;
      }
      const [top, loaded] = [await rank(vector), await ready];
      if (mine !== latest) return;
      const ms = show(loaded, top, query, start);
      root.dataset.queryMs = ms.toFixed(1);
      root.dataset.query = query;
      root.dataset.state = "ready";
    }

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      search();
    });
    input.addEventListener("input", () => {
      root.dataset.state = "searching";
      search();
    });

    api.search = { ready, embed, rank, tokenize: (text) => ready.then((w) => tokenize(w.vocab, text)) };
    ready.then(
      () => {
        root.dataset.loadMs = (performance.now() - started).toFixed(0);
        input.removeAttribute("disabled");
        button.removeAttribute("disabled");
        return search();
      },
      (error) => {
        status.textContent = `The live search could not start: ${error.message}.`;
        root.dataset.state = "failed";
        root.querySelector(".mm-fallback")?.removeAttribute("hidden");
      },
    );
  }
})();
