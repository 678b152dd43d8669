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

.PHONY: run test lint bench mutate mutate-fast system-deps clean

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

# Mutation testing of the core modules with mutmut (docs/testing.md); long, so not part
# of `make test` or CI. MODULES="doorbell vic" limits it (default: all seven modules);
# mutmut keeps its verdicts in mutants/, so a second run only tries what changed.
# Bounds per mutant: time by mutmut's CPU-time cap ([tool.mutmut] in pyproject.toml),
# memory by the address-space cap below, which every forked mutant run inherits.
MODULES ?=
MUTATE_MEM_KB ?= 2097152
MUTATE_JOBS ?= 1
mutate: $(VENV)/.mutate
	ulimit -v $(MUTATE_MEM_KB) && $(VENV)/bin/mutmut run --max-children $(MUTATE_JOBS) \
	  $$($(PY) tools/mutmut_score.py --patterns $(MODULES))
	$(PY) tools/mutmut_score.py $(MODULES)

# The in-repo ast mutator: fewer, hand-picked mutants, each run against only the tests
# that execute its line (docs/testing.md).
mutate-fast: $(VENV)/.dev
	$(PY) tools/mutate.py $(MODULES)

$(VENV)/.mutate: requirements-mutate.txt $(VENV)/.dev
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-mutate.txt
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis mutants
