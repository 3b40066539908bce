# finml: `make demo` runs the main job on built-in real data; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.finml-installed

# Embedded Prefect (ephemeral API on SQLite) in a project-local home; no telemetry (offline).
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export GX_ANALYTICS_ENABLED ?= False
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: install demo test clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "finml needs Python 3.11, found " + sys.version' 
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/finml demo

test: install
	$(BIN)/python -m pytest

clean:
	rm -rf registry reports .prefect .pytest_cache
