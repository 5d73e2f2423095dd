# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-reliability test-all bench lint clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip wheel
	$(BIN)/python -m pip install -q -e '.[train,dev]'
	@touch $(STAMP)

setup: $(STAMP)  ## create .venv and install the project with its extras (idempotent)

demo: setup  ## run the whole pipeline on the bundled corpus
	$(BIN)/python demo/run_demo.py

test: setup  ## the test suite (fast part; under 10 minutes on 2 cores)
	$(BIN)/python -m pytest -q -m "not slow" tests

test-reliability: setup  ## the whole reliability suite, slow tests included
	$(BIN)/python -m pytest -q tests/reliability

test-all: setup  ## every test, slow ones included
	$(BIN)/python -m pytest -q tests

bench: setup  ## benchmarks against Dolma 1.2.1; fills docs/benchmarks.md
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python benchmarks/run.py

lint: setup  ## ruff: pyflakes, pycodestyle errors and import order (config in pyproject.toml)
	$(BIN)/python -m ruff check dolma_tools tests benchmarks demo

clean:
	rm -rf demo/output benchmarks/work .pytest_cache
