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

# Front-end packages the pages serve (package.json + package-lock.json; no build step).
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

install: $(VENV)/.installed node_modules/.package-lock.json

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
	rm -rf var .pytest_cache mutants tests/browser/artifacts
