# Thin wrappers. `make demo` and `make test` are the two commands in the README;
# `make check` is the fast loop (lint, types, unit + integration tests, doctests; no lab).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCK := requirements.lock

RUFF_PATHS := app tests bench checks deploys inventory scripts
# Docstring Examples run as doctests; gept.lab.lab's Example starts the lab, so not here.
DOCTEST := $(VENV)/bin/pytest -q --doctest-modules app/gept -p no:cacheprovider \
	--deselect app/gept/lab/lab.py::gept.lab.lab

.PHONY: demo test check lint lock bench setup venv clean-lab

# Every install takes the versions of requirements.lock: the same on every machine and in CI.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c $(LOCK) -e '.[dev]'
	touch $(STAMP)

# Re-resolve the dependencies in a throwaway venv and write requirements.lock.
lock:
	rm -rf .lock-venv && python3 -m venv .lock-venv
	.lock-venv/bin/pip install -q -e '.[dev]'
	{ sed -n '1,3p' $(LOCK); .lock-venv/bin/pip freeze --exclude-editable | grep -v '^gept'; } \
	  > $(LOCK).new && mv $(LOCK).new $(LOCK)
	rm -rf .lock-venv

venv: $(STAMP)

setup:
	bash scripts/setup-machine.sh

# The lab hosts are removed at the end (pass or fail) unless KEEP_LAB=1; either way the
# last line says which. The Docker engine itself stays running: other labs may use it.
# Unit and integration tests run on one worker per core (as in `make check`); the lab tests
# then run in one process, sharing one converged lab.
test: venv setup
	$(VENV)/bin/ruff check $(RUFF_PATHS)
	$(VENV)/bin/mypy
	$(DOCTEST)
	status=0; \
	$(VENV)/bin/pytest -q -m "not lab" -n $(CHECK_WORKERS) --dist worksteal --durations=10 \
	  tests/unit tests/integration || status=$$?; \
	$(VENV)/bin/pytest -q -m lab --durations=30 tests/lab || status=$$?; \
	if [ "$(KEEP_LAB)" = "1" ]; then \
	  echo "make test: KEEP_LAB=1: the lab hosts are still running ('make clean-lab' removes them)"; \
	else \
	  $(VENV)/bin/gept lab down >/dev/null || status=1; \
	  echo "make test: the lab hosts were removed (KEEP_LAB=1 keeps them for the next run)"; \
	fi; \
	exit $$status

# Needs the Debian packages of scripts/setup-machine.sh (PostgreSQL, sshd, chromium), not
# the lab: `make setup` once on a new machine. The tests run on one pytest-xdist worker per
# core, idle workers stealing tests from busy ones (a long file such as test_runbook_run.py
# would otherwise hold one worker alone); most of the time is spent waiting on
# subprocesses, PostgreSQL and sshd. Measured on 2 shared cores: 8 min 16 s at load 6-13,
# 10 min 31 s at load 17-20 (a test file per worker), 6 min 22 s serially at load 1-2 before.
CHECK_WORKERS ?= auto
check: venv
	$(VENV)/bin/ruff check $(RUFF_PATHS)
	$(VENV)/bin/mypy
	$(DOCTEST)
	$(VENV)/bin/pytest -q -m "not lab" -n $(CHECK_WORKERS) --dist worksteal --durations=10 \
	  tests/unit tests/integration

lint: venv
	$(VENV)/bin/ruff check $(RUFF_PATHS)
	$(VENV)/bin/mypy

bench: venv setup
	for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

demo: venv setup
	$(PY) -m gept.demo

clean-lab: venv
	$(VENV)/bin/gept lab down
