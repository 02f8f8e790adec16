# LayerLab: `make run` serves the app, `make test` runs every test suite.
# Both install what they need first. A GPU machine overrides the torch wheel, e.g.
#   make run TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu128"
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: install run test test-python lint bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(TORCH_SPEC)
	$(PIP) install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/layerlab shapes examples/lenet5.json

test: install test-python

test-python: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check backend tests benchmarks

bench: install
	$(PY) benchmarks/bench_shapes.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
