# Two commands on a fresh clone:  `make run` (the app, embedded)  and  `make test` (everything).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: install run test lint bench mutation clean

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements.lock -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: install
	$(VENV)/bin/certflow run

test: install
	$(VENV)/bin/mypy certflow handlers worker
	$(VENV)/bin/lint-imports --no-logo --no-cache
	$(PY) -m pytest -q -p no:cacheprovider

lint: install
	$(VENV)/bin/ruff check certflow handlers worker
	$(VENV)/bin/mypy certflow handlers worker
	$(VENV)/bin/lint-imports --no-logo --no-cache

bench: install
	$(PY) bench/engine.py

mutation: install
	$(PY) bench/mutation.py --survivors

clean:
	rm -rf var .pytest_cache mutants
