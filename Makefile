# Every target creates (or reuses) .venv and installs what it needs first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,guardrails-model,guardrails-train,otel,semantic-cache]'
	touch $(STAMP)

## run: start the gateway on its embedded defaults (examples/quickstart.yaml)
run: $(STAMP)
	$(BIN)/gatewise serve --config examples/quickstart.yaml

## test: lint, type-check and run the whole test suite
test: lint typecheck
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

## unit: the fast tests only
unit: $(STAMP)
	$(BIN)/pytest tests/unit

## bench: gateway vs direct upstream, same run (needs wrk: apt-get install wrk)
bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
