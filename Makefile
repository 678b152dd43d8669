# Two commands do all set-up on a fresh Debian machine with python3:
#   make run   -> .venv, runtime deps, server on http://127.0.0.1:5000
#   make test  -> .venv, dev deps, Chromium and dtc (apt) when missing, every test
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 5000
SCENARIO ?= msgq-pingpong

APT_PACKAGES := chromium device-tree-compiler

.PHONY: run test lint bench mutate system-deps clean

# Debian's python3 may lack venv/ensurepip: install python3-venv then (root or sudo).
$(VENV)/.runtime: requirements.txt
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { rm -rf $(VENV); \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq python3-venv >/dev/null && \
	  $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: $(VENV)/.runtime
	$(PY) app.py --host $(HOST) --port $(PORT) --scenario $(SCENARIO)

# Debian packages the tests need: Chromium for the browser tests, dtc to compile the
# device-tree overlay. Installed only when missing.
system-deps:
	@command -v chromium >/dev/null 2>&1 && command -v dtc >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $(APT_PACKAGES) >/dev/null; }

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .

test: $(VENV)/.dev system-deps
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

bench: $(VENV)/.dev
	$(PY) -m gunyah_core bench --no-trace
	$(PY) -m gunyah_core bench
	$(PY) benchmarks/bench_simpy_baseline.py

# Mutation testing of the core modules (docs/testing.md); long, so not part of `make test`.
# MODULES="doorbell vic" limits it; the default is every module, one after the other.
MODULES ?=
mutate: $(VENV)/.dev
	$(PY) tools/mutate.py $(MODULES)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
