# Two commands on a fresh machine:  `make demo` (the quickstart) and `make test` (the suite).
# Each creates the virtual environment and installs torch==2.13.0 (CPU) before the project,
# so pip never resolves a CUDA build of torch.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test lint bench
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[data,ray,dev]"
	touch $@

demo: setup
	$(VENV)/bin/harkd demo

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .
