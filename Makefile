# Two commands on a fresh clone:  `make run` (the app, embedded)  and  `make test` (everything).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# `make test TEST_PROCS=4` runs the suite in 4 processes (pytest-xdist) on a machine with the
# cores for it. Not by default: on 2 cores the tests' own workers, beats and browsers already
# fill the CPU, and 4 processes took longer than one (docs/testing.md).
TEST_PROCS ?= 0

.PHONY: install run test lint bench mutation clean

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements.lock -e '.[dev]'
	touch $@

# Front-end packages the pages serve (package.json + package-lock.json). Most are served as
# they come; the studio's modeler (bpmn-js-properties-panel ships ES modules only) is bundled
# with esbuild into build/web/ (git-ignored), served as /static/build.
STUDIO_SRC := $(wildcard certflow/web/frontend/studio/*)
STUDIO     := build/web/studio.js

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

$(STUDIO): node_modules/.package-lock.json $(STUDIO_SRC)
	node_modules/.bin/esbuild certflow/web/frontend/studio/index.js certflow/web/frontend/studio/studio.css \
	  --bundle --minify --sourcemap --format=iife --target=es2020 --log-level=warning \
	  --loader:.woff=file --loader:.woff2=file --loader:.ttf=file --loader:.eot=file --loader:.svg=file \
	  --entry-names=studio --outdir=build/web

install: $(VENV)/.installed node_modules/.package-lock.json $(STUDIO)

run: install
	$(VENV)/bin/certflow run

test: install
	$(VENV)/bin/mypy certflow handlers worker
	$(VENV)/bin/lint-imports --no-logo --no-cache
	$(PY) -m pytest -q -p no:cacheprovider $(if $(filter-out 0,$(TEST_PROCS)),-n $(TEST_PROCS) --dist loadgroup)

lint: install
	$(VENV)/bin/ruff check certflow handlers worker
	$(VENV)/bin/mypy certflow handlers worker
	$(VENV)/bin/lint-imports --no-logo --no-cache

bench: install
	$(PY) bench/engine.py

mutation: install
	nice -n 19 $(PY) -m bench.mutation --survivors

clean:
	rm -rf var .pytest_cache mutants tests/browser/artifacts
