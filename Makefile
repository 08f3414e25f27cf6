# Two commands on a fresh machine:  `make demo` (the quickstart) and `make test` (the suite).
# Each creates the virtual environment and installs torch==2.13.0 (CPU) before the project,
# so pip never resolves a CUDA build of torch.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup java demo test lint bench
setup: java $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[data,ray,dev,devices]"
	touch $@

# The `device` reader's actipy parses device files in Java: install a Java runtime from the
# Debian/Ubuntu packages when `java` is missing (as root, or through sudo).
java:
	@command -v java >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1; then \
	    SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	    $$SUDO apt-get update -qq && \
	    $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      default-jre-headless; \
	  else \
	    echo "make: no java and no apt-get: install Java 8+ for the device reader" >&2; \
	  fi; }

demo: setup
	$(VENV)/bin/harkd demo

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .
