# Every target bootstraps the virtual environment itself, so a fresh clone needs only Python 3.11+.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: dev test lint bench install tools clean

# Debian tools the suite and the benchmark use: docker-compose validates docker-compose.yml
# offline (no engine needed) and wrk loads the gateway. Installed only when missing.
APT_TOOLS := docker-compose wrk

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

dev: $(STAMP)
	exec $(PY) -m ledgerbus dev

# The official AsyncAPI parser (Node) that tests/unit/test_asyncapi.py validates the document with.
# The stamp lives inside node_modules, so deleting that directory or changing the lock file
# installs it again; otherwise the target does nothing.
ASYNCAPI_TOOLS := tools/asyncapi
ASYNCAPI_TOOLS_STAMP := $(ASYNCAPI_TOOLS)/node_modules/.installed-stamp

$(ASYNCAPI_TOOLS_STAMP): $(ASYNCAPI_TOOLS)/package.json $(ASYNCAPI_TOOLS)/package-lock.json
	@command -v npm >/dev/null || { echo "npm is missing: install Node 20 and npm for $(ASYNCAPI_TOOLS)"; exit 1; }
	@npm ci --prefix $(ASYNCAPI_TOOLS) --no-audit --no-fund --loglevel=error >/dev/null
	@touch $@

tools: $(ASYNCAPI_TOOLS_STAMP)
	@missing=""; for tool in $(APT_TOOLS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing from Debian"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

test: $(STAMP) tools
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(STAMP) tools
	$(PY) -m bench

clean:
	rm -rf $(VENV) .ledgerbus .mypy_cache .ruff_cache .pytest_cache
