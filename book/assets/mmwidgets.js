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
      const setups = { search: setupSearch, generate: setupGenerate, ask: setupAsk };
      const setup = setups[root.dataset.widget];
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

  // One run of ONNX Runtime at a time on the page: a session refuses a second run while one
  // is on, and the reader may type faster than the model answers.
  let runs = Promise.resolve();
  function runSession(session, feeds) {
    const output = runs.then(() => session.run(feeds));
    runs = output.catch(() => null);
    return output;
  }

  function loadImage(url) {
    return new Promise((resolve, reject) => {
      const image = new Image();
      image.onload = () => resolve(image);
      image.onerror = () => reject(new Error(`${url} did not load`));
      image.src = url;
    });
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

  // Whether the widget cannot run here; if so it is marked unavailable and keeps the page's text
  // (with the reason added where that text does not give it). From a file:// page the browser
  // refuses to fetch the model, and the widget's text asks for `make serve`.
  function unavailable(root) {
    const noWasm = typeof WebAssembly !== "object";
    if (!noWasm && location.protocol !== "file:") return false;
    if (noWasm) root.querySelector(".mm-fallback")?.append(" This browser cannot run WebAssembly.");
    root.dataset.state = "unavailable";
    return true;
  }

  // Hide the page's text for where the widget cannot run; show it again if the widget fails.
  function takeOver(root, status, error) {
    if (error) {
      status.textContent = `The live widget could not start: ${error.message}.`;
      root.dataset.state = "failed";
      root.querySelector(".mm-fallback")?.removeAttribute("hidden");
    } else {
      root.querySelector(".mm-fallback")?.setAttribute("hidden", "");
    }
  }

  // Tokenizer.decode: the words of `ids` without <pad>, <bos> and <eos>, closing punctuation
  // written against the word before.
  function decode(vocab, ids) {
    const skipped = new Set([vocab.pad_id, vocab.bos_id, vocab.eos_id]);
    const words = ids.filter((id) => !skipped.has(id)).map((id) => vocab.tokens[id]);
    return words.join(" ").replace(/ ([.,!?;:)])/g, "$1");
  }

  // ------------------------------------------------------------ search (chapter 6.3)
  function setupSearch(root) {
    if (unavailable(root)) return;
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
    takeOver(root, status);
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
        loadImage(`${base}gallery.png`),
      ]);
      const session = await ort.InferenceSession.create(`${base}text_encoder.onnx`, {
        executionProviders: ["wasm"],
      });
      return { ort, meta, vocab, captions, vectors: new Float32Array(gallery), sheet, session };
    })();

    async function embed(text) {
      const { ort, vocab, session } = await ready;
      const ids = tokenize(vocab, text);
      if (ids.length === 0) return null;
      const tokens = new ort.Tensor("int64", BigInt64Array.from(ids, BigInt), [1, ids.length]);
      return (await runSession(session, { tokens })).text_vector.data; // (dim,), unit length
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
      (error) => takeOver(root, status, error),
    );
  }

  // ------------------------------------------------------------ generate (chapter 6.2)
  // mulberry32 (Tommy Ettinger) and Box-Muller: the widget's noise, the same numbers as
  // tools/web_export.browser_noise draws in Python for the reference samples.
  function noise(seed, count) {
    let state = seed >>> 0;
    const uniform = () => {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = Math.imul(state ^ (state >>> 15), 1 | state);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const values = new Float32Array(count);
    for (let i = 0; i < count; i += 2) {
      const radius = Math.sqrt(-2 * Math.log(1 - uniform()));
      const angle = 2 * Math.PI * uniform();
      values[i] = radius * Math.cos(angle);
      if (i + 1 < count) values[i + 1] = radius * Math.sin(angle);
    }
    return values;
  }

  // How often each vocabulary word occurs in `text` (Tokenizer.bag_of_words), Float32Array(V).
  function bagOfWords(vocab, text, size) {
    const counts = new Float32Array(size);
    for (const id of tokenize(vocab, text)) counts[id] += 1;
    counts[vocab.pad_id] = 0;
    return counts;
  }

  // The mean colour of the object's core pixels (mmlib.models.judge.object_colour), per image.
  function objectColour(pixels, side, core = 0.8) {
    const area = side * side;
    const brightness = new Float32Array(area);
    for (let p = 0; p < area; p++) {
      brightness[p] = Math.max(pixels[p], pixels[area + p], pixels[2 * area + p]);
    }
    const peak = Math.fround(Math.fround(core) * Math.max(...brightness));
    const sum = [0, 0, 0];
    let count = 0;
    for (let p = 0; p < area; p++) {
      if (brightness[p] < peak) continue;
      for (let c = 0; c < 3; c++) sum[c] += pixels[c * area + p];
      count += 1;
    }
    return sum.map((value) => value / count);
  }

  function setupGenerate(root) {
    if (unavailable(root)) return;
    const base = `${STATIC}widgets/generate/`;
    const form = element("form", { class: "mm-live" });
    const field = (id, text, attributes) => {
      const label = element("label", { for: id }, text);
      const input = element("input", { id, autocomplete: "off", disabled: "", ...attributes });
      form.append(label, input);
      return input;
    };
    const caption = field("mm-generate-caption", "Caption", {
      type: "text",
      spellcheck: "false",
      list: "mm-generate-captions",
      value: root.dataset.caption || "a small red circle",
    });
    const seed = field("mm-generate-seed", "Seed", { type: "number", min: "0", step: "1", value: "0" });
    const scale = field("mm-generate-scale", "Guidance", {
      type: "number",
      min: "0",
      max: "8",
      step: "0.5",
      value: "2",
    });
    const button = element("button", { type: "submit", disabled: "" }, "Generate");
    const examples = element("datalist", { id: "mm-generate-captions" });
    form.append(button, examples);
    const status = element("p", { class: "mm-status", role: "status" }, "Loading the model…");
    const results = element("ol", { class: "mm-results", "aria-label": "Generated images" });
    takeOver(root, status);
    root.append(form, status, results);
    root.dataset.state = "loading";

    const startedAt = performance.now();
    const ready = (async () => {
      const [ort, meta, vocab] = await Promise.all([
        loadRuntime(),
        fetchOk(`${base}meta.json`).then((r) => r.json()),
        fetchOk(`${base}vocab.json`).then((r) => r.json()),
      ]);
      const options = { executionProviders: ["wasm"] };
      const [denoiser, judge] = await Promise.all([
        ort.InferenceSession.create(`${base}denoiser.onnx`, options),
        ort.InferenceSession.create(`${base}judge.onnx`, options),
      ]);
      return { ort, meta, vocab, denoiser, judge };
    })();

    // The denoiser's clean predictions for rows of x_t (n, D), t (n,), cond (n, V), drop (n,).
    async function denoise(x, t, cond, drop) {
      const { ort, meta, denoiser } = await ready;
      const n = t.length;
      const out = await runSession(denoiser, {
        x_t: new ort.Tensor("float32", Float32Array.from(x), [n, meta.data_dim]),
        t: new ort.Tensor("float32", Float32Array.from(t), [n]),
        cond: new ort.Tensor("float32", Float32Array.from(cond), [n, meta.vocab_size]),
        drop: new ort.Tensor("bool", Uint8Array.from(drop, Number), [n]),
      });
      return out.x1_hat.data;
    }

    // mmlib.models.flow.sample: Euler steps from the seed's noise, the velocity from the guided
    // clean prediction (clamped to the data's range), both predictions of a step in one batch.
    // Returns the images, (n * 3 * S * S) numbers in [0, 1].
    async function sample(text, seedValue, scaleValue, steps) {
      const { meta, vocab } = await ready;
      const [n, D, V] = [meta.samples, meta.data_dim, meta.vocab_size];
      steps ??= meta.steps;
      const words = bagOfWords(vocab, text, V);
      const cond = new Float32Array(2 * n * V);
      for (let row = 0; row < 2 * n; row++) cond.set(words, row * V);
      const drop = Array.from({ length: 2 * n }, (_, row) => row >= n); // the second half: no caption
      const x = noise(seedValue, n * D);
      const [low, high] = meta.clip;
      for (let i = 0; i < steps; i++) {
        const t = Math.fround(i / steps);
        const both = new Float32Array(2 * n * D);
        both.set(x);
        both.set(x, n * D);
        const hat = await denoise(both, new Float32Array(2 * n).fill(t), cond, drop);
        const gap = Math.max(Math.fround(1 - t), meta.min_gap);
        for (let j = 0; j < n * D; j++) {
          const uncond = hat[n * D + j];
          const guided = Math.min(Math.max(uncond + scaleValue * (hat[j] - uncond), low), high);
          x[j] = x[j] + (guided - x[j]) / gap / steps;
        }
      }
      return x.map((value) => Math.min(Math.max((value + 1) / 2, 0), 1));
    }

    // What the page's judge reads in each image: {read: [shape, colour, size], abstains, text}.
    async function judgeImages(images) {
      const { ort, meta, judge } = await ready;
      const [channels, side] = [meta.image[0], meta.image[1]];
      const size = channels * side * side;
      const n = images.length / size;
      const out = await runSession(judge, {
        images: new ort.Tensor("float32", Float32Array.from(images), [n, channels, side, side]),
      });
      const names = Object.keys(meta.attributes); // the judge's heads, in order
      return Array.from({ length: n }, (_, k) => {
        const read = names.map((name) => {
          const logits = out[name].data;
          const classes = meta.attributes[name].length;
          let best = 0;
          for (let c = 1; c < classes; c++) {
            if (logits[k * classes + c] > logits[k * classes + best]) best = c;
          }
          return best;
        });
        const colour = objectColour(images.subarray(k * size, (k + 1) * size), side);
        const centre = meta.judge.centres[read[names.indexOf("colour")]];
        const distance = Math.hypot(...colour.map((value, c) => value - centre[c]));
        const words = Object.fromEntries(names.map((name, i) => [name, meta.attributes[name][read[i]]]));
        const text = `a ${words.size} ${words.colour} ${words.shape}`;
        return { read, abstains: distance > meta.judge.threshold, text, words };
      });
    }

    function show({ meta, vocab }, images, readings, text, ms) {
      const side = meta.image[1];
      const size = 3 * side * side;
      const asked = new Set(tokenize(vocab, text).map((id) => vocab.tokens[id]));
      let faithful = 0;
      results.replaceChildren(
        ...readings.map((reading, k) => {
          const item = element("li");
          const canvas = element("canvas", { width: String(side), height: String(side), role: "img" });
          const context = canvas.getContext("2d");
          const picture = context.createImageData(side, side);
          for (let p = 0; p < side * side; p++) {
            for (let c = 0; c < 3; c++) {
              picture.data[4 * p + c] = Math.round(255 * images[k * size + c * side * side + p]);
            }
            picture.data[4 * p + 3] = 255;
          }
          context.putImageData(picture, 0, 0);
          const matches = Object.values(reading.words).every((word) => asked.has(word));
          const ok = matches && !reading.abstains;
          faithful += ok;
          const verdict = reading.abstains
            ? `the judge abstains (a colour unlike any real scene's; it reads ${reading.text})`
            : `the judge reads ${reading.text}${matches ? "" : ", not the caption"}`;
          canvas.setAttribute("aria-label", `Sample ${k + 1}: ${verdict}`);
          const note = element("span", { class: "mm-score" }, `${ok ? "✓" : "✗"} ${reading.text}`);
          note.title = verdict;
          item.dataset.faithful = String(ok);
          item.append(canvas, note);
          return item;
        }),
      );
      status.textContent =
        `${readings.length} samples of “${text}” in ${ms.toFixed(0)} ms in this browser; ` +
        `the page's judge finds ${faithful} of ${readings.length} faithful (✓).`;
    }

    let latest = 0;
    async function generate() {
      const text = caption.value.trim();
      const seedValue = Math.max(0, Math.floor(Number(seed.value) || 0));
      const scaleValue = Math.min(Math.max(Number(scale.value) || 0, 0), 8);
      const mine = ++latest;
      root.dataset.state = "generating";
      const start = performance.now();
      const images = await sample(text, seedValue, scaleValue);
      const readings = await judgeImages(images);
      if (mine !== latest) return;
      const ms = performance.now() - start;
      show(await ready, images, readings, text, ms);
      api.generate.last = { images, readings, text, seed: seedValue, scale: scaleValue };
      Object.assign(root.dataset, {
        queryMs: ms.toFixed(1),
        drawn: `${text}|${seedValue}`,
        state: "ready",
      });
    }

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      generate();
    });

    api.generate = { ready, noise, denoise, sample, judge: judgeImages };
    ready.then(
      ({ meta }) => {
        for (const { caption: text, held_out: heldOut } of meta.captions) {
          examples.append(element("option", { value: text, label: heldOut ? "held out in training" : "seen in training" }));
        }
        root.dataset.loadMs = (performance.now() - startedAt).toFixed(0);
        for (const control of [caption, seed, scale, button]) control.removeAttribute("disabled");
        return generate();
      },
      (error) => takeOver(root, status, error),
    );
  }

  // ------------------------------------------------------------ ask (chapter 6.1)
  function setupAsk(root) {
    if (unavailable(root)) return;
    const base = `${STATIC}widgets/ask/`;
    const form = element("form", { class: "mm-live" });
    const sceneLabel = element("label", { for: "mm-ask-scene" }, "Scene");
    const scene = element("select", { id: "mm-ask-scene", disabled: "" });
    const questionLabel = element("label", { for: "mm-ask-question" }, "Question");
    const question = element("input", {
      id: "mm-ask-question",
      type: "text",
      autocomplete: "off",
      spellcheck: "false",
      list: "mm-ask-questions",
      placeholder: "empty: describe the scene",
      value: root.dataset.question || "",
      disabled: "",
    });
    const button = element("button", { type: "submit", disabled: "" }, "Ask");
    const restart = element("button", { type: "button", disabled: "" }, "New conversation");
    const examples = element("datalist", { id: "mm-ask-questions" });
    form.append(sceneLabel, scene, questionLabel, question, button, restart, examples);
    const picture = element("canvas", { class: "mm-scene", role: "img", "aria-label": "The scene (loading)" });
    const transcript = element("ol", { class: "mm-transcript", "aria-label": "The conversation" });
    const status = element("p", { class: "mm-status", role: "status" }, "Loading the model…");
    const view = element("div", { class: "mm-ask" });
    view.append(picture, transcript);
    takeOver(root, status);
    root.append(form, view, status);
    root.dataset.state = "loading";

    const startedAt = performance.now();
    const ready = (async () => {
      const [ort, meta, vocab, features, sheet] = await Promise.all([
        loadRuntime(),
        fetchOk(`${base}meta.json`).then((r) => r.json()),
        fetchOk(`${base}vocab.json`).then((r) => r.json()),
        fetchOk(`${base}features.f32`).then((r) => r.arrayBuffer()),
        loadImage(`${base}scenes.png`),
      ]);
      const session = await ort.InferenceSession.create(`${base}next_token.onnx`, {
        executionProviders: ["wasm"],
      });
      return { ort, meta, vocab, features: new Float32Array(features), sheet, session };
    })();

    // The next token's logits (Float32Array V) for scene k and prompt ids.
    async function nextLogits(k, ids) {
      const { ort, meta, features, session } = await ready;
      const [places, dim] = meta.features;
      const size = places * dim;
      const feeds = {
        features: new ort.Tensor("float32", features.slice(k * size, (k + 1) * size), [1, places, dim]),
        tokens: new ort.Tensor("int64", BigInt64Array.from(ids, BigInt), [1, ids.length]),
      };
      return (await runSession(session, feeds)).logits.data;
    }

    // tools/web_export.ask_prompt: earlier turns, the question and <bos>; the oldest turns are
    // left out until the answer has room for a token.
    function prompt({ meta, vocab }, history, text) {
      const wanted = meta.new_tokens[text.trim() === "" ? "caption" : "answer"];
      let turns = history.slice();
      for (;;) {
        const ids = [];
        for (const [q, a] of turns) {
          ids.push(...tokenize(vocab, q), vocab.bos_id, ...tokenize(vocab, a), vocab.eos_id);
        }
        ids.push(...tokenize(vocab, text), vocab.bos_id);
        const room = meta.max_tokens + 1 - ids.length;
        if (room >= 1 || turns.length === 0) return { ids, newTokens: Math.min(wanted, room), turns };
        turns = turns.slice(1);
      }
    }

    // VisualDialogueModel.answer_features, greedy: the model's answer to `text` about scene k
    // after the turns of `history` ([question, answer] pairs).
    async function answer(k, history, text) {
      const loaded = await ready;
      const { vocab } = loaded;
      const { ids, newTokens, turns } = prompt(loaded, history, text);
      if (newTokens < 1) return { ids, newTokens, turns, answer: null, firstLogits: null };
      const banned = new Set([vocab.pad_id, vocab.bos_id, vocab.unk_id]);
      const context = ids.slice();
      const said = [];
      let firstLogits = null;
      for (let step = 0; step < newTokens; step++) {
        const logits = await nextLogits(k, context);
        firstLogits ??= Array.from(logits);
        let best = -1;
        for (let v = 0; v < logits.length; v++) {
          if (!banned.has(v) && (best < 0 || logits[v] > logits[best])) best = v;
        }
        if (best === vocab.eos_id) break;
        said.push(best);
        context.push(best);
      }
      return { ids, newTokens, turns, answer: decode(vocab, said), firstLogits };
    }

    let history = [];
    // The scene's right answer to `text` after `turns` where the page's data has one: its
    // caption for "", a question of the scene, or the follow-up of the scene's first question.
    function truthOf({ meta, vocab }, k, text, turns) {
      const normal = (words) => decode(vocab, tokenize(vocab, words));
      const info = meta.scenes[k];
      if (normal(text) === "") return info.caption;
      const [first, second] = info.follow_up;
      const before = turns.at(-1);
      if (second && before && normal(before[0]) === normal(first[0]) && normal(text) === normal(second[0])) {
        return second[1];
      }
      const pair = info.qa.find(([q]) => normal(q) === normal(text));
      return pair ? pair[1] : null;
    }

    function line(who, text, extra = "") {
      const item = element("li");
      item.append(element("strong", {}, `${who}: `), document.createTextNode(text || "(empty: a caption, please)"));
      if (extra) item.append(element("span", { class: "mm-score" }, ` ${extra}`));
      return item;
    }

    async function showScene() {
      const { meta, sheet } = await ready;
      const k = Number(scene.value);
      const tile = meta.tile;
      picture.width = picture.height = tile;
      picture.getContext("2d").drawImage(sheet, k * tile, 0, tile, tile, 0, 0, tile, tile);
      const info = meta.scenes[k];
      picture.setAttribute("aria-label", `Scene ${k + 1} (${info.held_out ? "held-out" : "seen"} pairs): ${info.caption}`);
      const asked = [...info.qa.map(([q]) => q), ...info.follow_up.slice(1).map(([q]) => q)];
      examples.replaceChildren(...asked.map((q) => element("option", { value: q })));
      history = [];
      transcript.replaceChildren();
    }

    let latest = 0;
    async function ask() {
      const loaded = await ready;
      const k = Number(scene.value);
      const text = question.value.trim();
      const mine = ++latest;
      root.dataset.state = "answering";
      const start = performance.now();
      const result = await answer(k, history, text);
      if (mine !== latest) return;
      const ms = performance.now() - start;
      if (result.answer === null) {
        status.textContent = "That question is too long for the model's context of " +
          `${loaded.meta.max_tokens} tokens.`;
      } else {
        const truth = truthOf(loaded, k, text, result.turns);
        const right = truth === null ? "" : result.answer === truth || result.answer.split(" ").at(-1) === truth;
        const extra = truth === null ? "" : `${right ? "✓" : "✗"} (right answer: ${truth})`;
        transcript.append(line("you", text), line("model", result.answer, extra));
        history = [...result.turns, [text, result.answer]];
        status.textContent = `Answered in ${ms.toFixed(0)} ms in this browser` +
          (result.turns.length ? `, after ${result.turns.length} earlier turn(s).` : ".");
      }
      api.ask.last = { scene: k, question: text, ...result };
      Object.assign(root.dataset, { queryMs: ms.toFixed(1), asked: `${k}|${text}|${history.length}`, state: "ready" });
    }

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      ask();
    });
    scene.addEventListener("change", () => showScene());
    restart.addEventListener("click", () => {
      history = [];
      transcript.replaceChildren();
      status.textContent = "A new conversation about the same scene.";
    });

    api.ask = { ready, nextLogits, answer, tokenize: (text) => ready.then((w) => tokenize(w.vocab, text)) };
    ready.then(
      async (loaded) => {
        loaded.meta.scenes.forEach((info, k) => {
          const kind = info.held_out ? "held-out pairs" : "seen pairs";
          scene.append(element("option", { value: String(k) }, `${k + 1} (${kind})`));
        });
        scene.value = root.dataset.scene || "0";
        await showScene();
        root.dataset.loadMs = (performance.now() - startedAt).toFixed(0);
        for (const control of [scene, question, button, restart]) control.removeAttribute("disabled");
        return ask();
      },
      (error) => takeOver(root, status, error),
    );
  }
})();
