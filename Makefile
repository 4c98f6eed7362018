# The documented commands. Each creates .venv and installs into it when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/nextbest serve --demo

test: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/pytest tests/benchmarks -m benchmark -s

lint: $(STAMP)
	$(BIN)/ruff check .
