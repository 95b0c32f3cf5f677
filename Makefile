# Two commands do everything: `make test` and `make book`. Both set up .venv on first use.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mmbook-installed
MATHJAX := book/assets/mathjax/tex-mml-chtml.js
# The live widgets (tools/web_export.py): ONNX Runtime Web from npm, and the exported models.
ORT_VERSION := 1.31.1
ORT := book/assets/ort/ort.wasm.min.js
WIDGETS := $(addsuffix /meta.json,$(addprefix book/assets/widgets/,search generate ask))
NOTEBOOKS := $(sort $(wildcard chapters/*.ipynb))
NB ?= $(NOTEBOOKS)
NBVAL := --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg -p tests.nbval_budget -p tests.nbval_numbers \
         --nbval-cell-timeout 300
PYTEST := $(PY) -m pytest -p no:cacheprovider
# Progress bars would make stored outputs differ; readers running notebooks still see them.
export TQDM_DISABLE := 1
export PYTHONHASHSEED := 0

.PHONY: help setup test unit nbval-cpu nbval-gpu nbval-rounding site-test book book-strict pdf serve \
        widgets notebooks bands run-notes clean bench compare calibrate stats test-py313

help:
	@echo "make test       unit tests, nbval on the CPU kernel (and GPU kernel if CUDA), site checks"
	@echo "make book       build the website into _build/html from the stored outputs"
	@echo "make pdf        print the whole book to _build/pdf/mmbook.pdf (headless Chromium, no TeX)"
	@echo "make serve      serve _build/html on http://127.0.0.1:8000"
	@echo "make widgets    train and export the live widgets' models (ONNX) into book/assets/widgets"
	@echo "make notebooks  re-execute notebooks in place on the CPU kernel (NB=path to pick one)"
	@echo "make bands      measure seed bands of headline results (NB=..., SEEDS='0 1 2 3 4')"
	@echo "make run-notes  run a page's run-notes box after it under seeds (NB=..., NOTE=its name)"
	@echo "make nbval-rounding  nbval on one CPU thread: other rounding, as on another machine"
	@echo "make test-py313 unit tests and CPU nbval on Python 3.13 in .venv-py313 (NB=paths to pick some)"
	@echo "make bench      time notebooks, nbval, the book build and training FLOP/s -> _build/bench"
	@echo "                (BENCH_NOTEBOOKS=paths to pick some, BENCH_SKIP='book nbval gpu' to skip)"
	@echo "make compare   notebooks of BASELINE=rev and of the working tree, interleaved: speed ratio"
	@echo "make calibrate  make compare of NB=changed notebooks against BASELINE=the statistics page's"
	@echo "                commit -> book/bench/calibration.json, which the budget check reads"
	@echo "make stats      copy _build/bench/report.json (and compare.json) to book/bench/, regenerate book/stats.md"
	@echo "make clean      remove build outputs"

# ---------------------------------------------------------------- set-up
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[book,test]"
	$(PY) -m tools.kernels install
	@touch $@

setup: $(STAMP)

$(MATHJAX):
	npm install --silent --no-audit --no-fund --prefix $(VENV)/npm mathjax@3.2.2
	rm -rf book/assets/mathjax && mkdir -p book/assets
	cp -r $(VENV)/npm/node_modules/mathjax/es5 book/assets/mathjax

# Only what the widgets load: the WebAssembly-only build and its one .wasm (about 15 MB).
$(ORT):
	npm install --silent --no-audit --no-fund --prefix $(VENV)/npm onnxruntime-web@$(ORT_VERSION)
	rm -rf book/assets/ort && mkdir -p book/assets/ort
	cp $(addprefix $(VENV)/npm/node_modules/onnxruntime-web/dist/,ort.wasm.min.js \
	   ort-wasm-simd-threaded.mjs ort-wasm-simd-threaded.wasm) book/assets/ort/

# Trained by the chapters' own cells under seed 0; again when a chapter, mmlib or the export changes.
book/assets/widgets/%/meta.json: tools/web_export.py $(wildcard mmlib/*.py mmlib/*/*.py) | $(STAMP)
	$(PY) -m tools.web_export $*
book/assets/widgets/search/meta.json: chapters/06_3_search.ipynb
book/assets/widgets/generate/meta.json: chapters/06_2_image_generation.ipynb
book/assets/widgets/ask/meta.json: chapters/06_1_dialogue.ipynb

widgets: $(ORT) $(WIDGETS)

# ---------------------------------------------------------------- tests
test: unit nbval-cpu nbval-gpu site-test

unit: $(STAMP)
	$(PYTEST) tests --ignore=tests/site --cov=mmlib --cov-report=term --cov-fail-under=90

nbval-cpu: $(STAMP)
	$(PYTEST) $(NBVAL) --nbval-kernel-name mmbook-cpu $(NOTEBOOKS)

nbval-gpu: $(STAMP)
	@if $(PY) -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then \
	  $(PYTEST) $(NBVAL) --nbval-kernel-name mmbook-gpu $(NOTEBOOKS); \
	else echo "GPU kernel validation skipped: no CUDA device"; fi

# The stored outputs must not depend on one machine's rounding. One thread instead of two sums
# in another order, so every training run takes a slightly different path, as it does on the
# GPU kernel or another CPU: a printed check that flips here would flip there (NB=... for some).
nbval-rounding: $(STAMP)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MMBOOK_BUDGETS=report $(PYTEST) $(NBVAL) --nbval-kernel-name mmbook-cpu $(NB)

# requires-python is >=3.11: .venv holds the oldest, this the newest supported Python (3.13), in
# its own venv with its own mmbook kernels (--sys-prefix, so the two never overwrite each other).
# PYTHON313=/path/to/python3.13 picks the interpreter; otherwise python3.13 on PATH if it runs
# (a pyenv shim may not), else pyenv's 3.13.
VENV313 ?= .venv-py313
PYTHON313 ?=

test-py313:
	@py=""; \
	for c in $(PYTHON313) python3.13 $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.13*/bin/python3.13; do \
	  py=$$("$$c" -c 'import sys; assert sys.version_info[:2] == (3, 13); print(sys.executable)' \
	        2>/dev/null) && break || py=""; \
	done; \
	if [ -z "$$py" ]; then \
	  echo "make test-py313: no Python 3.13 found (tried $(or $(PYTHON313),PYTHON313 unset)," \
	       "python3.13 on PATH, $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.13*/bin/python3.13)." \
	       "Install one (e.g. pyenv install 3.13) or pass PYTHON313=/path/to/python3.13." >&2; \
	  exit 1; \
	fi; \
	echo "Python 3.13: $$py -> $(VENV313)"; \
	$(MAKE) --no-print-directory unit nbval-cpu PYTHON="$$py" VENV=$(VENV313) NOTEBOOKS="$(NB)"

site-test: book-strict pdf
	$(PYTEST) tests/site tests/test_api_docs.py

# ---------------------------------------------------------------- the book
# `make book` rebuilds only the pages whose sources changed (Sphinx's own incremental build);
# `make book-strict`, which the site tests and CI run, rebuilds every page, warnings as errors.
book: $(STAMP) $(MATHJAX) $(ORT) $(WIDGETS)
	$(VENV)/bin/jupyter-book build . -W -n --keep-going

book-strict: $(STAMP) $(MATHJAX) $(ORT) $(WIDGETS)
	$(VENV)/bin/jupyter-book build . --all -W -n --keep-going

# The single-page build printed by headless Chromium (tools/print_pdf.py): no TeX needed.
pdf: $(STAMP) $(MATHJAX) $(ORT) $(WIDGETS)
	$(VENV)/bin/jupyter-book build . --builder singlehtml -W -n --keep-going -q
	$(PY) -m tools.print_pdf _build/singlehtml _build/pdf/mmbook.pdf

serve:
	@test -f _build/html/index.html || $(MAKE) book
	$(PY) -m http.server 8000 --bind 127.0.0.1 --directory _build/html

notebooks: $(STAMP)
	@for nb in $(NB); do \
	  $(PY) -m tools.execute_notebook --kernel mmbook-cpu "$$nb"; \
	  $(VENV)/bin/nbstripout --keep-output --keep-count "$$nb"; \
	done

# Seed bands: run notebooks under several seeds; store each headline result's range with the
# command, date and machine in mmlib/book/seed_bands.json (tools/seed_bands.py). NB=... picks some.
SEEDS ?= 0 1 2 3 4
bands: $(STAMP)
	$(PY) -m tools.seed_bands --seeds "$(SEEDS)" $(NB)

# Run notes: a page's collapsed box of a run its budget cannot hold, run after the page under
# SEEDS; the results go to mmlib/book/earlier_runs.json for the page to glue (tools/run_notes.py).
run-notes: $(STAMP)
	$(PY) -m tools.run_notes --seeds "$(SEEDS)" $(NB) $(NOTE)

# ---------------------------------------------------------------- speed
BENCH_NOTEBOOKS ?= $(NOTEBOOKS)
BENCH_SKIP ?=

bench: $(STAMP)
	$(PY) -m tools.bench $(addprefix --skip ,$(BENCH_SKIP)) $(BENCH_NOTEBOOKS)

# Side by side: the notebooks of BASELINE (a git revision) and of the working tree, interleaved
# in one run on one machine; the ratio new / baseline per notebook and for the book.
BASELINE ?= HEAD
ROUNDS ?= 1
compare: $(STAMP)
	$(PY) -m tools.compare_speed --baseline $(BASELINE) --rounds $(ROUNDS) $(NB)

# The budgets' calibration (tests/nbval_budget.py): notebooks changed since the statistics page's
# run, timed side by side with that run's copies (BASELINE=its commit; NB=the notebooks changed
# now: the rows of the others are kept).
calibrate: $(STAMP)
	$(PY) -m tools.compare_speed --baseline $(BASELINE) --rounds $(ROUNDS) \
	  --out book/bench/calibration.json --merge $(NB)

stats: $(STAMP)
	$(PY) -m tools.stats_page --copy _build/bench/report.json \
	  $(if $(wildcard _build/bench/compare.json),--compare _build/bench/compare.json)

clean:
	rm -rf _build .pytest_cache .coverage book/assets/widgets
	find . -name __pycache__ -not -path "./$(VENV)/*" -not -path "./$(VENV313)/*" -prune \
	  -exec rm -rf {} +
