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
# Prefect's temporary API server: 90 s to start instead of 20 (a busy 2-core machine needs more)
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 90

.PHONY: install demo test test-unit clean server server-stop server-status prefect-yaml benchmark-parallel

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "finml needs Python 3.11, found " + sys.version' 
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,dask]"
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/finml demo

# Two worker processes (pytest-xdist), each test file on one worker: the suite waits on servers and
# subprocesses much of the time, so on 2 cores this takes about 10 minutes instead of 18.
test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile

# The unit tests alone (about 1.5 minutes on two workers): no Prefect server, no browser, no training of the built-in models.
test-unit: install
	$(BIN)/python -m pytest -n 2 --dist loadfile tests/unit

# A local Prefect server (UI on http://127.0.0.1:$(PORT)), a worker for the work pool of prefect.yaml and
# every deployment, in the background (logs in $(PREFECT_HOME)/finml-server/). SQLite by default; set
# PREFECT_SERVER_DATABASE_CONNECTION_URL=postgresql+asyncpg://user@host:5432/db for PostgreSQL.
PORT ?= $(or $(FINML_SERVER_PORT),4200)
server: install
	FINML_SERVER_PORT=$(PORT) $(BIN)/finml server start

server-stop:
	@if [ -x $(BIN)/finml ]; then $(BIN)/finml server stop; else echo "nothing to stop (no $(BIN)/finml)"; fi

server-status: install
	$(BIN)/finml server status

# Rewrite prefect.yaml from the specs (after adding a spec or changing a schedule).
prefect-yaml: install
	$(BIN)/python scripts/prefect_yaml.py

benchmark-parallel: install
	$(BIN)/python benchmarks/parallel.py

clean:
	chmod -R u+w registry 2>/dev/null; rm -rf registry reports .prefect .pytest_cache
