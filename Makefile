# Thin wrappers. `make demo` and `make test` are the two commands in the README.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench setup venv clean-lab

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

setup:
	bash scripts/setup-machine.sh

test: venv setup
	$(VENV)/bin/ruff check app tests bench checks deploys inventory
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -q --durations=30

lint: venv
	$(VENV)/bin/ruff check app tests bench checks deploys inventory
	$(VENV)/bin/mypy

bench: venv setup
	for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

demo: venv setup
	$(PY) -m gept.demo

clean-lab: venv
	$(VENV)/bin/gept lab down
