# Tandem: `make up` runs the whole system locally, `make test` runs every test.
# Both install what they need first (uv, then the locked workspace).

SHELL := /bin/bash
PY ?= python3
# uv from PATH, else a copy installed with pip into .tandem/uv (works in venvs and system Pythons).
UV_DIR := .tandem/uv
UV := $(or $(shell command -v uv 2>/dev/null),$(UV_DIR)/bin/uv)
VENV := .venv
RUN := $(VENV)/bin


.PHONY: install browser up down demo test test-unit test-integration lint format bench bench-ingest bench-pipeline bench-reads bench-runtime k8s-validate clean

$(UV):
	$(PY) -m pip install --quiet --disable-pip-version-check --target $(UV_DIR) uv

# Bytecode is compiled here, once: every service process then starts in a third of the time,
# also where PYTHONDONTWRITEBYTECODE keeps Python from caching what it compiles on import.
install: $(UV)
	$(UV) sync --frozen --all-packages --compile-bytecode
	$(RUN)/python -m compileall -q -j 0 shared/src services/*/src > /dev/null

up: install
	$(RUN)/tandem-local up

down:
	@if [ -x $(RUN)/tandem-local ]; then $(RUN)/tandem-local down; else echo "nothing to stop"; fi

demo:
	$(RUN)/python scripts/demo.py

# The dashboard test drives Debian's Chromium; install it when missing (as root, on Debian).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

test: install browser
	$(RUN)/pytest -q

test-unit: install
	$(RUN)/pytest -q -m "not integration" shared/tests services

test-integration: install
	$(RUN)/pytest -q tests/integration

# The whole system under faults, long version (more kills, longer load) and its summary table;
# `make test` runs the short one. Scenarios and bounds: tests/faults/, docs/runbook.md "Faults".
.PHONY: test-faults
test-faults: install
	TANDEM_FAULTS=long $(RUN)/pytest -q -s tests/faults

lint: install
	$(RUN)/ruff check .
	$(RUN)/ruff format --check .
	$(RUN)/mypy shared/src services/*/src

format: install
	$(RUN)/ruff check --fix .
	$(RUN)/ruff format .

bench: bench-ingest bench-pipeline bench-reads bench-runtime

bench-ingest: install
	$(RUN)/python -m benchmarks.ingest

# The five services from webhook to Slack; BENCH_ARGS=--quick for a small run (see its --help).
bench-pipeline: install
	$(RUN)/python -m benchmarks.pipeline $(BENCH_ARGS)

# The consumer runtime's own CPU per event (loop, inbox, outbox, relay; a handler that only
# emits): BENCH_ARGS="--batch 1" for a trickle, where each event is its own transaction.
bench-runtime: install
	$(RUN)/python -m benchmarks.runtime $(BENCH_ARGS)

# Every gateway read endpoint over a year of a mid-size team, 1 and 16 readers; BENCH_ARGS=--quick.
bench-reads: install
	$(RUN)/python -m benchmarks.reads $(BENCH_ARGS)

# The Ingress check builds the services' HTTP apps, hence the workspace.
k8s-validate: install
	bash deploy/validate.sh

clean: down
	rm -rf .tandem
