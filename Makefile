# s2s-eval: `make eval` runs an eval end to end (prepare → run → report); `make test` runs the test suite.
# Both bootstrap what they need on a fresh machine (a virtualenv in .venv, espeak-ng, chromium for tests).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EVAL ?= big_bench_audio
LIMIT ?=
CONCURRENCY ?=
MODEL ?=
RUNS ?= $(wildcard runs/*)
BASE ?=
NEW ?=
SERVE_ARGS ?=

# Offline data: the shared local copies beside the checkout, unless S2S_DATA_DIR is set already.
S2S_DATA_DIR ?= $(if $(wildcard ../shared/datasets),$(abspath ../shared/datasets),)
export S2S_DATA_DIR

.PHONY: setup eval test lint report compare serve bench lock-export clean

# Python libraries come from the lock, so two machines that install the same commit measure with the same ones:
# uv.lock (with uv, when it is on PATH) or requirements.lock, its export with hashes (with pip otherwise).
# After editing dependencies in pyproject.toml: `uv lock` and `make lock-export`.
$(VENV)/.installed: pyproject.toml uv.lock requirements.lock
	@scripts/ensure-system-packages
	@if command -v uv >/dev/null 2>&1; then \
	  echo "installing the locked Python dependencies into $(VENV) with uv ..."; \
	  UV_PROJECT_ENVIRONMENT='$(VENV)' uv sync --quiet --frozen --extra test --python '$(PYTHON)'; \
	else \
	  echo "installing the locked Python dependencies into $(VENV) with pip (uv is not installed) ..."; \
	  { test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); } && \
	  $(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock && \
	  $(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .; \
	fi
	@touch $@

setup: $(VENV)/.installed

# MODEL defaults to gpt-realtime when OPENAI_API_KEY is set, else to the offline embedded server (local).
eval: setup
	@model='$(MODEL)'; \
	if [ -z "$$model" ]; then \
	  if [ -n "$$OPENAI_API_KEY" ]; then model=gpt-realtime; echo "MODEL not set; OPENAI_API_KEY is set: using MODEL=gpt-realtime"; \
	  else model=local; echo "MODEL not set and no OPENAI_API_KEY: using MODEL=local (the offline embedded server)"; fi; \
	fi; \
	run_dir="runs/$$(date -u +%Y%m%dT%H%M%SZ)-$$model-$(EVAL)"; \
	if [ '$(EVAL)' = complexfuncbench ] && [ -n "$$S2S_DATA_DIR" ] && \
	   [ ! -f "$$S2S_DATA_DIR/complexfuncbench/ComplexFuncBench.jsonl" ]; then \
	  echo "no complexfuncbench/ComplexFuncBench.jsonl under $$S2S_DATA_DIR: using the project's invented fixture" \
	    "(tests/fixtures, 7 samples; its figures say nothing about a model)." \
	    "Run with S2S_DATA_DIR= to load the Hub instead."; \
	  export S2S_DATA_DIR='$(abspath tests/fixtures)'; \
	fi; \
	$(BIN)/s2s-eval run --model "$$model" --eval '$(EVAL)' --out "$$run_dir" \
	  $(if $(LIMIT),--limit $(LIMIT)) $(if $(CONCURRENCY),--concurrency $(CONCURRENCY)) && \
	$(BIN)/s2s-eval report "$$run_dir" --out reports/index.html

test: setup lint
	@scripts/ensure-system-packages --browser
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/python -m pytest -q -rs

lint: setup
	$(BIN)/ruff check s2s_eval tests benchmarks

report: setup
	$(BIN)/s2s-eval report $(RUNS) --out reports/index.html

# Gate a run against a baseline run: exit 1 only on a significant regression beyond the thresholds.
compare: setup
	@test -n '$(BASE)' -a -n '$(NEW)' || { echo "usage: make compare BASE=runs/<base run> NEW=runs/<new run>"; exit 2; }
	$(BIN)/s2s-eval compare '$(BASE)' '$(NEW)' --fail-on-regression

serve: setup
	$(BIN)/s2s-eval serve $(SERVE_ARGS)

bench: setup
	$(BIN)/python benchmarks/latency_scale.py

# requirements.lock is generated from uv.lock (tests/test_packaging.py checks they agree).
lock-export:
	uv export --frozen --extra test --no-emit-project --format requirements-txt -o requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache
